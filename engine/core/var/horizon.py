"""VaR and ES over a horizon of ``h`` steps, and the windows that judge them.

The models forecast the next step's log return (a tick, or a session with
``RISKSTREAM_BARS=session``). The published VaR/ES for the next ``h`` steps is the
one-step forecast scaled by :func:`horizon_factor` (``sqrt(h)``): for EWMA this is
model-consistent (the EWMA variance forecast is flat, so the ``h``-step variance is
``h * sigma^2``); for historical simulation, filtered HS, Cornish-Fisher and Student-t
it is the square-root-of-time rule applied to the quantiles of the one-step
standardised distribution, an approximation Basel allows for a 10-day VaR (the sum of
``h`` fat-tailed returns is closer to normal than one of them, so the rule overstates
the tail a little; mean reversion of a GARCH variance, left out, makes it too high when
today's sigma is above its long-run level, too low below). Horizon 1 is the identity,
bit for bit.

A forecast for ``h`` steps is judged against the realised ``h``-step log return, the
sum of the next ``h`` one-step returns; :func:`horizon_windows` takes them on
non-overlapping windows, so the hit sequence is independent under a correct model, as
Kupiec's and Christoffersen's tests assume (overlapping windows would make consecutive
hits dependent by construction).
"""

from __future__ import annotations

import numpy as np


def horizon_factor(h: int) -> float:
    """The factor a one-step VaR/ES is scaled by for ``h`` steps (``sqrt(h)``).

    >>> horizon_factor(1), round(horizon_factor(10), 6)
    (1.0, 3.162278)
    """
    if h < 1:
        raise ValueError(f"the horizon must be at least 1 step, got {h}")
    return 1.0 if h == 1 else float(np.sqrt(h))


def horizon_windows(
    returns: np.ndarray, forecast: np.ndarray, h: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-overlapping ``h``-step windows of one symbol's rows (in time order).

    Parameters
    ----------
    returns : ndarray
        ``returns[k]``: the log return ending at row ``k`` (NaN for the first row).
    forecast : ndarray
        ``forecast[k]``: a forecast made at row ``k`` (data up to and including it) for
        the return over rows ``k + 1 .. k + h``; NaN while it warms up.
    h : int
        The horizon, in rows (at least 1).

    Returns
    -------
    rows, realised, judged : ndarray
        The rows the windows start at (the first row with a forecast, then every ``h``-th
        row while a whole window of ``h`` returns follows), the realised ``h``-step log return after each
        (the sum of the window's returns) and its forecast.

    >>> r = np.array([np.nan, 0.01, -0.02, 0.03, 0.01, -0.01, 0.02])
    >>> f = np.array([np.nan, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5])
    >>> rows, realised, judged = horizon_windows(r, f, 2)
    >>> rows.tolist(), np.round(realised, 6).tolist()  # row 5 has one return after it
    ([1, 3], [0.01, 0.0])
    """
    if h < 1:
        raise ValueError(f"the horizon must be at least 1 step, got {h}")
    returns = np.asarray(returns, float)
    forecast = np.asarray(forecast, float)
    if returns.shape != forecast.shape:
        raise ValueError("returns and forecasts must have the same length")
    ready = np.flatnonzero(np.isfinite(forecast))
    n = returns.size
    first = int(ready[0]) if ready.size else n
    rows = np.arange(first, n - h, h, dtype=np.int64)  # whole windows only
    # csum[k] = returns[1] + ... + returns[k]: a window's sum is csum[k + h] - csum[k]
    csum = np.concatenate([[0.0], np.cumsum(returns[1:])])
    return rows, csum[rows + h] - csum[rows], forecast[rows]
