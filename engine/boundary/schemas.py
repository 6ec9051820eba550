"""The events on the wire, as producers build them (see docs/contracts.md).

``prices`` (key = symbol)::

    {"symbol": "SPX", "ts": "2019-11-05T09:30:00Z", "price": 3080.49}

with optional ``volume``, ``event_id`` and ``asset_class``; ``ts`` is ISO 8601 or
epoch milliseconds.

``transactions`` (key = customer id)::

    {"tx_id": "...", "ts": "...", "customer_id": "...", "amount": 57.16}

with optional ``terminal_id``, ``currency``, ``type`` and extra numeric or categorical
features.

These classes *produce* valid messages. What the engine *accepts* is decided by
:mod:`engine.boundary.validation`, which never trusts that a message came from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from engine.boundary.records import RawRecord
from engine.boundary.timeutil import format_ts


class _Message:
    """What every event class adds to its ``to_dict`` and ``key``: its bytes on the wire."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @property
    def key(self) -> bytes:
        raise NotImplementedError

    def to_json(self) -> bytes:
        """The message value: :meth:`to_dict` as JSON (UTF-8; numpy scalars allowed)."""
        return orjson.dumps(self.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY)

    def to_record(self, offset: int, partition: int = 0) -> RawRecord:
        """The message as a consumer would see it (for the embedded runner and tests)."""
        return RawRecord(self.key, self.to_json(), partition, offset)


@dataclass(frozen=True, slots=True)
class PriceTick(_Message):
    """One price observation. ``ts`` is epoch milliseconds (UTC); ``price`` > 0."""

    symbol: str
    ts: int
    price: float
    volume: float | None = None
    event_id: str | None = None
    asset_class: str | None = None

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"symbol": self.symbol, "ts": format_ts(self.ts), "price": self.price}
        if self.volume is not None:
            doc["volume"] = self.volume
        if self.event_id is not None:
            doc["event_id"] = self.event_id
        if self.asset_class is not None:
            doc["asset_class"] = self.asset_class
        return doc

    @property
    def key(self) -> bytes:
        return self.symbol.encode("utf-8")


@dataclass(frozen=True, slots=True)
class Transaction(_Message):
    """One card transaction. ``ts`` is epoch milliseconds (UTC); ``amount`` >= 0."""

    tx_id: str
    ts: int
    customer_id: str
    amount: float
    terminal_id: str | None = None
    currency: str | None = None
    type: str | None = None
    features: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "tx_id": self.tx_id,
            "ts": format_ts(self.ts),
            "customer_id": self.customer_id,
            "amount": self.amount,
        }
        for name in ("terminal_id", "currency", "type"):
            value = getattr(self, name)
            if value is not None:
                doc[name] = value
        doc.update(self.features)
        return doc

    @property
    def key(self) -> bytes:
        return self.customer_id.encode("utf-8")
