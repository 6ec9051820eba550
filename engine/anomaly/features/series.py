r"""Features of any univariate series (prices, volumes, latencies, counts), online.

For value :math:`x_t` at time :math:`t`, with :math:`d_t = x_t - x_{t-1}` and rolling
windows of the last ``window`` values and changes *before* this one (median :math:`m`,
robust scale :math:`s` = IQR / 1.349, or the standard deviation when the IQR is 0, at
least half the series' quantum: the larger of its typical step :math:`\bar{|d|}` (the
exponentially weighted mean of :math:`|d|` over changes that are not 0: the tick of a
quantised series, the catch-up move of a stale one) and its typical deviation from the
typical change (the mean of :math:`|d - m_d|` where not 0: the reset of a sawtooth);
NaN, "no evidence", when these are 0 or unknown, as in a constant series or one whose
changes have never deviated from their median (a constant step: a counter, a linear
trend). Statistics of a window are used once it holds ``min_obs`` (50) values: the IQR of
20 normal values understates the scale by half or more in one window of 46, of 50 values
in one of 2,000, and a 9-change median reports such an understatement as a volatility
burst):

``level_z``
    :math:`(x_t - m_x) / s_x`: the value against the recent values (spikes and level
    shifts of stationary series: latencies, volumes, counts);
``change_z``
    :math:`(d_t - m_d) / s_d`: the change against recent changes (jumps of trending or
    random-walk series: prices; a linear trend is its median change, removed);
``move_3``, ``move_10``
    :math:`(x_t - x_{t-k} - k\,m_d) / (s_d \sqrt{k})` with the change statistics of the
    window before the first of those changes: moves spread over several steps;
``burst``
    the median of :math:`|d - m_d| / s_d` over the last 9 changes, against the scale
    before the first of them: a variance burst;
``gap``
    :math:`\log(\Delta t / \bar{\Delta t})`, the time since the previous row against the
    typical interval (exponentially weighted geometric mean, weights :math:`1/n` up to
    500 rows): 0 for a regular series, large after missing rows. Time is the trading
    clock of ``calendar`` (:mod:`engine.anomaly.sessions`): weekends, holidays and nights
    are no gap; NaN for a row at an open after a row at the previous close;
``change_v``
    :math:`(d_t - m_d) / \sqrt{v_t}` with :math:`v_t` the exponentially weighted
    (``lam`` 0.94, RiskMetrics) mean of earlier squared deviations :math:`(d - m_d)^2`:
    the change against the *current* volatility (jumps of series with clustered
    volatility, such as prices), at least half the quantum; NaN until 20 deviations
    from a known median change were seen;
``frozen``, ``frozen_surprisal``
    the run of rows equal to the previous value, and :math:`-\mathrm{run}\cdot\log_{10}\hat p_0`
    with :math:`\hat p_0` the rate of unchanged values *before the run began*: the larger
    of the series' pooled rate :math:`(n_0 + 0.5)/(n + 1)` and the rate after values of
    the run's class (``_CLASSES`` hash classes of the value, shrunk to the pooled rate
    with one pseudo-row), both exponentially weighted; a quantised series' states keep
    their own rates (the long runs of the 0 of a binary series are not the rare runs of
    its 1), a continuous series' values fall in every class alike (the pooled rate). 0
    when fewer than 20 rows came before the run (a constant series is not a frozen one).

Every feature of row ``t`` uses rows up to ``t`` only (row ``t`` and the windows before
it). NaN while a window holds fewer than ``min_obs`` values. A NaN value is not a row:
the caller skips it (:func:`engine.anomaly.series.score_series`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numba
import numpy as np

from engine.anomaly.features.gap import clock_step, log_gap
from engine.anomaly.sessions import AUTO, auto_clocks, check_calendar
from engine.core.online import OnlineComponent
from engine.core.riskmetrics import DEFAULT_LAMBDA
from engine.core.slots import Column
from engine.core.volatility.ewma import ewma_next
from engine.core.windows import RollingWindow

SERIES_FEATURES = (
    "level_z",
    "change_z",
    "move_3",
    "move_10",
    "burst",
    "gap",
    "frozen",
    "frozen_surprisal",
    "change_v",
)
_RING = 10
_BURST = 9
_PROBS = (0.25, 0.5, 0.75)
_LAM = DEFAULT_LAMBDA
_MIN_VOL = 20
_FLOOR = 0.5
"""Scales are at least this share of the series' typical step (mean |change| over changes
that are not 0): the quantum a tick size or a stale feed moves by."""
_MIN_HISTORY = 20
"""Rows of history a frozen run needs before it is evidence of anything."""


_CLASSES = 8
"""Classes of values (a hash of the value) with their own rate of unchanged values: the
states of a quantised series (0 and 1, counts) fall in distinct classes; the values of a
continuous series never recur, so every class mixes them and its rate is the pooled one."""


@numba.njit(cache=True, nogil=True)
def _value_class(v):  # pragma: no cover - compiled
    """The class of value ``v`` in ``[0, _CLASSES)``: a hash of its mantissa and exponent."""
    if not np.isfinite(v):
        return 0
    m, e = math.frexp(v)
    h = np.int64(m * 1073741824.0) * np.int64(2654435761) + np.int64(e) * np.int64(40503)
    h = h ^ (h >> np.int64(29))
    return int(h % _CLASSES) if h >= 0 else int((-h) % _CLASSES)


@numba.njit(cache=True, nogil=True)
def _scale(q, std, floor):  # pragma: no cover - compiled
    """IQR / 1.349, or the standard deviation when the IQR is 0, at least ``floor``;
    NaN (no evidence) when all of them are 0 or unknown."""
    sc = (q[2] - q[0]) / 1.349
    if not sc > 0.0:
        sc = std
    if floor > sc:  # False when floor is NaN
        sc = floor
    return sc if sc > 0.0 else np.nan


@numba.njit(cache=True, nogil=True)
def _series(
    slots,
    ts,
    clock,
    inside,
    weekday,
    weekday_in,
    auto,
    x,
    qx,
    sx,
    qd,
    sd,
    halflife,
    n,
    last_x,
    last_ts,
    xring,
    dmed,
    dscale,
    ld_m,
    ld_n,
    zeros,
    obs,
    run,
    ev,
    ev_n,
    step,
    step_n,
    last_clock,
    wall,
    last_in,
    p0_run,
    hist_run,
    vzeros,
    vobs,
    dstep,
    dstep_n,
    last_weekday,
    last_weekday_in,
    out,
):  # pragma: no cover - compiled
    window = np.empty(_BURST)
    for i in range(slots.shape[0]):
        s = slots[i]
        v = x[i]
        floor = _FLOOR * max(step[s], dstep[s]) if dstep_n[s] > 0.0 else np.nan
        # level
        if np.isnan(qx[i, 1]):
            out[i, 0] = np.nan
        else:
            out[i, 0] = (v - qx[i, 1]) / _scale(qx[i], sx[i], floor)
        k = n[s]
        if k == 0:
            for c in range(1, 6):
                out[i, c] = np.nan
            out[i, 6] = 0.0
            out[i, 7] = 0.0
            out[i, 8] = np.nan
        else:
            d = v - last_x[s]
            if np.isnan(qd[i, 1]):
                med, sc = np.nan, np.nan
                out[i, 1] = np.nan
            else:
                med = qd[i, 1]
                sc = _scale(qd[i], sd[i], floor)
                out[i, 1] = (d - med) / sc
            # the change against the EWMA volatility of recent changes (clustered volatility)
            dev = d - med if not np.isnan(med) else d
            if ev_n[s] >= _MIN_VOL:
                vol = math.sqrt(ev[s])
                if floor > vol:
                    vol = floor
                out[i, 8] = dev / vol if vol > 0.0 else np.nan
            else:
                out[i, 8] = np.nan
            if not np.isnan(med):  # deviations from a typical change that is known
                ev[s] = dev * dev if ev_n[s] == 0 else ewma_next(ev[s], dev, _LAM)
                ev_n[s] += 1.0
            pos = k % _RING
            xring[s, pos] = v
            dmed[s, pos] = med
            dscale[s, pos] = sc
            for j in range(2):
                steps = 3 if j == 0 else 10
                if k >= steps:
                    first = (k - steps + 1) % _RING
                    old = xring[s, (k - steps) % _RING]
                    m0 = dmed[s, first]
                    s0 = dscale[s, first]
                    out[i, 2 + j] = (v - old - steps * m0) / (s0 * math.sqrt(steps))
                else:
                    out[i, 2 + j] = np.nan
            if k >= _BURST:
                first = (k - _BURST + 1) % _RING
                s0 = dscale[s, first]
                for back in range(_BURST):
                    p = (k - back) % _RING
                    window[back] = abs(xring[s, p] - xring[s, (p - 1) % _RING] - dmed[s, p])
                out[i, 4] = np.median(window) / s0
            else:
                out[i, 4] = np.nan
            # time, on the trading clock (engine.anomaly.sessions)
            dt = clock_step(
                ts[i] - last_ts[s],
                clock[i] - last_clock[s],
                inside[i],
                weekday[i] - last_weekday[s],
                weekday_in[i],
                auto,
                s,
                wall,
                last_in,
                last_weekday_in,
                ld_n,
                ld_m,
            )
            out[i, 5] = log_gap(dt, s, ld_n, ld_m, halflife)  # NaN when no clock time passed
            # frozen: the run against the rate of unchanged values before it started
            unchanged = d == 0.0
            b = _value_class(last_x[s])
            if unchanged and run[s] == 0:
                pooled = (zeros[s] + 0.5) / (obs[s] + 1.0)
                own = (vzeros[s, b] + pooled) / (vobs[s, b] + 1.0)
                p0_run[s] = own if own > pooled else pooled
                hist_run[s] = obs[s]
            run[s] = run[s] + 1 if unchanged else 0
            out[i, 6] = run[s]
            if run[s] > 0 and hist_run[s] >= _MIN_HISTORY:
                out[i, 7] = -run[s] * math.log10(p0_run[s])
            else:
                out[i, 7] = 0.0
            # the quantum: the typical step and the typical deviation from the typical
            # change (once that change is known); a series whose changes never deviated
            # (a constant step: a linear trend, a counter) has no quantum yet
            if not unchanged:
                c = min(step_n[s] + 1.0, halflife)
                step_n[s] = c
                step[s] += (abs(d) - step[s]) / c
            if not np.isnan(med) and dev != 0.0:
                c = min(dstep_n[s] + 1.0, halflife)
                dstep_n[s] = c
                dstep[s] += (abs(dev) - dstep[s]) / c
            c = min(obs[s] + 1.0, halflife)
            zeros[s] = zeros[s] * (c - 1.0) / max(obs[s], 1.0) + (1.0 if unchanged else 0.0)
            obs[s] = c
            c = min(vobs[s, b] + 1.0, halflife)
            vzeros[s, b] = vzeros[s, b] * (c - 1.0) / max(vobs[s, b], 1.0) + (
                1.0 if unchanged else 0.0
            )
            vobs[s, b] = c
        if k == 0:
            xring[s, 0] = v
        last_x[s] = v
        last_ts[s] = ts[i]
        last_clock[s] = clock[i]
        last_in[s] = 1 if inside[i] else 0
        last_weekday[s] = weekday[i]
        last_weekday_in[s] = 1 if weekday_in[i] else 0
        n[s] = k + 1


class SeriesState(OnlineComponent):
    """Per series: last value and time, recent values and change statistics, gap and run state."""

    name = "anomaly_series_state"

    def columns(self) -> Sequence[Column]:
        return (
            Column("n", np.int64, 0),
            Column("last_x", np.float64, np.nan),
            Column("last_ts", np.int64, 0),
            Column("xring", np.float64, np.nan, _RING),
            Column("dmed", np.float64, np.nan, _RING),
            Column("dscale", np.float64, np.nan, _RING),
            Column("ld_m", np.float64, 0.0),
            Column("ld_n", np.float64, 0.0),
            Column("zeros", np.float64, 0.0),
            Column("obs", np.float64, 0.0),
            Column("run", np.int64, 0),
            Column("ev", np.float64, 0.0),
            Column("ev_n", np.float64, 0.0),
            Column("step", np.float64, 0.0),
            Column("step_n", np.float64, 0.0),
            Column("last_clock", np.float64, np.nan),
            Column("wall", np.int64, 0),
            Column("last_in", np.int64, 0),
            Column("p0_run", np.float64, np.nan),
            Column("hist_run", np.float64, 0.0),
            Column("vzeros", np.float64, 0.0, _CLASSES),
            Column("vobs", np.float64, 0.0, _CLASSES),
            Column("dstep", np.float64, 0.0),
            Column("dstep_n", np.float64, 0.0),
            Column("last_weekday", np.float64, np.nan),
            Column("last_weekday_in", np.int64, 0),
        )


class SeriesFeatures:
    """The features of :data:`SERIES_FEATURES`, per slot (one slot per series).

    Parameters
    ----------
    window : int
        Values (and changes) in the rolling windows.
    min_obs : int
        Values a window needs before its statistics are used.
    halflife : float
        Rows after which the interval and unchanged-value rates stop shrinking weights.

    Examples
    --------
    >>> f = SeriesFeatures(window=50, min_obs=5)
    >>> f.ensure(1)
    >>> x = np.r_[np.tile([10.0, 11.0], 10), 30.0]
    >>> out = f.update(np.zeros(21, np.int64), np.arange(21) * 1000, x)
    >>> bool(out[-1, SERIES_FEATURES.index("level_z")] > 10)  # the spike
    True
    """

    def __init__(
        self,
        window: int = 200,
        min_obs: int = 50,
        halflife: float = 500.0,
        calendar: str = "auto",
    ) -> None:
        if window < 5 or not 3 <= min_obs <= window:
            raise ValueError("need window >= 5 and 3 <= min_obs <= window")
        self.calendar = check_calendar(calendar)
        self.values = RollingWindow("anomaly_series_x", window, _PROBS, min_obs=min_obs)
        self.changes = RollingWindow("anomaly_series_d", window, _PROBS, min_obs=min_obs)
        self.state = SeriesState()
        self.halflife = float(halflife)

    def components(self) -> tuple[OnlineComponent, ...]:
        return (self.values, self.changes, self.state)

    def ensure(self, n_slots: int) -> None:
        for c in self.components():
            c.ensure(n_slots)

    def update(self, slots: np.ndarray, ts: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Features of rows (arrival order, no NaN values), then learn them."""
        slots = np.ascontiguousarray(slots, dtype=np.int64)
        x = np.ascontiguousarray(x, dtype=np.float64)
        st = self.state.state
        # changes need each slot's previous value, in order: computed row by row in numba
        d = _changes(slots, x, st["last_x"].copy(), st["n"].copy())
        vx = self.values.update(slots, x)
        vd = self.changes.update(slots, d)
        out = np.empty((len(x), len(SERIES_FEATURES)))
        ts = np.ascontiguousarray(ts, dtype=np.int64)
        clock, inside, weekday, weekday_in = auto_clocks(ts, self.calendar)
        _series(
            slots,
            ts,
            clock,
            inside,
            weekday,
            weekday_in,
            self.calendar == AUTO,
            x,
            vx.q_before,
            vx.moments_before[:, 1],
            vd.q_before,
            vd.moments_before[:, 1],
            self.halflife,
            st["n"],
            st["last_x"],
            st["last_ts"],
            st["xring"],
            st["dmed"],
            st["dscale"],
            st["ld_m"],
            st["ld_n"],
            st["zeros"],
            st["obs"],
            st["run"],
            st["ev"],
            st["ev_n"],
            st["step"],
            st["step_n"],
            st["last_clock"],
            st["wall"],
            st["last_in"],
            st["p0_run"],
            st["hist_run"],
            st["vzeros"],
            st["vobs"],
            st["dstep"],
            st["dstep_n"],
            st["last_weekday"],
            st["last_weekday_in"],
            out,
        )
        return out


@numba.njit(cache=True, nogil=True)
def _changes(slots, x, last, n):  # pragma: no cover - compiled
    out = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        s = slots[i]
        out[i] = x[i] - last[s] if n[s] > 0 else np.nan
        last[s] = x[i]
        n[s] += 1
    return out
