"""Deterministic bad-input injection, each bad record labelled with its dead-letter reason.

:func:`inject_bad` mixes malformed and invalid records into a stream of good
:class:`~producers.messages.Message` objects. Every injected record carries the fault's
name and the :class:`~engine.boundary.records.Reason` the engine must dead-letter it with, so a
test can assert that the dead letters are exactly the injected records, with exactly
the expected reasons, and that every good record is accepted.

The labels follow the rules of :mod:`engine.boundary.validation` (checked in order, the first
failure is the reason) and of the sequencers (:mod:`engine.core.sequencer`,
:mod:`engine.core.customers`):

* a ``duplicate`` is an exact repeat (same key and bytes) of the latest good record of
  its key, which is what the sequencer calls a duplicate rather than a late tick;
* a ``late`` tick copies the latest good tick of its symbol with a timestamp 1 ms to
  60 s earlier and a different price. Transactions have no ``late`` fault: the engine
  accepts late transactions;
* every other fault is derived from the next good record, so its other fields are valid
  and the fault alone decides the reason.

The labels hold when the good stream is clean (each good record accepted: no late or
repeated events of its own) and is consumed in order, as Kafka delivers one key's
records, whatever the micro-batch boundaries.
"""

from __future__ import annotations

import json
import random
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Literal

import orjson

from engine.boundary.records import Reason
from engine.boundary.timeutil import format_ts, parse_ts
from engine.errors import InputError
from producers.messages import Message

Stream = Literal["prices", "transactions"]

FAR_FUTURE_MS = 4_102_444_800_000
"""2100-01-01T00:00:00Z: far beyond any clock skew the engine tolerates."""
LATE_MAX_MS = 60_000
RECENT_KEYS = 64

_COMMON: dict[str, Reason] = {
    "malformed_json": Reason.MALFORMED_JSON,
    "not_an_object": Reason.NOT_AN_OBJECT,
    "missing_field": Reason.MISSING_FIELD,
    "bad_timestamp": Reason.BAD_TIMESTAMP,
    "future_timestamp": Reason.FUTURE_TIMESTAMP,
    "duplicate": Reason.DUPLICATE,
    "wrong_key": Reason.KEY_MISMATCH,
}
PRICE_FAULTS: dict[str, Reason] = {
    **_COMMON,
    "nan_price": Reason.NON_FINITE,
    "infinite_price": Reason.NON_FINITE,
    "negative_price": Reason.NON_POSITIVE_PRICE,
    "zero_price": Reason.NON_POSITIVE_PRICE,
    "text_price": Reason.WRONG_TYPE,
    "late": Reason.LATE,
}
"""Faults of the ``prices`` stream and the reason the engine gives each."""
TRANSACTION_FAULTS: dict[str, Reason] = {
    **_COMMON,
    "nan_amount": Reason.NON_FINITE,
    "infinite_amount": Reason.NON_FINITE,
    "negative_amount": Reason.NEGATIVE_AMOUNT,
    "text_amount": Reason.WRONG_TYPE,
}
"""Faults of the ``transactions`` stream and the reason the engine gives each."""
REQUIRED = {"prices": ("symbol", "ts", "price"), "transactions": ("tx_id", "customer_id", "ts")}
_NEEDS_HISTORY = frozenset({"duplicate", "late"})


def inject_bad(
    messages: Iterable[Message],
    fraction: float,
    seed: int,
    *,
    stream: Stream | None = None,
    faults: Sequence[str] | None = None,
) -> Iterator[Message]:
    """Mix bad records into ``messages``, lazily and deterministically.

    Before each good message, bad records are inserted one after another while a uniform
    draw is below ``fraction``, so bad records make up ``fraction`` of the output on
    average. The good messages come out unchanged and in order.

    Parameters
    ----------
    messages
        Good messages (e.g. from :func:`producers.messages.price_messages`). Messages that
        already carry a fault pass through and are not used as templates.
    fraction
        Expected share of bad records in the output, ``0 <= fraction < 1``.
    seed
        Seed of the choices; same input and seed give the same output.
    stream
        ``"prices"`` or ``"transactions"``; by default read off the first message.
    faults
        Names of the faults to draw from (uniformly); by default all of the stream's,
        :data:`PRICE_FAULTS` or :data:`TRANSACTION_FAULTS`.

    Raises
    ------
    InputError
        If ``fraction`` is out of range or a fault name is unknown.
    """
    if not 0.0 <= fraction < 1.0:
        raise InputError(f"the bad fraction must be in [0, 1), got {fraction}")
    if fraction == 0.0:
        yield from messages
        return
    injector: _Injector | None = None
    for message in messages:
        if message.expected is not None:
            yield message
            continue
        if injector is None:
            injector = _Injector(stream or _stream_of(message), seed, faults)
        while injector.rng.random() < fraction:
            bad = injector.bad(message)
            if bad is not None:
                yield bad
        injector.remember(message)
        yield message


def _stream_of(message: Message) -> Stream:
    try:
        doc = orjson.loads(message.value or b"")
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and "symbol" in doc and "price" in doc:
        return "prices"
    if isinstance(doc, dict) and "tx_id" in doc and "amount" in doc:
        return "transactions"
    raise InputError("cannot tell prices from transactions by the first message; pass stream")


