"""Messages as producers send them: key and value bytes, plus what a test needs to know.

A :class:`Message` is one Kafka record before it is sent: the key, the value exactly as
it goes on the wire, the event time that pacing schedules it by, and, for records made
bad on purpose by :mod:`producers.faults`, the fault and the dead-letter reason the
engine must give it.

Messages can also be written to and read back from JSON Lines (``--out FILE``), one
message per line::

    {"topic": "prices", "key": "SPX", "value": "{\\"symbol\\":\\"SPX\\",...}"}

``value`` is the message value as text (it is *not* parsed, so malformed values survive
the round trip); a value that is not valid UTF-8 is written as ``value_b64`` instead.
Injected faults add ``fault`` and ``expected_reason``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from engine.boundary.records import RawRecord, Reason, utf8_text
from engine.boundary.schemas import PriceTick, Transaction
from engine.errors import InputError


@dataclass(frozen=True, slots=True)
class Message:
    """One record to send.

    Attributes
    ----------
    key, value
        The Kafka key and value, as bytes on the wire.
    event_ms
        Event time in epoch milliseconds (UTC) used to pace the stream (``speed``). For an
        injected fault it is the event time of the good record it was derived from, never
        its bogus timestamp; ``None`` if unknown.
    fault
        The injected fault's name (see :data:`producers.faults.PRICE_FAULTS`), else ``None``.
    expected
        The dead-letter reason the engine must give this record; ``None`` for a good record.
    """

    key: bytes | None
    value: bytes | None
    event_ms: int | None = None
    fault: str | None = None
    expected: Reason | None = None

    @property
    def is_bad(self) -> bool:
        return self.expected is not None

    def to_record(self, offset: int, partition: int = 0) -> RawRecord:
        """The message as a consumer sees it at ``(partition, offset)``."""
        return RawRecord(self.key, self.value, partition, offset)


def price_messages(ticks: Iterable[PriceTick]) -> Iterator[Message]:
    """Encode ticks as ``prices`` messages (key = symbol), lazily, in order."""
    for tick in ticks:
        yield Message(tick.key, tick.to_json(), tick.ts)


def transaction_messages(transactions: Iterable[Transaction]) -> Iterator[Message]:
    """Encode transactions as ``transactions`` messages (key = customer id), lazily, in order."""
    for tx in transactions:
        yield Message(tx.key, tx.to_json(), tx.ts)


# --- JSON Lines ---------------------------------------------------------------------------


def message_line(message: Message, topic: str) -> bytes:
    """One JSON Lines line (with its ``\\n``) for ``message`` sent to ``topic``."""
    doc: dict[str, Any] = {"topic": topic, "key": utf8_text(message.key)}
    if message.key is not None and doc["key"] is None:
        doc["key_b64"] = base64.b64encode(message.key).decode("ascii")
    text = utf8_text(message.value)
    if message.value is not None and text is None:
        doc["value_b64"] = base64.b64encode(message.value).decode("ascii")
    else:
        doc["value"] = text
    if message.fault is not None:
        doc["fault"] = message.fault
    if message.expected is not None:
        doc["expected_reason"] = message.expected.value
    return orjson.dumps(doc) + b"\n"


def write_jsonl(messages: Iterable[Message], out: IO[bytes], topic: str) -> Iterator[Message]:
    """Write each message to ``out`` as it passes through; yields the messages written."""
    for message in messages:
        out.write(message_line(message, topic))
        yield message


def read_jsonl(path: Path) -> Iterator[tuple[str, Message]]:
    """Read back ``(topic, message)`` pairs written by :func:`write_jsonl`, in file order.

    Raises
    ------
    InputError
        If the file is missing or a line is not such a document (the line number is named).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"message file not found: {path}")
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                doc = orjson.loads(line)
                key = _bytes(doc, "key")
                value = _bytes(doc, "value")
                expected = doc.get("expected_reason")
                message = Message(
                    key,
                    value,
                    None,
                    doc.get("fault"),
                    None if expected is None else Reason(expected),
                )
                yield str(doc["topic"]), message
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise InputError(f"{path}:{number}: not a message line ({exc})") from None


def _bytes(doc: dict[str, Any], name: str) -> bytes | None:
    if doc.get(f"{name}_b64") is not None:
        return base64.b64decode(doc[f"{name}_b64"])
    value = doc[name] if name == "value" else doc.get(name)  # a value must be there
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name!r} must be text")
    return value.encode("utf-8")
