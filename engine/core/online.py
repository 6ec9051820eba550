"""The base of every stateful online component of the risk core.

An online component keeps per-slot state in :class:`~engine.core.slots.SlotArrays`
and updates it one micro-batch at a time. The verb pair, used everywhere:

``update(slots, ...)``
    consume one micro-batch, in arrival order, and return what the component
    forecast *before* and *after* each observation;
``pack(slots)`` / ``unpack(slot, record)``
    keys' state as binary records, so a restarted worker resumes where it stopped;
``export(slot)`` / ``restore(slot, state)``
    one key's state as a JSON-safe dict, for inspection.

Both round trips are tested for every component by ``tests/core/test_online_contract.py``.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from engine.core.slots import Column, SlotArrays


class OnlineComponent:
    """Per-slot state plus the capacity, reset and (de)serialisation every component needs."""

    #: Short stable name; the key of this component's state in a persisted row.
    name: ClassVar[str] = "component"
    #: Bump when the meaning of the state columns changes; older rows are then cold-started.
    state_version: ClassVar[int] = 1

    def __init__(self) -> None:
        self.state = SlotArrays(self.columns())

    def columns(self) -> Sequence[Column]:
        """The state columns; subclasses declare theirs."""
        raise NotImplementedError

    def ensure(self, n_slots: int) -> None:
        self.state.ensure(n_slots)

    def reset(self, slot: int) -> None:
        self.state.reset(slot)

    def export(self, slot: int) -> dict[str, Any]:
        return {"v": self.state_version, **self.state.export(slot)}

    @functools.cached_property
    def fingerprint(self) -> bytes:
        """8 bytes naming this component's state layout and version; persisted with its records.

        Computed once: a component's layout is fixed when it is built.
        """
        seed = f"{self.name}|{self.state_version}|".encode() + self.state.fingerprint
        return hashlib.blake2b(seed, digest_size=8).digest()

    @functools.cached_property
    def legacy_fingerprint(self) -> bytes | None:
        """The fingerprint of the same version whose rings had their previous types
        (``Column.was``); its records are restored and its blocks converted. ``None``: none."""
        legacy = self.state.legacy_fingerprint
        if legacy is None:
            return None
        seed = f"{self.name}|{self.state_version}|".encode() + legacy
        return hashlib.blake2b(seed, digest_size=8).digest()

    def pack(self, slots: np.ndarray) -> np.ndarray:
        """Binary records of the ``state`` columns of ``slots`` (one row of bytes per slot)."""
        return self.state.pack(slots)

    def ring_blocks(self, slots: np.ndarray) -> list[tuple[int, str, int, bytes | None]]:
        """Ring blocks written since the last call (see :meth:`SlotArrays.ring_blocks`)."""
        return self.state.ring_blocks(slots.tolist()) if self.state.rings else []

    def unpack(self, slot: int, record: bytes | None, fetch_block: Any = None) -> None:
        """Load a slot from :meth:`pack` output (and its ring blocks); ``None`` starts it cold.

        ``fetch_block(ring, block)`` returns a persisted ring block or ``None``.
        """
        if record is None:
            self.state.reset(slot)
            return
        self.state.unpack(slot, record)
        if self.state.rings:
            self.state.load_rings(slot, fetch_block or (lambda ring, block: None))
        self.rebuild(slot)

    def rebuild(self, slot: int) -> None:
        """Recompute ``transient`` columns of a restored slot; components that have any override it."""

    def restore(self, slot: int, saved: dict[str, Any] | None) -> None:
        """Load a slot; a missing or older-version state starts the slot cold."""
        if saved is None or saved.get("v") != self.state_version:
            self.state.reset(slot)
        else:
            self.state.restore(slot, saved)
