"""Records as they arrive, and dead letters for the ones riskstream refuses.

A :class:`RawRecord` is one message as it came off a topic, or one line of a replay
file: undecoded bytes plus where it came from. Anything with the attributes ``key``,
``value``, ``partition`` and ``offset`` (an aiokafka ``ConsumerRecord`` included) is
accepted wherever a :class:`RecordLike` is.

A :class:`DeadLetter` keeps the original bytes untouched and says why the record was
refused. On Kafka it is written to ``<topic>.dlq`` with the original key and value and
the reason in headers (the Kafka Connect convention), so a fixed record can be replayed
by copying it back.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class RecordLike(Protocol):
    """What the pipeline needs of a consumed message."""

    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One undecoded message. ``offset`` orders records within a ``partition``."""

    key: bytes | None
    value: bytes | None
    partition: int = 0
    offset: int = 0


class Reason(StrEnum):
    """Why a record was refused. A closed set: it labels a metric."""

    MALFORMED_JSON = "malformed_json"
    """Not UTF-8 JSON."""
    NOT_AN_OBJECT = "not_an_object"
    """JSON, but not an object."""
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    BAD_IDENTIFIER = "bad_identifier"
    """Empty, too long or non-text symbol/customer/transaction id."""
    NON_FINITE = "non_finite"
    """NaN or infinity where a number is required."""
    NON_POSITIVE_PRICE = "non_positive_price"
    NEGATIVE_AMOUNT = "negative_amount"
    NEGATIVE_VOLUME = "negative_volume"
    BAD_TIMESTAMP = "bad_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    KEY_MISMATCH = "key_mismatch"
    """The Kafka key is not the record's symbol/customer: its state would live in the wrong partition."""
    LATE = "late"
    """Older than the last accepted event of the same symbol."""
    DUPLICATE = "duplicate"
    """Same event id (or, without one, same timestamp and price) as an accepted event."""
    WRONG_PARTITION = "wrong_partition"
    """The key's state lives with another partition: its producer partitions keys
    differently from the one that first sent it (e.g. librdkafka's CRC32 next to murmur2)."""
    TOO_LARGE = "too_large"
    """The record is larger than ``RISKSTREAM_MAX_RECORD_BYTES``."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A refused record: where it came from, its original bytes, and why."""

    topic: str
    key: bytes | None
    value: bytes | None
    partition: int
    offset: int
    reason: Reason
    detail: str

    @classmethod
    def of(cls, topic: str, record: RecordLike, reason: Reason, detail: str) -> DeadLetter:
        return cls(topic, record.key, record.value, record.partition, record.offset, reason, detail)

    @property
    def dlq_topic(self) -> str:
        return f"{self.topic}.dlq"

    def headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers carrying the reason and the source coordinates."""
        return [
            ("riskstream.reason", self.reason.value.encode()),
            ("riskstream.detail", self.detail.encode()[:1024]),
            ("riskstream.source.topic", self.topic.encode()),
            ("riskstream.source.partition", str(self.partition).encode()),
            ("riskstream.source.offset", str(self.offset).encode()),
        ]

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict: bytes as base64, plus UTF-8 text when the bytes are text."""
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "reason": self.reason.value,
            "detail": self.detail,
            "key_b64": _b64(self.key),
            "value_b64": _b64(self.value),
            "value_text": utf8_text(self.value),
        }


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def utf8_text(data: bytes | None) -> str | None:
    """``data`` as text when it is valid UTF-8; ``None`` when it is not, or is ``None``.

    >>> utf8_text(b"SPX"), utf8_text(b"\\xff"), utf8_text(None)
    ('SPX', None, None)
    """
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None
