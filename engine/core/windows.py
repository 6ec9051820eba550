"""Rolling windows: the last ``size`` values per key, with order statistics and moments.

Historical simulation needs the empirical quantiles of a symbol's last ``N`` returns at
every tick; filtered historical simulation the same for standardised residuals;
Cornish-Fisher and Student-t fits their moments. :class:`RollingWindow` keeps, per slot:

* a ring of the last values (persisted in blocks, :mod:`engine.core.slots`), holding
  ``extra`` more values than the window for consumers that look further back (model
  refits);
* a sorted copy of the window (transient: rebuilt from the ring on restore), updated in
  one shift per value, so quantiles are O(1) and ES tails O(k);
* running power sums for the moments, persisted as state (so a restored worker has
  exactly the same floating-point sums as one that never stopped) and recomputed
  exactly from the window every ``size`` pushes to bound rounding drift.

Definitions (``x_(1) <= ... <= x_(m)`` the sorted window, ``m = min(pushed, size)``):

* quantile at lower-tail probability ``p``: linear interpolation at ``h = (m - 1) p``
  (numpy's default method);
* tail mean at ``p``: the mean of the ``k = max(1, ceil(m p))`` smallest values (the
  historical ES at level ``1 - p``);
* moments: mean, standard deviation (population), skewness, excess kurtosis.

Causality: for value ``i`` the ``before`` statistics describe the window of values up to
``i - 1``, the ``after`` statistics the window including ``i``. Quantiles are NaN until
the window holds ``min_obs`` values, moments until it holds 30.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from engine.core.online import OnlineComponent
from engine.core.slots import Column, ring_capacity

MIN_MOMENT_OBS = 30


@numba.njit(cache=True, nogil=True)
def _replace_sorted(arr, m, old, new):  # pragma: no cover - compiled
    """In sorted arr[:m], replace one occurrence of ``old`` by ``new``, keeping order."""
    i = np.searchsorted(arr[:m], old)
    j = np.searchsorted(arr[:m], new)
    if j > i:
        for k in range(i, j - 1):
            arr[k] = arr[k + 1]
        arr[j - 1] = new
    else:
        for k in range(i, j, -1):
            arr[k] = arr[k - 1]
        arr[j] = new


@numba.njit(cache=True, nogil=True)
def _insert_sorted(arr, m, new):  # pragma: no cover - compiled
    j = np.searchsorted(arr[:m], new)
    for k in range(m, j, -1):
        arr[k] = arr[k - 1]
    arr[j] = new


@numba.njit(cache=True, nogil=True)
def _stats(sorted_row, m, sums, probs, min_obs, q_out, tail_out, mom_out):  # pragma: no cover
    if m >= min_obs and m > 0:
        for j in range(probs.shape[0]):
            h = (m - 1) * probs[j]
            lo = int(np.floor(h))
            frac = h - lo
            if lo + 1 < m:
                q_out[j] = sorted_row[lo] + frac * (sorted_row[lo + 1] - sorted_row[lo])
            else:
                q_out[j] = sorted_row[lo]
        # tail means: probs are ascending, so the running sum grows from one to the next
        total = 0.0
        done = 0
        for j in range(probs.shape[0]):
            k = max(1, int(np.ceil(m * probs[j])))
            for t in range(done, k):
                total += sorted_row[t]
            done = k
            tail_out[j] = total / k
    else:
        for j in range(probs.shape[0]):
            q_out[j] = np.nan
            tail_out[j] = np.nan
    if m >= 30:
        mu = sums[0] / m
        m2 = sums[1] / m - mu * mu
        m3 = sums[2] / m - 3.0 * mu * sums[1] / m + 2.0 * mu**3
        m4 = sums[3] / m - 4.0 * mu * sums[2] / m + 6.0 * mu * mu * sums[1] / m - 3.0 * mu**4
        mom_out[0] = mu
        if m2 > 0:
            mom_out[1] = np.sqrt(m2)
            mom_out[2] = m3 / m2**1.5
            mom_out[3] = m4 / (m2 * m2) - 3.0
        else:
            mom_out[1] = 0.0
            mom_out[2] = 0.0
            mom_out[3] = 0.0
    else:
        for j in range(4):
            mom_out[j] = np.nan


@numba.njit(cache=True, nogil=True)
def _push(
    slots,
    values,
    ring,
    pushed,
    sorted_,
    sums,
    size,
    probs,
    min_obs,
    q_before,
    q_after,
    tail_before,
    tail_after,
    mom_before,
    mom_after,
):  # pragma: no cover
    cap = ring.shape[1]
    # Row of each slot's previous value in this batch: its "after" statistics are this
    # value's "before" ones (the same window), copied instead of computed again.
    previous = np.full(sorted_.shape[0], -1, np.int64)
    for i in range(slots.shape[0]):
        s = slots[i]
        m = min(pushed[s], size)
        last = previous[s]
        previous[s] = i
        if last >= 0:
            q_before[i] = q_after[last]
            tail_before[i] = tail_after[last]
            mom_before[i] = mom_after[last]
        else:
            _stats(
                sorted_[s],
                m,
                sums[s],
                probs,
                min_obs,
                q_before[i],
                tail_before[i],
                mom_before[i],
            )
        v = values[i]
        if np.isnan(v):
            q_after[i] = q_before[i]
            tail_after[i] = tail_before[i]
            mom_after[i] = mom_before[i]
            continue
        n = pushed[s]
        if n >= size:
            old = ring[s, (n - size) % cap]
            _replace_sorted(sorted_[s], size, old, v)
            sums[s, 0] += v - old
            sums[s, 1] += v * v - old * old
            sums[s, 2] += v**3 - old**3
            sums[s, 3] += v**4 - old**4
        else:
            _insert_sorted(sorted_[s], n, v)
            sums[s, 0] += v
            sums[s, 1] += v * v
            sums[s, 2] += v**3
            sums[s, 3] += v**4
        ring[s, n % cap] = v
        n += 1
        pushed[s] = n
        m = min(n, size)
        if n % size == 0:  # exact recomputation at deterministic points bounds rounding drift
            for p in range(4):
                sums[s, p] = 0.0
            for t in range(m):
                x = sorted_[s, t]
                sums[s, 0] += x
                sums[s, 1] += x * x
                sums[s, 2] += x**3
                sums[s, 3] += x**4
        _stats(
            sorted_[s],
            m,
            sums[s],
            probs,
            min_obs,
            q_after[i],
            tail_after[i],
            mom_after[i],
        )


@numba.njit(cache=True, nogil=True)
def _append(slots, values, ring, pushed):  # pragma: no cover - compiled
    cap = ring.shape[1]
    for i in range(slots.shape[0]):
        v = values[i]
        if not np.isnan(v):
            s = slots[i]
            ring[s, pushed[s] % cap] = v
            pushed[s] += 1


class RingHistory(OnlineComponent):
    """The last ``size`` values per slot, nothing else (model fits that need history).

    >>> h = RingHistory("h", size=3)
    >>> h.ensure(1); h.update(np.zeros(5, np.int64), np.array([1.0, 2.0, np.nan, 3.0, 4.0]))
    >>> h.last(0, 3).tolist(), h.last(0, 2, skip=1).tolist()
    ([2.0, 3.0, 4.0], [2.0, 3.0])
    """

    def __init__(self, name: str, size: int) -> None:
        self.name = name  # type: ignore[misc]
        self.size = int(size)
        super().__init__()

    def columns(self) -> Sequence[Column]:
        return (
            Column("pushed", np.int64, 0),
            Column(
                "ring",
                np.float64,
                np.nan,
                ring_capacity(self.size),
                kind="ring",
                ring_head="pushed",
            ),
        )

    def update(self, slots: np.ndarray, values: np.ndarray) -> None:
        """Append the non-NaN values, in order."""
        _append(slots, values, self.state["ring"], self.state["pushed"])

    def last(self, slot: int, count: int, skip: int = 0) -> np.ndarray:
        """``count`` values ending ``skip`` values before the newest, oldest first."""
        pushed = int(self.state["pushed"][slot])
        cap = self.state["ring"].shape[1]
        end = pushed - skip
        count = max(0, min(count, end, cap - skip))
        return self.state["ring"][slot, np.arange(end - count, end) % cap].copy()


@dataclass(slots=True)
class WindowStats:
    """Statistics of each slot's window around each pushed value (rows in input order).

    Quantile and tail-mean columns follow the window's ``probs``; ``moments`` columns
    are mean, standard deviation, skewness, excess kurtosis.
    """

    q_before: np.ndarray
    q_after: np.ndarray
    tail_before: np.ndarray
    tail_after: np.ndarray
    moments_before: np.ndarray
    moments_after: np.ndarray


class RollingWindow(OnlineComponent):
    """The last ``size`` values per slot (see the module docstring).

    Parameters
    ----------
    name : str
        Component name (the key of its state in persisted rows).
    size : int
        Window length ``N``.
    probs : sequence of float
        Lower-tail probabilities, ascending, whose quantiles and tail means are reported
        (e.g. 0.01, 0.025, 0.05 for levels 99%, 97.5%, 95%).
    min_obs : int
        Values needed before quantiles are reported (default: a full window).
    extra : int
        Values kept beyond the window, for consumers that look further back.

    >>> w = RollingWindow("w", size=4, probs=(0.5,), min_obs=2)
    >>> w.ensure(1)
    >>> stats = w.update(np.zeros(5, np.int64), np.array([3.0, 1.0, 2.0, 5.0, 4.0]))
    >>> stats.q_after[:, 0].tolist()  # medians of [3], [3,1], [3,1,2], [3,1,2,5], [1,2,5,4]
    [nan, 2.0, 2.0, 2.5, 3.0]
    >>> stats.tail_after[-1].tolist(), w.window(0).tolist()  # mean of the 2 smallest of 4
    ([1.5], [1.0, 2.0, 5.0, 4.0])
    """

    def __init__(
        self,
        name: str,
        size: int,
        probs: Sequence[float],
        min_obs: int | None = None,
        extra: int = 0,
    ) -> None:
        if size < 2:
            raise ValueError("size must be at least 2")
        if not all(0.0 < p < 1.0 for p in probs):
            raise ValueError("probabilities must be strictly between 0 and 1")
        if list(probs) != sorted(probs):
            raise ValueError("probabilities must be ascending")
        self.name = name  # type: ignore[misc]
        self.size = int(size)
        self.extra = int(extra)
        self.probs = np.asarray(probs, dtype=np.float64)
        self.min_obs = int(min_obs if min_obs is not None else size)
        super().__init__()

    def columns(self) -> Sequence[Column]:
        return (
            Column("pushed", np.int64, 0),
            Column("sums", np.float64, 0.0, 4),
            Column(
                "ring",
                np.float64,
                np.nan,
                ring_capacity(self.size + self.extra),
                kind="ring",
                ring_head="pushed",
            ),
            Column("sorted", np.float64, np.nan, self.size, kind="transient"),
        )

    def update(self, slots: np.ndarray, values: np.ndarray) -> WindowStats:
        """Push one micro-batch of values (NaN values are skipped), in arrival order."""
        n, j = slots.shape[0], self.probs.shape[0]
        out = WindowStats(
            np.empty((n, j)),
            np.empty((n, j)),
            np.empty((n, j)),
            np.empty((n, j)),
            np.empty((n, 4)),
            np.empty((n, 4)),
        )
        st = self.state
        _push(
            slots,
            values,
            st["ring"],
            st["pushed"],
            st["sorted"],
            st["sums"],
            self.size,
            self.probs,
            self.min_obs,
            out.q_before,
            out.q_after,
            out.tail_before,
            out.tail_after,
            out.moments_before,
            out.moments_after,
        )
        return out

    def window(self, slot: int) -> np.ndarray:
        """A slot's window, oldest first."""
        return self.last(slot, min(int(self.state["pushed"][slot]), self.size))

    def last(self, slot: int, count: int, skip: int = 0) -> np.ndarray:
        """``count`` values ending ``skip`` values before the newest, oldest first (from the ring)."""
        pushed = int(self.state["pushed"][slot])
        cap = self.state["ring"].shape[1]
        end = pushed - skip
        count = min(count, end, cap - skip)
        positions = np.arange(end - count, end) % cap
        return self.state["ring"][slot, positions].copy()

    def rebuild(self, slot: int) -> None:
        """Re-sort the window from the ring (the sums are persisted state)."""
        m = min(int(self.state["pushed"][slot]), self.size)
        sorted_ = self.state["sorted"]
        sorted_[slot] = np.nan
        sorted_[slot, :m] = np.sort(self.last(slot, m))
