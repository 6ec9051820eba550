"""The ``gap`` feature's step on the trading clock, shared by the price and series kernels.

For a key's row after its previous one: :func:`clock_step` gives the time between them on
the trading clock (:mod:`engine.anomaly.sessions`), switching an ``auto`` key to wall time
for good when it moves while its exchange is closed, and tells a close followed by the
next open (one ordinary step, not scored). :func:`log_gap` scores a step as
:math:`\\log(\\Delta t / \\bar{\\Delta t})` against the key's typical interval (an
exponentially weighted mean of log intervals, weights :math:`1/n` up to ``halflife``
rows) and updates that mean. Both are plain Python from Python and compiled inline in the
feature kernels; they read and write the kernels' per-key state arrays at slot ``s``.
numba's on-disk cache of those kernels does not notice a change made here: after editing
this module, delete the ``*.nbi``/``*.nbc`` files of ``prices.py`` and ``series.py``.
"""

from __future__ import annotations

import math

import numpy as np
from numba.extending import register_jitable


@register_jitable
def clock_step(
    wall_dt: int,
    clock_dt: float,
    inside_now: bool,
    auto: bool,
    s: int,
    wall: np.ndarray,
    last_in: np.ndarray,
    ld_n: np.ndarray,
    ld_m: np.ndarray,
) -> tuple[float, bool]:
    """``(dt, boundary)`` of a step of ``wall_dt`` ms of wall time and ``clock_dt`` of clock.

    ``dt`` is in milliseconds of the key's clock (wall time once ``wall[s]`` is 1);
    ``boundary``: the previous row was at a close (inside a session) and this one is
    inside the next session with no clock time between them.
    """
    dt = clock_dt
    boundary = False
    if wall[s] == 0 and wall_dt > 0 and dt <= 0.0:
        if inside_now and last_in[s] == 1:
            boundary = True  # a close, then the next open: one ordinary step
        elif auto:
            wall[s] = 1  # moves while its exchange is closed: wall time from now on
            ld_n[s] = 0.0
            ld_m[s] = 0.0
    if wall[s] == 1:
        dt = float(wall_dt)
    return dt, boundary


@register_jitable
def log_gap(dt: float, s: int, ld_n: np.ndarray, ld_m: np.ndarray, halflife: float) -> float:
    """The ``gap`` feature of a step of ``dt`` ms (at least 1 ms), then the typical log
    interval updated with it; 0 for a key's first step."""
    dt = dt if dt > 1.0 else 1.0
    x = math.log(dt / 1000.0)
    gap = x - ld_m[s] if ld_n[s] > 0 else 0.0
    c = min(ld_n[s] + 1.0, halflife)
    ld_n[s] = c
    ld_m[s] += (x - ld_m[s]) / c
    return gap
