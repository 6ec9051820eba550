"""Dense per-key state: keys (symbols, customers) mapped to slots, state kept in columns.

Online models in riskstream keep their state as numpy columns indexed by *slot*, one
slot per key, so a micro-batch update is one compiled loop over arrays instead of a
Python loop over objects. :class:`SlotIndex` maps keys to slots; :class:`SlotArrays`
holds a model's columns, grows them geometrically, and converts slots' state to and
from two forms:

* fixed-width binary records (:meth:`SlotArrays.pack` / :meth:`SlotArrays.unpack`),
  packed for many slots in one vectorised step: what the worker persists after every
  micro-batch; :attr:`SlotArrays.fingerprint` names the layout, so a record is never
  read into columns it was not written from;
* a JSON-safe dict (:meth:`SlotArrays.export` / :meth:`SlotArrays.restore`), for
  inspection and tests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class Column:
    """One state column: ``width`` 0 is a scalar per slot, ``width`` k a vector of k."""

    name: str
    dtype: type
    fill: Any
    width: int = 0


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
        self.capacity = 0
        self._arrays: dict[str, np.ndarray] = {}
        for column in self.columns:
            shape: tuple[int, ...] = (0,) if column.width == 0 else (0, column.width)
            self._arrays[column.name] = np.empty(shape, dtype=column.dtype)
        self.ensure(capacity)

    def __getitem__(self, name: str) -> np.ndarray:
        return self._arrays[name]

    @property
    def record_dtype(self) -> np.dtype:
        """The binary layout of one slot's state (packed, little-endian)."""
        fields = []
        for column in self.columns:
            dtype = np.dtype(column.dtype).newbyteorder("<")
            fields.append(
                (column.name, dtype, (column.width,)) if column.width else (column.name, dtype)
            )
        return np.dtype(fields)

    @property
    def fingerprint(self) -> bytes:
        """8 bytes identifying the layout: column names, types and widths, in order."""
        return hashlib.blake2b(self.record_dtype.descr.__repr__().encode(), digest_size=8).digest()

    def pack(self, slots: np.ndarray) -> np.ndarray:
        """The state of ``slots`` as binary records: a ``(len(slots), itemsize)`` uint8 array."""
        records = np.empty(len(slots), dtype=self.record_dtype)
        for column in self.columns:
            records[column.name] = self._arrays[column.name][slots]
        return records.view(np.uint8).reshape(len(slots), self.record_dtype.itemsize)

    def unpack(self, slot: int, data: bytes) -> None:
        """Load one slot from a record written by :meth:`pack` with the same layout."""
        record = np.frombuffer(data, dtype=self.record_dtype, count=1)[0]
        for column in self.columns:
            self._arrays[column.name][slot] = record[column.name]

    def ensure(self, n_slots: int) -> None:
        """Make room for at least ``n_slots`` slots; new slots hold the fill values."""
        if n_slots <= self.capacity:
            return
        capacity = max(n_slots, 2 * self.capacity, 16)
        for column in self.columns:
            old = self._arrays[column.name]
            shape = (capacity,) if column.width == 0 else (capacity, column.width)
            new = np.full(shape, column.fill, dtype=column.dtype)
            new[: old.shape[0]] = old
            self._arrays[column.name] = new
        self.capacity = capacity

    def reset(self, slot: int) -> None:
        """Return a slot to the fill values (a key seen for the first time)."""
        for column in self.columns:
            self._arrays[column.name][slot] = column.fill

    def export(self, slot: int) -> dict[str, Any]:
        """One slot's state as plain Python values (NaN stays NaN; orjson writes it as null)."""
        out: dict[str, Any] = {}
        for column in self.columns:
            value = self._arrays[column.name][slot]
            out[column.name] = value.tolist() if column.width else value.item()
        return out

    def restore(self, slot: int, state: dict[str, Any]) -> None:
        """Load a slot from :meth:`export` output. Missing or null fields take the fill value."""
        for column in self.columns:
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
