"""Dense per-key state: keys (symbols, customers) mapped to slots, state kept in columns.

Online models in riskstream keep their state as numpy columns indexed by *slot*, one
slot per key, so a micro-batch update is one compiled loop over arrays instead of a
Python loop over objects. :class:`SlotIndex` maps keys to slots; :class:`SlotArrays`
holds a model's columns and grows them geometrically. A column is one of three kinds:

``state`` (the default)
    persisted in the key's fixed-width binary record (:meth:`SlotArrays.pack` /
    :meth:`SlotArrays.unpack`), packed for many slots in one vectorised step: what the
    worker writes after every micro-batch. :attr:`SlotArrays.fingerprint` names the
    layout, so a record is never read into columns it was not written from.
``ring``
    a ring buffer of the last ``width`` values (``width`` a multiple of
    :data:`BLOCK`), whose count of values ever pushed is the ``state`` column named by
    ``ring_head``. Too large to rewrite every batch, it is persisted in blocks of
    :data:`BLOCK` values, each keyed by its absolute block number (value ``i`` lives in
    block ``i // BLOCK``), only the blocks written since the last persist
    (:meth:`SlotArrays.ring_blocks`). Absolute numbers are never reused, so a torn write
    can never overwrite older values; blocks that fell out of the ring are deleted.
``transient``
    derived from the others (the lower tail of a ring, running sums); not persisted,
    rebuilt by the owning component after a restore.

A ``ring`` or ``transient`` column may be *lazy*: it holds no values (width 0) until
its owner calls :meth:`SlotArrays.materialize`, the first time a value is pushed to it
(or a persisted ring block is restored into it). A column that a feed never feeds (the
realised-variance history of a feed without ``rv``) then costs nothing per slot.

A JSON-safe dict of the ``state`` columns (:meth:`SlotArrays.export` /
:meth:`SlotArrays.restore`) serves inspection and tests.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

#: Values per persisted block of a ring column.
BLOCK = 64

Kind = Literal["state", "ring", "transient"]


@dataclass(frozen=True, slots=True)
class Column:
    """One state column: ``width`` 0 is a scalar per slot, ``width`` k a vector of k."""

    name: str
    dtype: type
    fill: Any
    width: int = 0
    kind: Kind = "state"
    ring_head: str | None = None
    """For a ``ring``: the ``state`` column counting the values ever pushed."""
    lazy: bool = False
    """Allocated (for every slot) only by :meth:`SlotArrays.materialize`; ``ring`` and
    ``transient`` columns only (a ``state`` column is in every persisted record)."""
    was: type | None = None
    """For a ``ring`` whose type was narrowed: its type in the previous layout. Blocks
    written with it are still restored, converted (:attr:`SlotArrays.legacy_fingerprint`)."""

    def __post_init__(self) -> None:
        if self.lazy and (self.kind == "state" or self.width == 0):
            raise ValueError(f"lazy column {self.name!r} must be a ring or transient vector")
        if self.kind == "ring":
            if self.width <= 0 or self.width % BLOCK:
                raise ValueError(
                    f"ring column {self.name!r} needs a width that is a positive multiple of {BLOCK}"
                )
            if self.ring_head is None:
                raise ValueError(f"ring column {self.name!r} needs ring_head")


def bit_dtype(bits: int) -> type:
    """The narrowest signed integer type holding ``bits`` flag bits (a ring of bit sets).

    >>> bit_dtype(2), bit_dtype(8), bit_dtype(63)
    (<class 'numpy.int8'>, <class 'numpy.int16'>, <class 'numpy.int64'>)
    """
    for dtype in (np.int8, np.int16, np.int32, np.int64):
        if bits < np.iinfo(dtype).bits:
            return dtype
    raise ValueError(f"{bits} flag bits do not fit an int64")


def ring_capacity(values: int) -> int:
    """The smallest ring width (a multiple of :data:`BLOCK`) holding ``values`` values and one spare block."""
    return (values // BLOCK + 2) * BLOCK


class SlotArrays:
    """State columns for every slot, with amortised O(1) growth.

    Arrays are reallocated on growth: read them through :meth:`__getitem__` at each
    use, never keep a reference across a call that may add keys.

    >>> arrays = SlotArrays([Column("var", np.float64, np.nan)])
    >>> arrays.ensure(3); arrays["var"][2] = 0.5
    >>> arrays.export(2)
    {'var': 0.5}
    """

    def __init__(self, columns: Sequence[Column], capacity: int = 16) -> None:
        self.columns = tuple(columns)
        self.persisted = tuple(c for c in self.columns if c.kind == "state")
        self.rings = tuple(c for c in self.columns if c.kind == "ring")
        names = {c.name for c in self.persisted}
        for ring in self.rings:
            if ring.ring_head not in names:
                raise ValueError(
                    f"ring {ring.name!r}: head column {ring.ring_head!r} is not a state column"
                )
        self.capacity = 0
        self._arrays: dict[str, np.ndarray] = {}
        #: Lazy columns not allocated yet (they hold width 0 until :meth:`materialize`).
        self._deferred = {c.name for c in self.columns if c.lazy}
        for column in self.columns:
            shape: tuple[int, ...] = (0,) if column.width == 0 else (0, self._width(column))
            self._arrays[column.name] = np.empty(shape, dtype=column.dtype)
        #: Per ring: how many of its values have been persisted (not itself persisted: it
        #: equals the head after a restore).
        self._persisted_head = {ring.name: np.zeros(0, np.int64) for ring in self.rings}
        self.ensure(capacity)

    def __getitem__(self, name: str) -> np.ndarray:
        return self._arrays[name]

    def _width(self, column: Column) -> int:
        return 0 if column.name in self._deferred else column.width

    def materialized(self, name: str) -> bool:
        """Whether a column holds its values (always, unless it is lazy and not yet materialized)."""
        return name not in self._deferred

    def materialize(self, *names: str) -> None:
        """Allocate lazy columns for every slot, at their fill values (no-op once allocated)."""
        for column in self.columns:
            if column.name in names and column.name in self._deferred:
                self._deferred.discard(column.name)
                self._arrays[column.name] = np.full(
                    (self.capacity, column.width), column.fill, dtype=column.dtype
                )

    @property
    def record_dtype(self) -> np.dtype:
        """The binary layout of one slot's persisted (``state``) columns, packed, little-endian."""
        fields = []
        for column in self.persisted:
            dtype = np.dtype(column.dtype).newbyteorder("<")
            fields.append(
                (column.name, dtype, (column.width,)) if column.width else (column.name, dtype)
            )
        return np.dtype(fields)

    @functools.cached_property
    def fingerprint(self) -> bytes:
        """8 bytes identifying the layout: persisted and ring columns' names, types and widths (fixed)."""
        return self._fingerprint(legacy=False)

    @functools.cached_property
    def legacy_fingerprint(self) -> bytes | None:
        """The fingerprint of the previous layout, whose rings had the types in ``Column.was``
        (``None`` when no ring was narrowed): its records and blocks are restored, converted."""
        if not any(c.was is not None for c in self.rings):
            return None
        return self._fingerprint(legacy=True)

    def _fingerprint(self, legacy: bool) -> bytes:
        rings = [
            (c.name, np.dtype(c.was if legacy and c.was else c.dtype).str, c.width, c.ring_head)
            for c in self.rings
        ]
        seed = repr((self.record_dtype.descr, rings)).encode()
        return hashlib.blake2b(seed, digest_size=8).digest()

    def legacy_block(self, ring: str, data: bytes) -> bytes:
        """A block of ``ring`` written in the previous layout, in the current type."""
        column = next(c for c in self.rings if c.name == ring)
        if column.was is None:
            return data
        return np.frombuffer(data, dtype=column.was).astype(column.dtype).tobytes()

    def ensure(self, n_slots: int) -> None:
        """Make room for at least ``n_slots`` slots; new slots hold the fill values."""
        if n_slots <= self.capacity:
            return
        capacity = max(n_slots, 2 * self.capacity, 16)
        for column in self.columns:
            old = self._arrays[column.name]
            shape = (capacity,) if column.width == 0 else (capacity, self._width(column))
            new = np.full(shape, column.fill, dtype=column.dtype)
            new[: old.shape[0]] = old
            self._arrays[column.name] = new
        for name, old in self._persisted_head.items():
            new = np.zeros(capacity, np.int64)
            new[: old.shape[0]] = old
            self._persisted_head[name] = new
        self.capacity = capacity

    def reset(self, slot: int) -> None:
        """Return a slot to the fill values (a key seen for the first time)."""
        for column in self.columns:
            self._arrays[column.name][slot] = column.fill
        for heads in self._persisted_head.values():
            heads[slot] = 0

    # --- binary records -----------------------------------------------------------------------

    def pack(self, slots: np.ndarray) -> np.ndarray:
        """The ``state`` columns of ``slots`` as binary records: a ``(len(slots), itemsize)`` uint8 array."""
        records = np.empty(len(slots), dtype=self.record_dtype)
        for column in self.persisted:
            records[column.name] = self._arrays[column.name][slots]
        return records.view(np.uint8).reshape(len(slots), self.record_dtype.itemsize)

    def unpack(self, slot: int, data: bytes) -> None:
        """Load one slot's ``state`` columns from a record written by :meth:`pack`."""
        record = np.frombuffer(data, dtype=self.record_dtype, count=1)[0]
        for column in self.persisted:
            self._arrays[column.name][slot] = record[column.name]

    # --- ring blocks ----------------------------------------------------------------------------

    def ring_blocks(self, slots: Iterable[int]) -> list[tuple[int, str, int, bytes | None]]:
        """Blocks to persist since the last call: ``(slot, ring, block number, data or None)``.

        ``data`` is the block's raw values; ``None`` means "delete this block" (it fell
        out of the ring). For each slot and ring, blocks come in increasing order. Each
        block that fell out is deleted once, in the call that pushes it out.
        """
        slots = np.unique(np.fromiter(slots, dtype=np.int64))
        out: list[tuple[int, str, int, bytes | None]] = []
        offsets = np.arange(BLOCK)
        for ring in self.rings:
            data = self._arrays[ring.name]
            persisted = self._persisted_head[ring.name]
            head = self._arrays[ring.ring_head][slots].astype(np.int64)  # type: ignore[index]
            done = persisted[slots]
            moved = head != done
            if not moved.any():
                continue
            slot, head, done = slots[moved], head[moved], done[moved]
            persisted[slot] = head
            blocks = ring.width // BLOCK
            # Written to: the block holding the first new value (done) to the last (head - 1).
            first, last = done // BLOCK, (head - 1) // BLOCK
            # Fell out since the last call: in the ring then (up to the block holding value
            # done - 1), out of it now.
            held = (done - 1) // BLOCK
            one = (first == last) & ((last - blocks + 1 <= 0) | (held >= last))
            if one.any():  # the usual case: one block written, none fell out
                start = (last[one] % blocks) * BLOCK
                values = data[slot[one][:, None], start[:, None] + offsets]
                for k, (s, b) in enumerate(
                    zip(slot[one].tolist(), last[one].tolist(), strict=True)
                ):
                    out.append((s, ring.name, b, values[k].tobytes()))
            for s, f, l_, h in zip(
                slot[~one].tolist(),
                first[~one].tolist(),
                last[~one].tolist(),
                held[~one].tolist(),
                strict=True,
            ):
                for stale in range(max(0, h - blocks + 1), max(0, l_ - blocks + 1)):
                    out.append((s, ring.name, stale, None))
                for block in range(max(f, l_ - blocks + 1), l_ + 1):
                    begin = (block % blocks) * BLOCK
                    out.append((s, ring.name, block, data[s, begin : begin + BLOCK].tobytes()))
        return out

    def load_rings(self, slot: int, fetch: Callable[[str, int], bytes | None]) -> None:
        """Restore a slot's rings from persisted blocks (after its ``state`` columns).

        ``fetch(ring, block)`` returns a block's data or ``None``; a missing block (never
        written, or lost) leaves its values at the fill value.
        """
        for ring in self.rings:
            head = int(self._arrays[ring.ring_head][slot])  # type: ignore[index]
            if head > 0:
                self.materialize(ring.name)
            blocks = ring.width // BLOCK
            target = self._arrays[ring.name]
            target[slot] = ring.fill
            if head > 0:
                last = (head - 1) // BLOCK
                for block in range(max(0, last - blocks + 1), last + 1):
                    data = fetch(ring.name, block)
                    if data is not None:
                        start = (block % blocks) * BLOCK
                        target[slot, start : start + BLOCK] = np.frombuffer(data, dtype=ring.dtype)
            self._persisted_head[ring.name][slot] = head

    # --- inspection -----------------------------------------------------------------------------

    def export(self, slot: int) -> dict[str, Any]:
        """One slot's ``state`` columns as plain Python values (NaN stays NaN; orjson writes null)."""
        out: dict[str, Any] = {}
        for column in self.persisted:
            value = self._arrays[column.name][slot]
            out[column.name] = value.tolist() if column.width else value.item()
        return out

    def restore(self, slot: int, state: dict[str, Any]) -> None:
        """Load a slot's ``state`` columns from :meth:`export` output; missing or null take the fill."""
        for column in self.persisted:
            value = state.get(column.name)
            target = self._arrays[column.name]
            if value is None:
                target[slot] = column.fill
            elif column.width:
                row = np.asarray(
                    [column.fill if v is None else v for v in value], dtype=column.dtype
                )
                if row.shape != (column.width,):
                    raise ValueError(
                        f"state column {column.name!r} has width {row.shape}, expected {column.width}"
                    )
                target[slot] = row
            else:
                target[slot] = value


class SlotIndex:
    """Keys to dense slots, in order of first appearance.

    >>> index = SlotIndex()
    >>> index.lookup(["SPX", "NDX", "SPX"])
    (array([0, 1, 0]), ['SPX', 'NDX'])
    """

    def __init__(self) -> None:
        self._slot: dict[str, int] = {}
        self.keys: list[str] = []

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, key: object) -> bool:
        return key in self._slot

    def slot(self, key: str) -> int:
        return self._slot[key]

    def lookup(self, keys: Iterable[str]) -> tuple[np.ndarray, list[str]]:
        """Slots of ``keys`` (adding unseen ones) and the list of keys that were new."""
        table = self._slot
        new: list[str] = []
        slots: list[int] = []
        for key in keys:
            slot = table.get(key)
            if slot is None:
                slot = table[key] = len(self.keys)
                self.keys.append(key)
                new.append(key)
            slots.append(slot)
        return np.asarray(slots, dtype=np.int64), new

    def clear(self) -> None:
        self._slot.clear()
        self.keys.clear()
