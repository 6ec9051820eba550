"""EWMA (RiskMetrics) volatility.

For a symbol's returns :math:`r_1, r_2, \\dots` (decimal log returns, zero mean
assumed, as in RiskMetrics 1996):

* warm-up, :math:`n \\le m`: :math:`\\sigma^2_{n+1|n} = \\frac{1}{n}\\sum_{j\\le n} r_j^2`;
* then :math:`\\sigma^2_{n+1|n} = \\lambda\\,\\sigma^2_{n|n-1} + (1-\\lambda)\\,r_n^2`.

The forecast :math:`\\sigma_{n+1|n}` uses returns up to and including :math:`r_n` and is
published once :math:`n \\ge m` (``warmup``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np
from numba.extending import register_jitable

from engine.core.riskmetrics import DEFAULT_LAMBDA, DEFAULT_WARMUP
from engine.core.slots import Column
from engine.core.volatility.base import Build, VolatilityModel
from engine.core.volatility.registry import register

__all__ = ["DEFAULT_LAMBDA", "DEFAULT_WARMUP", "EWMAVolatility", "ewma_next", "ewma_step"]


@register_jitable
def ewma_next(var: float, r: float, lam: float) -> float:
    """The RiskMetrics recursion :math:`\\lambda\\,\\sigma^2 + (1-\\lambda)\\,r^2`: the
    variance forecast after return ``r`` (decimal) from the one made before it.

    The one EWMA recursion of the engine: plain Python when called from Python, compiled
    inline when a numba kernel calls it (the same operations, so the same bits).
    numba's on-disk cache of a kernel in another module does not notice a change made
    here: after editing this function, delete the ``*.nbi``/``*.nbc`` files of its callers
    (``engine/core/volatility/deep_features.py``, ``engine/anomaly/features/series.py``).

    >>> ewma_next(1e-4, 0.02, 0.94)  # 0.94e-4 + 0.06 * 4e-4
    0.00011800000000000002
    """
    return lam * var + (1.0 - lam) * r * r


@register_jitable
def ewma_step(var: float, nobs: int, r: float, lam: float, warmup: int) -> tuple[float, int]:
    """One return ``r`` into a symbol's state: ``(variance, returns seen)`` after it.

    The first ``warmup`` returns are averaged as a plain mean of squares, then
    :func:`ewma_next` applies. ``r`` must not be NaN (a missing return is no update).
    Plain Python from Python, compiled inline in numba kernels.

    >>> var, n = 0.0, 0
    >>> for r in (0.01, -0.02, 0.03):
    ...     var, n = ewma_step(var, n, r, 0.94, 2)
    >>> round(var, 8), n  # mean(1e-4, 4e-4), then 0.94 * 2.5e-4 + 0.06 * 9e-4
    (0.000289, 3)
    """
    n = nobs + 1
    if n <= warmup:
        return var + (r * r - var) / n, n
    return ewma_next(var, r, lam), n


@numba.njit(cache=True, nogil=True)
def _ewma(slots, returns, var, nobs, lam, warmup, before, after):  # pragma: no cover - compiled
    for i in range(slots.shape[0]):
        s = slots[i]
        before[i] = np.sqrt(var[s]) if nobs[s] >= warmup else np.nan
        r = returns[i]
        if not np.isnan(r):
            var[s], nobs[s] = ewma_step(var[s], nobs[s], r, lam, warmup)
        after[i] = np.sqrt(var[s]) if nobs[s] >= warmup else np.nan


@register("ewma")
class EWMAVolatility(VolatilityModel):
    """RiskMetrics EWMA volatility, vectorised over symbols.

    Parameters
    ----------
    lam : float
        Decay, strictly between 0 and 1 (RiskMetrics daily: 0.94).
    warmup : int
        Returns averaged (as a plain mean of squares) before the recursion starts and
        before a forecast is published; at least 1.

    Examples
    --------
    >>> model = EWMAVolatility(lam=0.94, warmup=2)
    >>> model.ensure(1)
    >>> before, after = model.update(np.zeros(3, np.int64), np.array([0.01, -0.02, 0.03]))
    >>> after.round(6).tolist()  # sqrt(mean(1e-4, 4e-4)), then the recursion
    [nan, 0.015811, 0.017]
    >>> bool(before[2] == after[1])  # the forecast for a return is the one made after the previous
    True
    """

    name = "ewma"

    def __init__(self, lam: float = DEFAULT_LAMBDA, warmup: int = DEFAULT_WARMUP) -> None:
        if not 0.0 < lam < 1.0:
            raise ValueError("lam must be strictly between 0 and 1")
        if warmup < 1:
            raise ValueError("warmup must be at least 1")
        self.lam = float(lam)
        self.warmup = int(warmup)
        super().__init__()

    @classmethod
    def from_spec(cls, name: str, build: Build) -> EWMAVolatility:
        return cls(build.spec.ewma_lambda, build.spec.warmup)

    @property
    def model_version(self) -> str:  # type: ignore[override]
        return f"ewma-lambda{self.lam:g}-warmup{self.warmup}"

    def columns(self) -> Sequence[Column]:
        return (Column("var", np.float64, 0.0), Column("nobs", np.int64, 0))

    def update(self, slots: np.ndarray, returns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        before = np.empty(slots.shape[0], dtype=np.float64)
        after = np.empty(slots.shape[0], dtype=np.float64)
        _ewma(
            slots,
            returns,
            self.state["var"],
            self.state["nobs"],
            self.lam,
            self.warmup,
            before,
            after,
        )
        return before, after
