"""The shared base of per-key books: slot index, partition of each key, persistence.

A book owns a :class:`~engine.core.slots.SlotIndex` and a tuple of online components
sharing it. It admits unseen keys (restoring their state through ``load_row`` when the
caller has persisted state, e.g. a Faust table) and exports each key's complete state
as one binary *row*, tagged with the Kafka partition the key's records arrive on, so
the worker writes it to the matching changelog partition.

Row format (little-endian)::

    b"RS" version:u8 partition:i32 n:u8
    n x ( name_len:u8 name fingerprint:8 bytes length:u32 record )

Each component's record is restored only if its fingerprint (name, state version and
column layout) matches the running component; otherwise that component alone starts
cold for the key. A deployment that adds or changes one model therefore keeps the
state of every other model.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable

import numpy as np

from engine.core.online import OnlineComponent
from engine.core.slots import Column, SlotArrays, SlotIndex

ROW_MAGIC = b"RS"
ROW_VERSION = 2
_HEAD = struct.Struct("<2sBiB")
_LENGTH = struct.Struct("<I")

LoadRow = Callable[[str], bytes | None]


def parse_row(row: bytes) -> tuple[int, dict[str, tuple[bytes, bytes]]]:
    """``(partition, {component name: (fingerprint, record)})``; ``(-1, {})`` for a foreign row."""
    if len(row) < _HEAD.size:
        return -1, {}
    magic, version, partition, count = _HEAD.unpack_from(row)
    if magic != ROW_MAGIC or version != ROW_VERSION:
        return -1, {}
    view = memoryview(row)
    pos = _HEAD.size
    segments: dict[str, tuple[bytes, bytes]] = {}
    for _ in range(count):
        name_len = view[pos]
        name = bytes(view[pos + 1 : pos + 1 + name_len]).decode()
        pos += 1 + name_len
        fingerprint = bytes(view[pos : pos + 8])
        (length,) = _LENGTH.unpack_from(view, pos + 8)
        pos += 12
        segments[name] = (fingerprint, bytes(view[pos : pos + length]))
        pos += length
    return partition, segments


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
        partition, segments = parse_row(saved) if saved else (-1, {})
        self.meta.reset(slot)
        self.meta["partition"][slot] = partition
        for component in self.components:
            found = segments.get(component.name)
            component.unpack(
                slot, found[1] if found and found[0] == component.fingerprint else None
            )

    def rows(self, slots: Iterable[int]) -> list[tuple[str, int, bytes]]:
        """``(key, partition, row)`` for each slot: what to persist after a batch.

        Every component packs all the slots in one vectorised step; only the final
        concatenation is per key.
        """
        slots = np.fromiter(slots, dtype=np.int64) if not isinstance(slots, np.ndarray) else slots
        if slots.size == 0:
            return []
        packed = []
        for component in self.components:
            records = component.pack(slots)
            name = component.name.encode()
            prefix = (
                bytes([len(name)]) + name + component.fingerprint + _LENGTH.pack(records.shape[1])
            )
            packed.append((prefix, records))
        keys = self.index.keys
        partitions = self.meta["partition"][slots].tolist()
        head = _HEAD.pack
        count = len(self.components)
        out = []
        for i, slot in enumerate(slots.tolist()):
            parts = [head(ROW_MAGIC, ROW_VERSION, partitions[i], count)]
            for prefix, records in packed:
                parts.append(prefix)
                parts.append(records[i].tobytes())
            out.append((keys[slot], partitions[i], b"".join(parts)))
        return out

    def row(self, slot: int) -> bytes:
        """One key's complete state, as persisted."""
        return self.rows(np.array([slot]))[0][2]

    def clear(self) -> None:
        """Forget every key (after a rebalance); state reloads lazily through ``load_row``."""
        self.index.clear()
