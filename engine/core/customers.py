"""Per-customer transaction profiles, advanced one micro-batch at a time.

For each customer: transactions accepted, the running mean and variance of the amount
(Welford), the first and latest event time. Transactions are de-duplicated by
``tx_id`` against the customer's last :data:`RECENT_TX` ids and replays are skipped by
source offset; records on a partition other than the customer's home partition are
refused (see :mod:`engine.core.sequencer`). Unlike prices, transactions are not
refused for arriving late: the profile is order-insensitive, and ``last_ts`` is the
latest event time seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numba
import numpy as np

from engine.core.keyed import KeyedBook, LoadRow
from engine.core.online import OnlineComponent
from engine.core.sequencer import advanced
from engine.core.slots import Column

if TYPE_CHECKING:  # the decoded columns' type; the core never imports the boundary
    from engine.boundary.validation import TransactionColumns

RECENT_TX = 16


@numba.njit(cache=True, nogil=True)
def _profile(
    slots,
    ts,
    amount,
    txh,
    offset,
    foreign,
    last_offset,
    count,
    mean,
    m2,
    first_ts,
    last_ts,
    recent,
    recent_pos,
    status,
):  # pragma: no cover - compiled
    width = recent.shape[1]
    for i in range(slots.shape[0]):
        s = slots[i]
        if foreign[i]:
            status[i] = 4
            continue
        if offset[i] <= last_offset[s]:
            status[i] = 3
            continue
        last_offset[s] = offset[i]
        duplicate = False
        for k in range(width):
            if recent[s, k] == txh[i]:
                duplicate = True
                break
        if duplicate:
            status[i] = 2
            continue
        status[i] = 0
        n = count[s] + 1
        count[s] = n
        delta = amount[i] - mean[s]
        mean[s] += delta / n
        m2[s] += delta * (amount[i] - mean[s])
        if first_ts[s] < 0 or ts[i] < first_ts[s]:
            first_ts[s] = ts[i]
        if ts[i] > last_ts[s]:
            last_ts[s] = ts[i]
        pos = recent_pos[s]
        recent[s, pos] = txh[i]
        recent_pos[s] = (pos + 1) % width


class CustomerProfiles(OnlineComponent):
    """Count, Welford mean/M2 of amounts, first/last event time, recent transaction ids."""

    name = "profile"

    def columns(self) -> Sequence[Column]:
        return (
            Column("last_offset", np.int64, -1),
            Column("count", np.int64, 0),
            Column("mean", np.float64, 0.0),
            Column("m2", np.float64, 0.0),
            Column("first_ts", np.int64, -1),
            Column("last_ts", np.int64, -1),
            Column("recent", np.int64, 0, RECENT_TX),
            Column("recent_pos", np.int64, 0),
        )

    def update(
        self, slots: np.ndarray, cols: TransactionColumns, foreign: np.ndarray | None = None
    ) -> np.ndarray:
        """One :class:`~engine.core.sequencer.Status` per transaction (``foreign`` as for
        :meth:`~engine.core.sequencer.PriceSequencer.update`)."""
        status = np.empty(slots.shape[0], dtype=np.int8)
        st = self.state
        _profile(
            slots,
            cols.ts,
            cols.amount,
            cols.tx_hash,
            cols.offset,
            np.zeros(slots.shape[0], np.bool_) if foreign is None else foreign,
            st["last_offset"],
            st["count"],
            st["mean"],
            st["m2"],
            st["first_ts"],
            st["last_ts"],
            st["recent"],
            st["recent_pos"],
            status,
        )
        return status

    def summary(self, slot: int) -> dict[str, float | int]:
        """``count``, ``mean_amount``, ``std_amount`` (sample), ``first_ts``, ``last_ts``."""
        st = self.state
        n = int(st["count"][slot])
        var = float(st["m2"][slot]) / (n - 1) if n > 1 else float("nan")
        return {
            "count": n,
            "mean_amount": float(st["mean"][slot]),
            "std_amount": var**0.5,
            "first_ts": int(st["first_ts"][slot]),
            "last_ts": int(st["last_ts"][slot]),
        }


@dataclass(slots=True)
class CustomerStep:
    status: np.ndarray
    """One :class:`~engine.core.sequencer.Status` per input transaction."""
    slots: np.ndarray
    """Slot of every input transaction."""
    touched: np.ndarray


class CustomerBook(KeyedBook):
    """Every customer's profile; the transactions counterpart of the price book."""

    def __init__(self, extra: tuple[OnlineComponent, ...] = ()) -> None:
        """``extra``: state components of add-on stages, persisted in the same rows."""
        self.profiles = CustomerProfiles()
        super().__init__((self.profiles, *extra))

    def step(self, cols: TransactionColumns, load_row: LoadRow | None = None) -> CustomerStep:
        """Advance every customer in ``cols`` by its transactions, in arrival order."""
        slots = self.slots_for(cols.customers, load_row)
        status = self.profiles.update(slots, cols, self.claim(slots, cols.partition))
        return CustomerStep(status=status, slots=slots, touched=np.unique(slots[advanced(status)]))