class _Injector:
    def __init__(self, stream: Stream, seed: int, faults: Sequence[str] | None) -> None:
        table = PRICE_FAULTS if stream == "prices" else TRANSACTION_FAULTS
        names = list(table) if faults is None else list(dict.fromkeys(faults))
        unknown = [n for n in names if n not in table]
        if unknown or not names:
            raise InputError(f"unknown {stream} fault(s) {unknown}; choose from {', '.join(table)}")
        self.stream = stream
        self.table = table
        self.names = names
        self.simple = [n for n in names if n not in _NEEDS_HISTORY]
        self.rng = random.Random(seed)
        self.last: dict[bytes | None, Message] = {}
        self.recent: deque[bytes | None] = deque(maxlen=RECENT_KEYS)
        self.value_field = "price" if stream == "prices" else "amount"
        self.builders: dict[str, Callable[[Message], Message | None]] = {
            "malformed_json": self._malformed,
            "not_an_object": lambda m: self._raw(m, b"[" + (m.value or b"") + b"]"),
            "missing_field": self._missing,
            "bad_timestamp": lambda m: self._edit(m, ts="yesterday at noon"),
            "future_timestamp": self._future,
            "duplicate": self._duplicate,
            "wrong_key": lambda m: self._raw(m, m.value, key=b"not-" + (m.key or b"")),
            "late": self._late,
            "nan_price": lambda m: self._edit(m, price=float("nan")),
            "infinite_price": lambda m: self._edit(m, price=self.rng.choice([1, -1]) * _INF),
            "negative_price": lambda m: self._edit(m, price=-abs(self._value(m))),
            "zero_price": lambda m: self._edit(m, price=0.0),
            "text_price": lambda m: self._edit(m, price=str(self._value(m))),
            "nan_amount": lambda m: self._edit(m, amount=float("nan")),
            "infinite_amount": lambda m: self._edit(m, amount=_INF),
            "negative_amount": lambda m: self._edit(m, amount=-(abs(self._value(m)) + 0.01)),
            "text_amount": lambda m: self._edit(m, amount=str(self._value(m))),
        }
        self._fault = ""

    def remember(self, message: Message) -> None:
        """Record a good message: the engine will have accepted it when the next one arrives."""
        self.last[message.key] = message
        self.recent.append(message.key)

    def bad(self, template: Message) -> Message | None:
        """One bad record derived from ``template`` (the next good message) or from history.

        ``None`` when only history-based faults were asked for and there is no history yet.
        """
        name = self.rng.choice(self.names)
        made = self._build(name, template)
        if made is None and self.simple:
            made = self._build(self.rng.choice(self.simple), template)
        return made

    def _build(self, name: str, template: Message) -> Message | None:
        if name in _NEEDS_HISTORY and not self.recent:
            return None
        self._fault = name
        return self.builders[name](template)

    # --- builders ---------------------------------------------------------------------

    def _label(self, key: bytes | None, value: bytes | None, template: Message) -> Message:
        name = self._fault
        return Message(key, value, template.event_ms, name, self.table[name])

    def _raw(self, template: Message, value: bytes | None, key: bytes | None = None) -> Message:
        return self._label(template.key if key is None else key, value, template)

    def _doc(self, message: Message) -> dict[str, Any]:
        doc = orjson.loads(message.value or b"")
        assert isinstance(doc, dict), "templates are good messages"
        return doc

    def _value(self, message: Message) -> float:
        return float(self._doc(message)[self.value_field])

    def _edit(self, template: Message, **changes: Any) -> Message:
        doc = self._doc(template)
        doc.update(changes)
        # json (not orjson) writes NaN and Infinity as the bare tokens NaN / Infinity.
        return self._raw(template, json.dumps(doc, separators=(",", ":")).encode("utf-8"))

    def _malformed(self, template: Message) -> Message:
        value = template.value or b"{}"
        variant = self.rng.randrange(3)
        if variant == 0:
            broken = value[: max(1, len(value) // 2)]  # truncated mid-document
        elif variant == 1:
            broken = value[:1] + b"\xc3\x28" + value[1:]  # invalid UTF-8
        else:
            broken = value + b",}"  # trailing garbage
        return self._raw(template, broken)

    def _missing(self, template: Message) -> Message:
        doc = self._doc(template)
        required = (*REQUIRED[self.stream], self.value_field)
        del doc[self.rng.choice([f for f in dict.fromkeys(required) if f in doc])]
        return self._raw(template, orjson.dumps(doc))

    def _future(self, template: Message) -> Message:
        when = FAR_FUTURE_MS + self.rng.randrange(365 * 86_400_000)
        return self._edit(template, ts=format_ts(when))

    def _pick_recent(self) -> Message:
        return self.last[self.rng.choice(self.recent)]

    def _duplicate(self, template: Message) -> Message:
        original = self._pick_recent()
        return self._label(original.key, original.value, template)

    def _late(self, template: Message) -> Message | None:
        original = self._pick_recent()
        doc = self._doc(original)
        ts = parse_ts(doc["ts"])
        if ts < 1:
            return None
        doc["ts"] = format_ts(ts - self.rng.randint(1, min(LATE_MAX_MS, ts)))
        doc["price"] = round(float(doc["price"]) * (1.0 + self.rng.uniform(0.0001, 0.01)), 6)
        if doc.get("event_id") is not None:
            doc["event_id"] = f"{doc['event_id']}-late"
        return self._label(original.key, orjson.dumps(doc), template)


_INF = float("inf")
