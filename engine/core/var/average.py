"""The ``avg`` method: the equal-weight average of other methods' VaR and ES.

Forecast combination across volatility models: ``avg`` publishes, at every level, the
mean of the VaR (and, separately, of the ES) of its *parts*, methods of the same book
(:attr:`~engine.core.spec.RiskSpec.average_methods`, by default ``gjr-mix`` and
``ewma-fhs``). The classic result (Bates and Granger 1969; for quantiles, Giacomini and
Komunjer 2005, Taylor 2020) is that an equal-weight average of forecasts whose errors
are not perfectly correlated has a lower expected loss than its parts on average, and
equal weights, having nothing to estimate, are hard to beat out of sample. A refitted
GJR model and a RiskMetrics filter err differently: GJR reacts to the leverage effect
and mean-reverts, EWMA follows the last weeks only.

Causal by construction: each part's forecast for the return ending at ``t`` is made
with data up to ``t - 1``, and so is their mean. Where a part has no forecast yet
(warm-up, a first fit not yet made), the mean runs over the parts that have one.
"""

from __future__ import annotations

import numpy as np

#: The method's name.
AVERAGE = "avg"
#: Its default parts, chosen a priori: the refitted GJR model with its own combination of
#: distributions, and RiskMetrics' EWMA filter with the empirical quantiles of its
#: standardised residuals (no distribution assumed, no fit that can go wrong).
AVERAGE_METHODS = ("gjr-mix", "ewma-fhs")


def mean_available(columns: np.ndarray) -> np.ndarray:
    """Mean over axis 1 of the finite entries (NaN where none is finite).

    ``columns`` is ``[tick, part, ...]``; the result drops the ``part`` axis.

    >>> mean_available(np.array([[[1.0], [3.0]], [[np.nan], [2.0]], [[np.nan], [np.nan]]]))
    array([[ 2.],
           [ 2.],
           [nan]])
    """
    finite = np.isfinite(columns)
    count = finite.sum(axis=1)
    total = np.where(finite, columns, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def fill_average(arrays: tuple[np.ndarray, ...], col: int, parts: list[int]) -> None:
    """Write column ``col`` of each ``[tick, method, level]`` array: the mean of ``parts``."""
    for out in arrays:
        out[:, col, :] = mean_available(out[:, parts, :])
