r"""Transaction-stream features: the customer against their own history, time of day.

For an accepted transaction of customer :math:`c` at time :math:`t` (epoch ms) with
amount :math:`a` (currency units), over windows :math:`w` of 1, 7 and 30 days:

``cust_count_{w}d``, ``cust_mean_{w}d``
    the number and the mean amount of the customer's transactions with event time in
    :math:`(t - w, t]`, this one included (the fraud-detection handbook's customer
    features);
``amount_ratio_{w}d``
    :math:`\log((a + 1) / (\bar a_w + 1))` with :math:`\bar a_w` the mean amount of the
    customer's *earlier* transactions in the window (0 when there are none): how
    unusual the amount is for this customer;
``amount_median_ratio_30d``
    the same against the median of the earlier 30-day amounts (robust to a few large
    ones, e.g. a compromised card's);
``amount``, ``log_amount``
    :math:`a` and :math:`\log(1 + a)`;
``hour_sin``, ``hour_cos``, ``is_night``, ``is_weekend``
    time of day :math:`h` in hours (UTC) as :math:`\sin(2\pi h/24)`,
    :math:`\cos(2\pi h/24)`; 1 if :math:`h < 6`; 1 on Saturday and Sunday (UTC).

"Earlier" and "in the window" are by event time, over the transactions that arrived
before this one: a late transaction sees the history as it was at its own time, minus
what has not arrived yet. The terminal features (:mod:`.terminals`) complete the row.

Each customer's last :data:`HISTORY` transactions are kept as ring columns (event time,
amount), persisted in blocks with the customer's row; a customer with more than
:data:`HISTORY` transactions in 30 days has the 30-day window cut to the last
:data:`HISTORY` (the fraud-handbook data peaks at 157).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numba
import numpy as np

from engine.core.online import OnlineComponent
from engine.core.slots import Column

DAY_MS = 86_400_000
WINDOWS_DAYS = (1, 7, 30)
HISTORY = 192
"""Transactions kept per customer (ring capacity, a multiple of the persisted block)."""

CUSTOMER_FEATURES = (
    "amount",
    "log_amount",
    "cust_count_1d",
    "cust_count_7d",
    "cust_count_30d",
    "cust_mean_1d",
    "cust_mean_7d",
    "cust_mean_30d",
    "amount_ratio_1d",
    "amount_ratio_7d",
    "amount_ratio_30d",
    "amount_median_ratio_30d",
)
TIME_FEATURES = ("hour_sin", "hour_cos", "is_night", "is_weekend")


@numba.njit(cache=True, nogil=True)
def _windows(slots, ts, amount, pushed, ring_ts, ring_amount, out):  # pragma: no cover
    cap = ring_ts.shape[1]
    scratch = np.empty(cap)
    for i in range(slots.shape[0]):
        s = slots[i]
        t = ts[i]
        a = amount[i]
        n = pushed[s]
        kept = min(n, cap)
        counts = np.zeros(3)
        sums = np.zeros(3)
        m = 0
        for back in range(kept):
            pos = (n - 1 - back) % cap
            tj = ring_ts[s, pos]
            if tj > t:
                continue  # arrived earlier but happened later: not history yet
            age = t - tj
            if age < 30 * DAY_MS:
                aj = ring_amount[s, pos]
                counts[2] += 1.0
                sums[2] += aj
                scratch[m] = aj
                m += 1
                if age < 7 * DAY_MS:
                    counts[1] += 1.0
                    sums[1] += aj
                    if age < DAY_MS:
                        counts[0] += 1.0
                        sums[0] += aj
        out[i, 0] = a
        out[i, 1] = math.log1p(a)
        for w in range(3):
            out[i, 2 + w] = counts[w] + 1.0
            out[i, 5 + w] = (sums[w] + a) / (counts[w] + 1.0)
            out[i, 8 + w] = (
                math.log((a + 1.0) / (sums[w] / counts[w] + 1.0)) if counts[w] > 0 else 0.0
            )
        out[i, 11] = math.log((a + 1.0) / (np.median(scratch[:m]) + 1.0)) if m > 0 else 0.0
        pos = n % cap
        ring_ts[s, pos] = t
        ring_amount[s, pos] = a
        pushed[s] = n + 1


class CustomerWindows(OnlineComponent):
    """Each customer's recent transactions and the window features (module docstring).

    >>> w = CustomerWindows()
    >>> w.ensure(1)
    >>> day = 86_400_000
    >>> X = w.update(np.zeros(3, np.int64), np.array([0, day // 2, 3 * day]),
    ...              np.array([10.0, 30.0, 100.0]))
    >>> X[:, CUSTOMER_FEATURES.index("cust_count_1d")].tolist()  # the 3rd is 2.5 days later
    [1.0, 2.0, 1.0]
    >>> X[:, CUSTOMER_FEATURES.index("cust_mean_7d")].tolist()
    [10.0, 20.0, 46.666666666666664]
    >>> round(float(X[2, CUSTOMER_FEATURES.index("amount_ratio_7d")]), 4)  # log(101 / 21)
    1.5706
    """

    name = "anomaly_customer_windows"

    def columns(self) -> Sequence[Column]:
        return (
            Column("pushed", np.int64, 0),
            Column("ts", np.int64, -1, HISTORY, kind="ring", ring_head="pushed"),
            Column("amount", np.float64, np.nan, HISTORY, kind="ring", ring_head="pushed"),
        )

    def update(self, slots: np.ndarray, ts: np.ndarray, amount: np.ndarray) -> np.ndarray:
        """Features of one micro-batch of accepted transactions (arrival order), then learn them.

        Returns a ``(n, len(CUSTOMER_FEATURES))`` array.
        """
        out = np.empty((slots.shape[0], len(CUSTOMER_FEATURES)), dtype=np.float64)
        st = self.state
        _windows(
            np.ascontiguousarray(slots, dtype=np.int64),
            np.ascontiguousarray(ts, dtype=np.int64),
            np.ascontiguousarray(amount, dtype=np.float64),
            st["pushed"],
            st["ts"],
            st["amount"],
            out,
        )
        return out


def time_features(ts: np.ndarray) -> np.ndarray:
    """``hour_sin``, ``hour_cos``, ``is_night``, ``is_weekend`` of epoch-ms times (UTC).

    >>> time_features(np.array([0, 2 * 86_400_000 + 12 * 3_600_000])).round(3).tolist()
    [[0.0, 1.0, 1.0, 0.0], [0.0, -1.0, 0.0, 1.0]]
    """
    ts = np.asarray(ts, dtype=np.int64)
    hour = (ts % DAY_MS) / 3_600_000.0
    angle = 2.0 * np.pi * hour / 24.0
    weekday = (ts // DAY_MS + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    return np.column_stack(
        [np.sin(angle), np.cos(angle), (hour < 6.0).astype(float), (weekday >= 5).astype(float)]
    )
