"""The ``gap`` feature's step on the trading clock, shared by the price and series kernels.

For a key's row after its previous one: :func:`clock_step` gives the time between them on
the trading clock (:mod:`engine.anomaly.sessions`), switching an ``auto`` key to the
weekday clock, or to wall time, for good when it moves while its exchange is closed. :func:`log_gap` scores a step as
:math:`\\log(\\Delta t / \\bar{\\Delta t})` against the key's typical interval (an
exponentially weighted mean of log intervals, weights :math:`1/n` up to ``halflife``
rows) and updates that mean.

A step with no elapsed time on the key's clock has no interval: its gap is NaN (not
scored) and the typical interval does not learn it. That is a close followed by the next
open (one ordinary step), a repeated or earlier timestamp, and two rows while the
exchange is closed on an explicit calendar (extended hours on ``XNYS``, a weekend tick):
none of them is a feed arriving early, and learning them as 1 ms intervals would make
every later ordinary interval look like a gap.

Both are plain Python from Python and compiled inline in the feature kernels; they read and write the kernels' per-key state arrays at slot ``s``.
numba's on-disk cache of those kernels does not notice a change made here: after editing
this module, delete the ``*.nbi``/``*.nbc`` files of ``prices.py`` and ``series.py``.
"""

from __future__ import annotations

import math

import numpy as np
from numba.extending import register_jitable

#: A key's clock (its ``wall`` state): the calendar's exchange, wall time, or weekdays.
EXCHANGE, WALL_TIME, WEEKDAYS = 0, 1, 2


@register_jitable
def clock_step(
    wall_dt: int,
    clock_dt: float,
    inside_now: bool,
    weekday_dt: float,
    weekday_inside_now: bool,
    auto: bool,
    s: int,
    wall: np.ndarray,
    last_in: np.ndarray,
    last_weekday_in: np.ndarray,
    ld_n: np.ndarray,
    ld_m: np.ndarray,
) -> float:
    """The step of ``wall_dt`` ms of wall time, ``clock_dt`` of the exchange's clock and
    ``weekday_dt`` of the weekday (``24/5``) clock, in milliseconds of the key's clock; 0
    or less when no time passed on it.

    ``wall[s]`` is the key's clock: :data:`EXCHANGE` (0), :data:`WALL_TIME` (1) or
    :data:`WEEKDAYS` (2). An ``auto`` key moves down that ladder, for good, when it moves
    while its clock is closed: from the exchange to weekdays when the move fell on a
    weekday (another exchange's holiday, extended hours), to wall time when it fell on a
    weekend (a 24/7 market); its typical interval restarts at each switch. A row at a close
    followed by one inside the next session is not such a move (one ordinary step, no
    clock time between them).
    """
    if auto and wall_dt > 0:
        if wall[s] == EXCHANGE and clock_dt <= 0.0 and not (inside_now and last_in[s] == 1):
            # weekday time passed: the move fell on a weekday (a date stamped at 00:00
            # UTC counts as its day's close, as on every clock)
            wall[s] = WEEKDAYS if weekday_dt > 0.0 else WALL_TIME
            ld_n[s] = 0.0
            ld_m[s] = 0.0
        elif (
            wall[s] == WEEKDAYS
            and weekday_dt <= 0.0
            and not (weekday_inside_now and last_weekday_in[s] == 1)
        ):
            wall[s] = WALL_TIME  # moves at a weekend: wall time from now on
            ld_n[s] = 0.0
            ld_m[s] = 0.0
    if wall[s] == WALL_TIME:
        return float(wall_dt)
    if wall[s] == WEEKDAYS:
        return weekday_dt
    return clock_dt


@register_jitable
def log_gap(dt: float, s: int, ld_n: np.ndarray, ld_m: np.ndarray, halflife: float) -> float:
    """The ``gap`` feature of a step of ``dt`` ms of the key's clock (at least 1 ms), then
    the typical log interval updated with it; 0 for a key's first step; NaN, and nothing
    learnt, when ``dt`` is 0 or less (no time passed on the clock: see the module)."""
    if not dt > 0.0:
        return np.nan
    dt = dt if dt > 1.0 else 1.0
    x = math.log(dt / 1000.0)
    gap = x - ld_m[s] if ld_n[s] > 0 else 0.0
    c = min(ld_n[s] + 1.0, halflife)
    ld_n[s] = c
    ld_m[s] += (x - ld_m[s]) / c
    return gap
