"""Rolling windows: the last ``size`` values per key, with order statistics and moments.

Historical simulation needs the empirical quantiles of a symbol's last ``N`` returns at
every tick; filtered historical simulation the same for standardised residuals;
Cornish-Fisher and Student-t fits their moments. :class:`RollingWindow` keeps, per slot:

* a ring of the last values (persisted in blocks, :mod:`engine.core.slots`), holding
  ``extra`` more values than the window for consumers that look further back (model
  refits); it and the tail below are allocated when the first value arrives for any
  slot (a model that never forecasts on a feed, such as HAR without realised
  variance, leaves its residual window unallocated);
* the window's lower tail: its smallest values in order (transient: rebuilt from the
  ring on restore), as many as the quantiles and tail means at the window's ``probs``
  read (:func:`tail_need`) plus as many spare, updated in one shift per value that
  enters or leaves it and re-selected from the ring when values leaving it have used up
  the spare (rarely: a new value below the tail's largest refills it), so quantiles are
  O(1), ES tails O(k) and a slot holds about a tenth of a full sorted copy at the
  default levels;
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
from engine.core.slots import Column, SlotArrays, ring_capacity

MIN_MOMENT_OBS = 30


def tail_need(size: int, probs: Sequence[float]) -> int:
    """Smallest values of a full window that :func:`_stats` reads at ``probs`` (plus one).

    The quantile at ``p`` reads the sorted values at ``floor((m - 1) p)`` and the one
    after, the tail mean the ``ceil(m p)`` smallest; both grow with ``m``, so a full
    window (``m = size``) needs the most. Computed with the kernel's float64 operations.

    >>> tail_need(1000, (0.01, 0.025, 0.05))
    52
    """
    need = 1
    for p in probs:
        p = np.float64(p)
        need = max(need, int(np.floor((size - 1) * p)) + 2, int(np.ceil(size * p)))
    return min(size, need + 1)


@numba.njit(cache=True, nogil=True)
def _tail_insert(tail, c, v):  # pragma: no cover - compiled
    """Insert ``v`` into sorted ``tail[:c]`` (the value at ``c``, if any, is dropped); the new count."""
    j = np.searchsorted(tail[:c], v)
    for k in range(c, j, -1):
        tail[k] = tail[k - 1]
    tail[j] = v
    return c + 1


@numba.njit(cache=True, nogil=True)
def _tail_remove(tail, c, old):  # pragma: no cover - compiled
    """Remove one occurrence of ``old`` (present) from sorted ``tail[:c]``; the new count."""
    i = np.searchsorted(tail[:c], old)
    for k in range(i, c - 1):
        tail[k] = tail[k + 1]
    tail[c - 1] = np.nan
    return c - 1


@numba.njit(cache=True, nogil=True)
def _tail_select(tail, ring, n, m):  # pragma: no cover - compiled
    """Fill ``tail`` with the smallest of the window (values ``n - m .. n - 1`` of the ring), sorted; the count."""
    width = tail.shape[0]
    cap = ring.shape[0]
    c = 0
    for t in range(n - m, n):
        x = ring[t % cap]
        if c < width:
            c = _tail_insert(tail, c, x)
        elif x < tail[width - 1]:
            _tail_insert(tail, width - 1, x)
    for k in range(c, width):
        tail[k] = np.nan
    return c


@numba.njit(cache=True, nogil=True)
def _sorted_window(ring, n, m):  # pragma: no cover - compiled
    cap = ring.shape[0]
    out = np.empty(m)
    for t in range(m):
        out[t] = ring[(n - m + t) % cap]
    out.sort()
    return out


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
    tail,
    tail_n,
    need,
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
    width = tail.shape[1]
    # Row of each slot's previous value in this batch: its "after" statistics are this
    # value's "before" ones (the same window), copied instead of computed again.
    previous = np.full(tail.shape[0], -1, np.int64)
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
                tail[s],
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
        # The tail holds the c smallest values of the window; every other value of the
        # window is at least its largest (so a value leaving at or below it was in it).
        c = tail_n[s]
        held = min(n, size)
        if n >= size:
            old = np.float64(ring[s, (n - size) % cap])  # float64 sums of a float32 ring
            if c > 0 and old <= tail[s, c - 1]:
                c = _tail_remove(tail[s], c, old)
            held -= 1
            sums[s, 0] += v - old
            sums[s, 1] += v * v - old * old
            sums[s, 2] += v**3 - old**3
            sums[s, 3] += v**4 - old**4
        else:
            sums[s, 0] += v
            sums[s, 1] += v * v
            sums[s, 2] += v**3
            sums[s, 3] += v**4
        if c < width and (c == held or (c > 0 and v <= tail[s, c - 1])):
            c = _tail_insert(tail[s], c, v)
        elif c == width and v < tail[s, width - 1]:
            _tail_insert(tail[s], width - 1, v)
        ring[s, n % cap] = v
        n += 1
        pushed[s] = n
        m = min(n, size)
        if c < min(m, need):  # the values that left used up the spare: select again
            c = _tail_select(tail[s], ring[s], n, m)
        tail_n[s] = c
        if n % size == 0:  # exact recomputation at deterministic points bounds rounding drift
            for p in range(4):
                sums[s, p] = 0.0
            # in ascending order, as the sums were always recomputed
            window = _sorted_window(ring[s], n, m)
            for t in range(m):
                x = window[t]
                sums[s, 0] += x
                sums[s, 1] += x * x
                sums[s, 2] += x**3
                sums[s, 3] += x**4
        _stats(
            tail[s],
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


def _ring_last(state: SlotArrays, slot: int, count: int, skip: int) -> np.ndarray:
    """A copy of up to ``count`` values of ``slot``'s ring (``state["ring"]``, written
    ``state["pushed"]`` times) ending ``skip`` values before the newest, oldest first;
    as many as the ring still holds, empty before its first value."""
    if not state.materialized("ring"):
        return np.empty(0)
    cap = state["ring"].shape[1]
    end = int(state["pushed"][slot]) - skip
    count = max(0, min(count, end, cap - skip))
    return state["ring"][slot, np.arange(end - count, end) % cap].astype(np.float64)


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
                lazy=True,
            ),
        )

    def update(self, slots: np.ndarray, values: np.ndarray) -> None:
        """Append the non-NaN values, in order (the ring is allocated at the first one)."""
        if not self.state.materialized("ring"):
            if np.isnan(values).all():
                return
            self.state.materialize("ring")
        _append(slots, values, self.state["ring"], self.state["pushed"])

    def last(self, slot: int, count: int, skip: int = 0) -> np.ndarray:
        """``count`` values ending ``skip`` values before the newest, oldest first."""
        return _ring_last(self.state, slot, count, skip)


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
    dtype : type
        Storage type of the ring. ``np.float32`` halves a slot's largest column: every
        value is rounded to float32 as it is pushed (about 7 significant digits, a
        relative error below 6e-8), and the window's statistics, its tail and the values
        :meth:`last` returns are exactly those of the rounded values, so they agree
        with one another and with a restored copy. Rings persisted as float64 are
        restored, rounded.

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
        dtype: type = np.float64,
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
        if dtype not in (np.float64, np.float32):
            raise ValueError("a window stores float64 or float32")
        self.dtype = dtype
        self.probs = np.asarray(probs, dtype=np.float64)
        self.min_obs = int(min_obs if min_obs is not None else size)
        #: Smallest values the statistics read; the tail keeps as many again as spare.
        self.tail_need = tail_need(self.size, self.probs.tolist())
        self.tail_width = min(self.size, 2 * self.tail_need)
        super().__init__()

    def columns(self) -> Sequence[Column]:
        return (
            Column("pushed", np.int64, 0),
            Column("sums", np.float64, 0.0, 4),
            Column(
                "ring",
                self.dtype,
                np.nan,
                ring_capacity(self.size + self.extra),
                kind="ring",
                ring_head="pushed",
                lazy=True,
                was=np.float64 if self.dtype is not np.float64 else None,
            ),
            Column("tail", np.float64, np.nan, self.tail_width, kind="transient", lazy=True),
            Column("tail_n", np.int64, 0, kind="transient"),
        )

    def update(self, slots: np.ndarray, values: np.ndarray) -> WindowStats:
        """Push one micro-batch of values (NaN values are skipped), in arrival order."""
        if self.dtype is not np.float64:  # what the ring holds, everywhere (class docstring)
            values = values.astype(self.dtype).astype(np.float64)
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
        if not st.materialized("ring") and not np.isnan(values).all():
            st.materialize("ring", "tail")
        _push(
            slots,
            values,
            st["ring"],
            st["pushed"],
            st["tail"],
            st["tail_n"],
            self.tail_need,
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
        return _ring_last(self.state, slot, count, skip)

    def rebuild(self, slot: int) -> None:
        """Select the window's lower tail from the ring again (the sums are persisted state)."""
        if self.state.materialized("ring"):
            self.state.materialize("tail")
        n = int(self.state["pushed"][slot])
        tail = self.state["tail"]
        ring = self.state["ring"]
        self.state["tail_n"][slot] = _tail_select(tail[slot], ring[slot], n, min(n, self.size))
