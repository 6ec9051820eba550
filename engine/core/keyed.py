"""The shared base of per-key books: slot index, partition of each key, persistence.

A book owns a :class:`~engine.core.slots.SlotIndex` and a tuple of online components
sharing it. It admits unseen keys (restoring their state through ``load_row`` when the
caller has persisted state, e.g. a Faust table) and exports each key's complete state
as one JSON row, tagged with the Kafka partition the key's records arrive on, so the
worker writes it to the matching changelog partition.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import orjson

from engine.core.online import OnlineComponent
from engine.core.slots import Column, SlotArrays, SlotIndex

#: Format of a persisted state row; rows of another format are ignored (cold start).
ROW_FORMAT = 1

LoadRow = Callable[[str], bytes | None]


class KeyedBook:
    """Slot index + per-key partition + online components, with row persistence."""

    def __init__(self, components: tuple[OnlineComponent, ...]) -> None:
        self.index = SlotIndex()
        self.meta = SlotArrays([Column("partition", np.int32, -1)])
        self.components = components

    def __len__(self) -> int:
        return len(self.index)

    def slots_for(self, keys: list[str], load_row: LoadRow | None) -> np.ndarray:
        """Slots of ``keys``; unseen keys are admitted and their saved state restored."""
        slots, new = self.index.lookup(keys)
        if new:
            n = len(self.index)
            self.meta.ensure(n)
            for component in self.components:
                component.ensure(n)
            for key in new:
                self._restore(self.index.slot(key), load_row(key) if load_row is not None else None)
        return slots

    def _restore(self, slot: int, saved: bytes | None) -> None:
        row = orjson.loads(saved) if saved else None
        if row is not None and row.get("format") != ROW_FORMAT:
            row = None
        self.meta.reset(slot)
        if row is not None:
            self.meta["partition"][slot] = row.get("partition", -1)
        for component in self.components:
            component.restore(slot, None if row is None else row.get(component.name))

    def row(self, slot: int) -> bytes:
        """One key's complete state, as persisted (JSON bytes)."""
        row: dict[str, object] = {
            "format": ROW_FORMAT,
            "key": self.index.keys[slot],
            "partition": int(self.meta["partition"][slot]),
        }
        for component in self.components:
            row[component.name] = component.export(slot)
        return orjson.dumps(row, option=orjson.OPT_SERIALIZE_NUMPY)

    def rows(self, slots: Iterable[int]) -> list[tuple[str, int, bytes]]:
        """``(key, partition, row)`` for each slot: what to persist after a batch."""
        keys = self.index.keys
        partition = self.meta["partition"]
        return [(keys[s], int(partition[s]), self.row(s)) for s in slots]

    def clear(self) -> None:
        """Forget every key (after a rebalance); state reloads lazily through ``load_row``."""
        self.index.clear()
