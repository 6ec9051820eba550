r"""Price-stream features, per symbol, computed in the stream from the book's step.

For an accepted tick of a symbol at time :math:`t` with log return :math:`r_t` (decimal)
and the book's volatility forecast for it, :math:`\sigma_{t|t-1}` (``sigma_before``:
made before the return was seen; this module keeps no volatility model of its own):

``z``
    :math:`r_t / \sigma_{t|t-1}`, the return standardised by its forecast.
``move_2``, ``move_3``, ``move_10``
    :math:`\sum_{j<k} r_{t-j} / (\sigma_{t-k+1|t-k}\sqrt{k})`, the last ``k`` returns
    together, against the forecast made *before the first of them* (flash crashes and
    level shifts spread over several ticks: the volatility model reacts to the first
    move, and standardising later moves by its reaction would hide them). ``move_2``
    (the last column) catches a fall over two ticks that ``move_3`` dilutes with a
    calm third return.
``burst``
    the median of :math:`|r|` over the last 9 ticks, against the forecast made before
    the first of them: about 0.7 in calm data, large when volatility jumps (a volatility
    burst), but not moved by one isolated jump.
``volume_z``
    :math:`(\log(1 + v_t) - \mu_v) / s_v` against the symbol's exponentially weighted
    mean and standard deviation of log volume before the tick (0 without volume or
    while fewer than 10 volumes were seen): a volume surprise.
``gap``
    :math:`\log(\Delta t / \bar{\Delta t})`, the time since the symbol's previous tick
    against its typical interval :math:`\bar{\Delta t}` (the exponentially weighted
    geometric mean of past intervals): 0 on schedule, :math:`\log 10` after ten
    intervals of silence (a gap in the feed). Time is measured on the symbol's trading
    clock (``calendar``, :mod:`engine.anomaly.sessions`): a weekend, a holiday or a
    night between two sessions is no gap. NaN, and not learnt, when no time passed on
    that clock: a tick at an open after a tick at the close before it, a repeated
    timestamp, two ticks while the exchange of an explicit calendar is closed
    (:mod:`engine.anomaly.features.gap`).
``dt_s``
    :math:`\Delta t` in seconds, the time since the symbol's previous tick.
``frozen``
    the number of consecutive ticks, up to this one, with a price equal to the one
    before (a frozen feed).
``frozen_surprisal``
    :math:`-\mathrm{frozen} \cdot \log_{10} \hat p_0`, the surprisal of such a run if
    unchanged prices occur independently with the symbol's rate
    :math:`\hat p_0 = (n_0 + 0.5) / (n + 50)` (``n_0`` unchanged of ``n`` returns,
    exponentially weighted).

Weights of the exponentially weighted statistics are :math:`1/n` up to ``halflife``
observations, then :math:`1/\mathrm{halflife}`. Every feature of a tick uses that
tick and the symbol's earlier ticks only. NaN where a feature is not yet defined (the
first tick of a symbol has no return; ``z`` needs the book's forecast, which starts
after its warm-up). A forecast of 0 (a price that has not moved since the book's
warm-up: a constant or stale series) is no scale: ``z``, the moves and ``burst``
standardised by it are NaN, no evidence rather than infinite surprise, as in
:mod:`engine.anomaly.features.series`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numba
import numpy as np

from engine.anomaly.features.gap import clock_step, log_gap
from engine.anomaly.sessions import AUTO, WALL, auto_clocks, check_calendar
from engine.core.online import OnlineComponent
from engine.core.slots import Column

PRICE_FEATURES = (
    "z",
    "move_3",
    "move_10",
    "burst",
    "volume_z",
    "gap",
    "dt_s",
    "frozen",
    "frozen_surprisal",
    "move_2",
)
"""Column order of :meth:`PriceFeatures.update`'s output (``move_2`` came last, so the
earlier columns kept their places)."""

_MOVES = (3, 10, 2)
_MOVE_COLUMNS = (1, 2, 9)
_RING = 10
_BURST_TICKS = 9
_MIN_VOLUMES = 10


@numba.njit(cache=True, nogil=True)
def _features(
    slots,
    ts,
    clock,
    inside,
    weekday,
    weekday_in,
    auto,
    returns,
    sigma,
    volume,
    halflife,
    n,
    last_ts,
    ring,
    sring,
    lv_m,
    lv_v,
    lv_n,
    ld_m,
    ld_n,
    zeros,
    obs,
    run,
    last_clock,
    last_in,
    wall,
    last_weekday,
    last_weekday_in,
    out,
):  # pragma: no cover - compiled
    window = np.empty(_BURST_TICKS)
    for i in range(slots.shape[0]):
        s = slots[i]
        r = returns[i]
        sg = sigma[i]
        # --- returns -----------------------------------------------------------------
        z = r / sg if (not np.isnan(r) and sg > 0.0) else np.nan
        if not np.isnan(r):
            ring[s, n[s] % _RING] = r
            sring[s, n[s] % _RING] = sg
        out[i, 0] = z
        for j in range(len(_MOVES)):
            k = _MOVES[j]
            total = 0.0
            first = np.nan
            ok = not np.isnan(z) and n[s] + 1 >= k
            if ok:
                for back in range(k):
                    pos = (n[s] - back) % _RING
                    total += ring[s, pos]
                    first = sring[s, pos]
                ok = first > 0.0  # NaN (warm-up) fails too
            out[i, _MOVE_COLUMNS[j]] = total / (first * math.sqrt(k)) if ok else np.nan
        if not np.isnan(z) and n[s] + 1 >= _BURST_TICKS:
            first = sring[s, (n[s] - _BURST_TICKS + 1) % _RING]
            for back in range(_BURST_TICKS):
                window[back] = abs(ring[s, (n[s] - back) % _RING])
            # no scale before the window (a zero forecast: a stale history) is no evidence
            out[i, 3] = np.median(window) / first if first > 0.0 else np.nan
        else:
            out[i, 3] = np.nan
        # --- volume ------------------------------------------------------------------
        v = volume[i]
        if np.isnan(v):
            out[i, 4] = 0.0
        else:
            x = math.log1p(v)
            if lv_n[s] >= _MIN_VOLUMES:
                sd = math.sqrt(lv_v[s])
                dev = x - lv_m[s]
                if sd > 0.0:
                    out[i, 4] = dev / sd
                else:
                    out[i, 4] = 0.0 if dev == 0.0 else (1e6 if dev > 0 else -1e6)
            else:
                out[i, 4] = 0.0
            c = min(lv_n[s] + 1.0, halflife)
            lv_n[s] = c
            dev = x - lv_m[s] if c > 1.0 else 0.0
            lv_m[s] += dev / c
            lv_v[s] += (dev * (x - lv_m[s]) - lv_v[s]) / c
        # --- time ----------------------------------------------------------------------
        prev = last_ts[s]
        if prev >= 0:
            # the gap on the trading clock (engine.anomaly.sessions); dt_s stays wall time
            wall_dt = ts[i] - prev
            dt = clock_step(
                wall_dt,
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
            out[i, 6] = (wall_dt if wall_dt > 1 else 1) / 1000.0
            out[i, 5] = log_gap(dt, s, ld_n, ld_m, halflife)  # NaN when no clock time passed
        else:
            out[i, 5] = np.nan
            out[i, 6] = np.nan
        if ts[i] > prev:
            last_ts[s] = ts[i]
            last_clock[s] = clock[i]
            last_in[s] = 1 if inside[i] else 0
            last_weekday[s] = weekday[i]
            last_weekday_in[s] = 1 if weekday_in[i] else 0
        # --- frozen prices -------------------------------------------------------------
        if not np.isnan(r):
            unchanged = r == 0.0
            run[s] = run[s] + 1 if unchanged else 0
            p0 = (zeros[s] + 0.5) / (obs[s] + 50.0)
            out[i, 7] = run[s]
            out[i, 8] = -run[s] * math.log10(p0)
            c = min(obs[s] + 1.0, halflife)
            zeros[s] = zeros[s] * (c - 1.0) / max(obs[s], 1.0) + (1.0 if unchanged else 0.0)
            obs[s] = c
        else:
            out[i, 7] = 0.0
            out[i, 8] = 0.0
        if not np.isnan(r):
            n[s] += 1


class PriceFeatures(OnlineComponent):
    """Per-symbol stream features of price ticks (see the module docstring).

    Parameters
    ----------
    halflife : float
        Observations after which the exponentially weighted volume, interval and
        unchanged-price statistics stop shrinking their weights; at least 10.

    Examples
    --------
    >>> f = PriceFeatures()
    >>> f.ensure(1)
    >>> slots = np.zeros(4, np.int64)
    >>> ts = np.array([0, 1000, 2000, 12000])
    >>> out = f.update(slots, ts, np.array([np.nan, 0.01, 0.0, -0.02]),
    ...                np.array([np.nan, 0.01, 0.01, 0.01]), np.full(4, np.nan))
    >>> out[:, PRICE_FEATURES.index("z")].tolist()
    [nan, 1.0, 0.0, -2.0]
    >>> out[:, PRICE_FEATURES.index("dt_s")].tolist()  # the last tick came 10 s late
    [nan, 1.0, 1.0, 10.0]
    >>> round(float(out[3, PRICE_FEATURES.index("gap")]), 3)  # log(10 s / 1 s)
    2.303
    """

    name = "anomaly_price_features"

    def __init__(self, halflife: float = 500.0, calendar: str = WALL) -> None:
        if halflife < 10:
            raise ValueError("halflife must be at least 10 observations")
        self.halflife = float(halflife)
        self.calendar = check_calendar(calendar)
        super().__init__()

    def columns(self) -> Sequence[Column]:
        return (
            Column("n", np.int64, 0),
            Column("last_ts", np.int64, -1),
            Column("ring", np.float64, np.nan, _RING),
            Column("sring", np.float64, np.nan, _RING),
            Column("lv_m", np.float64, 0.0),
            Column("lv_v", np.float64, 0.0),
            Column("lv_n", np.float64, 0.0),
            Column("ld_m", np.float64, 0.0),
            Column("ld_n", np.float64, 0.0),
            Column("zeros", np.float64, 0.0),
            Column("obs", np.float64, 0.0),
            Column("run", np.int64, 0),
            Column("last_clock", np.float64, np.nan),
            Column("last_in", np.int64, 0),
            Column("wall", np.int64, 0),
            Column("last_weekday", np.float64, np.nan),
            Column("last_weekday_in", np.int64, 0),
        )

    def update(
        self,
        slots: np.ndarray,
        ts: np.ndarray,
        returns: np.ndarray,
        sigma_before: np.ndarray,
        volume: np.ndarray,
    ) -> np.ndarray:
        """Features of one micro-batch of accepted ticks, in arrival order.

        ``ts`` in epoch ms; ``returns`` log returns (NaN for a symbol's first tick);
        ``sigma_before`` the book's forecast for each return; ``volume`` NaN where a
        tick has none. Returns a ``(n, len(PRICE_FEATURES))`` array.
        """
        out = np.empty((slots.shape[0], len(PRICE_FEATURES)), dtype=np.float64)
        st = self.state
        ts = np.ascontiguousarray(ts, dtype=np.int64)
        # The trading clock counts open milliseconds from an origin that depends on the
        # timestamps it is given, so each symbol's previous tick is put on the same clock
        # as this batch: a gap spanning two batches is measured exactly as within one
        # (streaming output independent of the batching).
        seen = np.unique(slots[st["last_ts"][slots] >= 0])
        both, both_in, weekdays, weekdays_in = auto_clocks(
            np.concatenate([ts, st["last_ts"][seen]]), self.calendar
        )
        clock, inside = both[: ts.size], both_in[: ts.size]
        weekday, weekday_in = weekdays[: ts.size], weekdays_in[: ts.size]
        st["last_clock"][seen] = both[ts.size :]
        st["last_weekday"][seen] = weekdays[ts.size :]
        _features(
            np.ascontiguousarray(slots, dtype=np.int64),
            ts,
            clock,
            inside,
            weekday,
            weekday_in,
            self.calendar == AUTO,
            np.ascontiguousarray(returns, dtype=np.float64),
            np.ascontiguousarray(sigma_before, dtype=np.float64),
            np.ascontiguousarray(volume, dtype=np.float64),
            self.halflife,
            st["n"],
            st["last_ts"],
            st["ring"],
            st["sring"],
            st["lv_m"],
            st["lv_v"],
            st["lv_n"],
            st["ld_m"],
            st["ld_n"],
            st["zeros"],
            st["obs"],
            st["run"],
            st["last_clock"],
            st["last_in"],
            st["wall"],
            st["last_weekday"],
            st["last_weekday_in"],
            out,
        )
        return out
