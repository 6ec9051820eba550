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
column layout) matches the running component, or its legacy fingerprint (the same
layout before a ring was narrowed to a smaller integer type: its blocks are converted
as they are read); otherwise that component alone starts cold for the key. A deployment
that adds or changes one model therefore keeps the state of every other model.

Ring columns (:mod:`engine.core.slots`) are persisted as separate block records,
``<key>\x00<component>.<ring>:<block>`` holding the component fingerprint and the
block's values (``None`` deletes a block that fell out of the ring). :meth:`rows` emits a
key's blocks *before* its main row: records of one partition are stored in order, so a
persisted main row implies its blocks are persisted too.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable

import numba
import numpy as np

from engine.core.online import OnlineComponent
from engine.core.slots import Column, SlotArrays, SlotIndex

ROW_MAGIC = b"RS"
ROW_VERSION = 2
_HEAD = struct.Struct("<2sBiB")
_LENGTH = struct.Struct("<I")
#: :data:`_HEAD` as a packed numpy record, to build many rows' heads at once.
_HEAD_DTYPE = np.dtype([("magic", "S2"), ("version", "u1"), ("partition", "<i4"), ("count", "u1")])
assert _HEAD_DTYPE.itemsize == _HEAD.size

LoadRow = Callable[[str], bytes | None]


@numba.njit(cache=True, nogil=True)
def _claim(slots, partition, home, foreign):  # pragma: no cover - compiled
    for i in range(slots.shape[0]):
        s = slots[i]
        if home[s] < 0:
            home[s] = partition[i]
        foreign[i] = home[s] != partition[i]


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


def block_key(key: str, component: str, ring: str, block: int) -> str:
    """Table key of a persisted ring block (control characters never occur in real keys)."""
    return f"{key}\x00{component}.{ring}:{block}"


def _block_fetcher(
    load_row: LoadRow, key: str, component: OnlineComponent
) -> Callable[[str, int], bytes | None]:
    fingerprint, legacy = component.fingerprint, component.legacy_fingerprint

    def fetch(ring: str, block: int) -> bytes | None:
        value = load_row(block_key(key, component.name, ring, block))
        if value is None:
            return None
        if value[:8] == fingerprint:
            return value[8:]
        if legacy is not None and value[:8] == legacy:  # written before a ring was narrowed
            return component.state.legacy_block(ring, value[8:])
        return None

    return fetch


class KeyedBook:
    """Slot index + per-key partition + online components, with row persistence."""

    def __init__(self, components: tuple[OnlineComponent, ...]) -> None:
        self.index = SlotIndex()
        self.meta = SlotArrays([Column("partition", np.int32, -1)])
        self.components = components

    def __len__(self) -> int:
        return len(self.index)

    def partition(self, key: str) -> int:
        """The source partition of a key the book holds."""
        return int(self.meta["partition"][self.index.slot(key)])

    def claim(self, slots: np.ndarray, partitions: np.ndarray) -> np.ndarray:
        """Which records came on a partition other than their key's *home* partition.

        A key's home is the partition its state was saved from, else the first partition
        it is seen on in arrival order. Its state, its offsets and its changelog row live
        with that partition, so a record of the same key on another partition (a producer
        with a different partitioner, e.g. librdkafka's CRC32 default next to murmur2) can
        be neither ordered nor applied: the books refuse it
        (:attr:`~engine.core.sequencer.Status.WRONG_PARTITION`) and leave the key's state
        untouched. Returns a boolean mask over the records.
        """
        foreign = np.empty(slots.shape[0], dtype=np.bool_)
        _claim(slots, partitions.astype(np.int32, copy=False), self.meta["partition"], foreign)
        return foreign

    def slots_for(self, keys: list[str], load_row: LoadRow | None) -> np.ndarray:
        """Slots of ``keys``; unseen keys are admitted and their saved state restored."""
        slots, new = self.index.lookup(keys)
        if new:
            n = len(self.index)
            self.meta.ensure(n)
            for component in self.components:
                component.ensure(n)
            for key in new:
                saved = load_row(key) if load_row is not None else None
                self._restore(self.index.slot(key), saved, load_row)
        return slots

    def _restore(self, slot: int, saved: bytes | None, load_row: LoadRow | None = None) -> None:
        partition, segments = parse_row(saved) if saved else (-1, {})
        self.meta.reset(slot)
        self.meta["partition"][slot] = partition
        key = self.index.keys[slot]
        for component in self.components:
            found = segments.get(component.name)
            ok = found is not None and (
                found[0] == component.fingerprint or found[0] == component.legacy_fingerprint
            )
            fetch = _block_fetcher(load_row, key, component) if ok and load_row else None
            component.unpack(slot, found[1] if ok else None, fetch)

    def rows(self, slots: Iterable[int]) -> list[tuple[str, int, bytes | None]]:
        """``(key, partition, row)`` for each slot, ring blocks first: what to persist after a batch.

        Every component packs all the slots in one vectorised step; only the final
        concatenation is per key. A ``None`` row deletes the key (a stale ring block).
        """
        slots = np.fromiter(slots, dtype=np.int64) if not isinstance(slots, np.ndarray) else slots
        if slots.size == 0:
            return []
        packed = []
        blocks: dict[int, list[tuple[str, bytes | None]]] = {}
        keys = self.index.keys
        for component in self.components:
            records = component.pack(slots)
            name = component.name.encode()
            prefix = (
                bytes([len(name)]) + name + component.fingerprint + _LENGTH.pack(records.shape[1])
            )
            packed.append((prefix, records))
            for slot, ring, block, data in component.ring_blocks(slots):
                value = None if data is None else component.fingerprint + data
                blocks.setdefault(slot, []).append(
                    (block_key(keys[slot], component.name, ring, block), value)
                )
        partition = self.meta["partition"][slots]
        n = slots.size
        head = np.empty(n, _HEAD_DTYPE)
        head["magic"] = ROW_MAGIC
        head["version"] = ROW_VERSION
        head["partition"] = partition
        head["count"] = len(self.components)
        # Every key's row in one array, then one bytes object per row (not per component).
        parts = [head.view(np.uint8).reshape(n, _HEAD.size)]
        for prefix, records in packed:
            parts.append(np.broadcast_to(np.frombuffer(prefix, np.uint8), (n, len(prefix))))
            parts.append(records)
        rows = np.hstack(parts)
        partitions = partition.tolist()
        out: list[tuple[str, int, bytes | None]] = []
        for i, slot in enumerate(slots.tolist()):
            for block, value in blocks.get(slot, ()):
                out.append((block, partitions[i], value))
            out.append((keys[slot], partitions[i], rows[i].tobytes()))
        return out

    def row(self, slot: int) -> bytes:
        """One key's main row (its ring blocks, if any, are separate records of :meth:`rows`)."""
        row = self.rows(np.array([slot]))[-1][2]
        assert row is not None
        return row

    def clear(self) -> None:
        """Forget every key (after a rebalance); state reloads lazily through ``load_row``."""
        self.index.clear()
