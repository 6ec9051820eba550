r"""Terminal risk from labelled history, respecting the feedback delay.

Fraud labels arrive late: a transaction is known to be fraudulent only after an
investigation, ``delay`` days later (7 in the fraud-detection handbook's protocol). For
a transaction at time :math:`t` on terminal :math:`m`, with :math:`D = \lfloor t /
\mathrm{day}\rfloor` its UTC day, over windows :math:`w` of 1, 7 and 30 days:

``term_count_{w}d``
    the terminal's transactions on days :math:`D - \mathrm{delay} - w` to
    :math:`D - \mathrm{delay} - 1`;
``term_risk_{w}d``
    the share of them labelled fraudulent, among those that carry a label (0 when none
    does).

Only whole days whose labels are all known by the start of day :math:`D` are used
(strictly causal: a label of day :math:`d` is known on day :math:`d + \mathrm{delay}`
at the latest; day boundaries in UTC, like the handbook's simulator clock). A label
travels with its transaction (the replay carries it as a field, ``tx_fraud``) and is
only *read* once it is due.

Why a table apart from the customer's state: transactions are keyed and partitioned by
customer, and a terminal's transactions come from every partition. The table is a side
input of the transaction stage, fed with every transaction its process sees (the
embedded runner, the evaluation and a single worker see all of them: exact), kept in
day buckets of ``delay + 31`` days per terminal. See :mod:`engine.anomaly.stages` for
what this means for a deployment with several workers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

from engine.core.slots import Column, SlotArrays, SlotIndex

DAY_MS = 86_400_000
TERMINAL_FEATURES = (
    "term_count_1d",
    "term_count_7d",
    "term_count_30d",
    "term_risk_1d",
    "term_risk_7d",
    "term_risk_30d",
)
_WINDOWS = (1, 7, 30)


@numba.njit(cache=True, nogil=True)
def _terminals(
    slots, day, label, delay, feed, bucket_day, n_tx, n_lab, n_fraud, out
):  # pragma: no cover - compiled
    width = bucket_day.shape[1]
    for i in range(slots.shape[0]):
        s = slots[i]
        d = day[i]
        if s < 0:
            for k in range(6):
                out[i, k] = 0.0
            continue
        # features: whole days up to d - delay - 1
        for w in range(3):
            span = 1 if w == 0 else (7 if w == 1 else 30)
            tx = 0.0
            lab = 0.0
            fr = 0.0
            for back in range(span):
                dd = d - delay - 1 - back
                pos = dd % width
                if bucket_day[s, pos] == dd:
                    tx += n_tx[s, pos]
                    lab += n_lab[s, pos]
                    fr += n_fraud[s, pos]
            out[i, w] = tx
            out[i, 3 + w] = fr / lab if lab > 0 else 0.0
        if not feed:
            continue
        pos = d % width
        if bucket_day[s, pos] != d:
            if bucket_day[s, pos] > d:
                continue  # older than the table remembers
            bucket_day[s, pos] = d
            n_tx[s, pos] = 0.0
            n_lab[s, pos] = 0.0
            n_fraud[s, pos] = 0.0
        n_tx[s, pos] += 1.0
        y = label[i]
        if not np.isnan(y):
            n_lab[s, pos] += 1.0
            if y > 0.5:
                n_fraud[s, pos] += 1.0


class TerminalRiskTable:
    """Per-terminal day buckets of transactions and labels (see the module docstring).

    Parameters
    ----------
    delay_days : int
        Days before a label may be used (at least 1).

    Examples
    --------
    >>> table = TerminalRiskTable(delay_days=7)
    >>> day = 86_400_000
    >>> _ = table.update(["T1", "T1"], np.array([0, 1000]), np.array([1.0, 0.0]))
    >>> X = table.update(["T1", "T1", None], np.array([7 * day, 8 * day, 8 * day]),
    ...                  np.full(3, np.nan))
    >>> X[:, TERMINAL_FEATURES.index("term_risk_30d")].tolist()  # day 0 is due on day 8
    [0.0, 0.5, 0.0]
    >>> X[:, TERMINAL_FEATURES.index("term_count_1d")].tolist()
    [0.0, 2.0, 0.0]
    """

    def __init__(self, delay_days: int = 7) -> None:
        if delay_days < 1:
            raise ValueError("delay_days must be at least 1")
        self.delay_days = int(delay_days)
        self.width = self.delay_days + max(_WINDOWS) + 1
        self.index = SlotIndex()
        self.state = SlotArrays(self.columns())

    def columns(self) -> Sequence[Column]:
        w = self.width
        return (
            Column("day", np.int64, -1, w),
            Column("n_tx", np.float64, 0.0, w),
            Column("n_lab", np.float64, 0.0, w),
            Column("n_fraud", np.float64, 0.0, w),
        )

    def __len__(self) -> int:
        return len(self.index)

    def slots(self, terminals: Sequence[str | None]) -> np.ndarray:
        """Slots of terminal ids (admitting new ones); -1 where there is no terminal."""
        present = [t for t in terminals if t is not None]
        found, _ = self.index.lookup(present)
        self.state.ensure(len(self.index))
        out = np.full(len(terminals), -1, dtype=np.int64)
        out[[i for i, t in enumerate(terminals) if t is not None]] = found
        return out

    def update(
        self,
        terminals: Sequence[str | None],
        ts: np.ndarray,
        labels: np.ndarray,
        *,
        feed: bool = True,
    ) -> np.ndarray:
        """Features of each transaction (arrival order), then record it (``feed``).

        ``labels``: 1 fraud, 0 genuine, NaN unknown. Returns ``(n, 6)`` in the order of
        :data:`TERMINAL_FEATURES`.
        """
        slots = self.slots(terminals)
        out = np.empty((len(terminals), len(TERMINAL_FEATURES)), dtype=np.float64)
        st = self.state
        _terminals(
            slots,
            np.asarray(ts, dtype=np.int64) // DAY_MS,
            np.ascontiguousarray(labels, dtype=np.float64),
            self.delay_days,
            feed,
            st["day"],
            st["n_tx"],
            st["n_lab"],
            st["n_fraud"],
            out,
        )
        return out
