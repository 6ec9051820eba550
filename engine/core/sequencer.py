"""Per-symbol ordering, de-duplication and replay detection; log returns.

The sequencer decides, for each validated tick of a micro-batch and in arrival order,
one of:

``ACCEPTED``
    applied to the symbol's state. Its log return ``ln(p_t / p_{t-1})`` is the return
    since the symbol's previous accepted tick (NaN for the symbol's first tick).
``LATE``
    its timestamp is *earlier* than the symbol's last accepted tick. Returns need time
    order, so it is not applied; it is dead-lettered. Equal timestamps are in order.
``DUPLICATE``
    it repeats an accepted tick: same ``event_id`` and timestamp as one of the symbol's
    last :data:`RECENT_IDS` identified ticks, or, for ticks without an ``event_id``, the
    same timestamp *and* price as the symbol's last accepted tick. Dead-lettered. A
    duplicate that arrives after a newer tick is reported as ``LATE``.
``REPLAY``
    its source offset is not beyond the last offset already applied for this symbol:
    Kafka redelivered it after a restart (at-least-once). Skipped silently, because it
    was already accounted for; this is what makes state exactly-once over
    at-least-once delivery. Offsets order records within one partition only, so the
    comparison is made only against offsets of the symbol's home partition:
``WRONG_PARTITION``
    it came on a partition other than the symbol's home partition (see
    :meth:`engine.core.keyed.KeyedBook.claim`): a producer placed the same key with a
    different partitioner. Its offset says nothing about the symbol's state, so it is
    neither applied nor counted as a replay; it is dead-lettered and the state is
    untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum

import numba
import numpy as np

from engine.core.online import OnlineComponent
from engine.core.slots import Column

RECENT_IDS = 8


class Status(IntEnum):
    ACCEPTED = 0
    LATE = 1
    DUPLICATE = 2
    REPLAY = 3
    WRONG_PARTITION = 4


def advanced(status: np.ndarray) -> np.ndarray:
    """Mask of the records that moved their key's state (offsets included): every status
    but ``REPLAY`` and ``WRONG_PARTITION``."""
    return status <= Status.DUPLICATE


@numba.njit(cache=True, nogil=True)
def _sequence(
    slots,
    ts,
    price,
    ehash,
    offset,
    foreign,
    last_ts,
    last_price,
    last_offset,
    n_ticks,
    recent_hash,
    recent_ts,
    recent_pos,
    status,
    ret,
):  # pragma: no cover - compiled
    width = recent_hash.shape[1]
    for i in range(slots.shape[0]):
        s = slots[i]
        ret[i] = np.nan
        if foreign[i]:
            status[i] = 4
            continue
        if offset[i] <= last_offset[s]:
            status[i] = 3
            continue
        last_offset[s] = offset[i]
        seen = n_ticks[s] > 0
        if seen and ts[i] < last_ts[s]:
            status[i] = 1
            continue
        duplicate = False
        if ehash[i] != 0:
            for k in range(width):
                if recent_hash[s, k] == ehash[i] and recent_ts[s, k] == ts[i]:
                    duplicate = True
                    break
        elif seen and ts[i] == last_ts[s] and price[i] == last_price[s]:
            duplicate = True
        if duplicate:
            status[i] = 2
            continue
        status[i] = 0
        if seen:
            ret[i] = np.log(price[i] / last_price[s])
        last_ts[s] = ts[i]
        last_price[s] = price[i]
        n_ticks[s] += 1
        if ehash[i] != 0:
            pos = recent_pos[s]
            recent_hash[s, pos] = ehash[i]
            recent_ts[s, pos] = ts[i]
            recent_pos[s] = (pos + 1) % width


class PriceSequencer(OnlineComponent):
    """Orders ticks per symbol and turns prices into log returns (see module docstring)."""

    name = "seq"

    def columns(self) -> Sequence[Column]:
        return (
            Column("last_ts", np.int64, -1),
            Column("last_price", np.float64, np.nan),
            Column("last_offset", np.int64, -1),
            Column("n_ticks", np.int64, 0),
            Column("recent_hash", np.int64, 0, RECENT_IDS),
            Column("recent_ts", np.int64, -1, RECENT_IDS),
            Column("recent_pos", np.int64, 0),
        )

    def update(
        self,
        slots: np.ndarray,
        ts: np.ndarray,
        price: np.ndarray,
        ehash: np.ndarray,
        offset: np.ndarray,
        foreign: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sequence one micro-batch; returns ``(status, log_return)`` per tick.

        ``foreign`` marks ticks that came on another partition than their symbol's home
        (:meth:`engine.core.keyed.KeyedBook.claim`); none when omitted.

        ``log_return`` is NaN except for accepted ticks that follow an earlier accepted
        tick of the same symbol.
        """
        n = slots.shape[0]
        status = np.empty(n, dtype=np.int8)
        ret = np.empty(n, dtype=np.float64)
        st = self.state
        _sequence(
            slots,
            ts,
            price,
            ehash,
            offset,
            np.zeros(n, np.bool_) if foreign is None else foreign,
            st["last_ts"],
            st["last_price"],
            st["last_offset"],
            st["n_ticks"],
            st["recent_hash"],
            st["recent_ts"],
            st["recent_pos"],
            status,
            ret,
        )
        return status, ret
