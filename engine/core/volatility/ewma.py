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

from engine.core.slots import Column
from engine.core.volatility.base import Build, VolatilityModel
from engine.core.volatility.registry import register


@numba.njit(cache=True, nogil=True)
def _ewma(slots, returns, var, nobs, lam, warmup, before, after):  # pragma: no cover - compiled
    for i in range(slots.shape[0]):
        s = slots[i]
        before[i] = np.sqrt(var[s]) if nobs[s] >= warmup else np.nan
        r = returns[i]
        if not np.isnan(r):
            n = nobs[s] + 1
            nobs[s] = n
            if n <= warmup:
                var[s] += (r * r - var[s]) / n
            else:
                var[s] = lam * var[s] + (1.0 - lam) * r * r
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

    def __init__(self, lam: float = 0.94, warmup: int = 20) -> None:
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
