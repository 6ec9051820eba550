"""The built-in distributions of the VaR methods (see :mod:`engine.core.spec` for each).

Each is one registered class (:mod:`engine.core.var.registry`); the order of the classes
here is the order of the methods' columns. The kernels writing the columns are compiled.
"""

from __future__ import annotations

from collections.abc import Mapping

import numba
import numpy as np

from engine.core.dists import CornishFisher, StudentTable, normal_factors, nu_from_kurtosis
from engine.core.var.registry import Distribution, Forecast, register_distribution


@register_distribution
class Normal(Distribution):
    """``sigma`` times the standard normal factors."""

    name = "normal"

    def __init__(self, levels: tuple[float, ...]) -> None:
        super().__init__(levels)
        factors = np.array([normal_factors(level) for level in self.levels])
        self.var_factor, self.es_factor = factors[:, 0][None, :], factors[:, 1][None, :]

    def fill(
        self,
        var: np.ndarray,
        es: np.ndarray,
        col: int,
        forecast: Forecast,
        columns: Mapping[str, int],
    ) -> None:
        _scaled(var, es, col, forecast.sigma, self.var_factor, self.es_factor)


@register_distribution
class StudentT(Distribution):
    """``sigma`` times the unit-variance Student-t factors: the model's ``nu`` when it
    estimates one, else ``nu`` from the excess kurtosis of its standardised residuals."""

    name = "t"

    def __init__(self, levels: tuple[float, ...]) -> None:
        super().__init__(levels)
        self.table = StudentTable(self.levels)

    def fill(
        self,
        var: np.ndarray,
        es: np.ndarray,
        col: int,
        forecast: Forecast,
        columns: Mapping[str, int],
    ) -> None:
        nu = forecast.nu if forecast.model_nu else nu_from_kurtosis(forecast.moments[:, 3])
        _scaled(var, es, col, forecast.sigma, *self.table.factors(nu))


@register_distribution
class FilteredHS(Distribution):
    """Filtered historical simulation: ``sigma`` times the empirical residual quantiles."""

    name = "fhs"

    def fill(
        self,
        var: np.ndarray,
        es: np.ndarray,
        col: int,
        forecast: Forecast,
        columns: Mapping[str, int],
    ) -> None:
        _filtered(var, es, col, forecast.sigma, forecast.q, forecast.tail)


@register_distribution
class CornishFisherExpansion(Distribution):
    """Cornish-Fisher: the normal quantile corrected by the residuals' skewness and kurtosis."""

    name = "cf"

    def __init__(self, levels: tuple[float, ...]) -> None:
        super().__init__(levels)
        self.expansion = CornishFisher(self.levels)

    def fill(
        self,
        var: np.ndarray,
        es: np.ndarray,
        col: int,
        forecast: Forecast,
        columns: Mapping[str, int],
    ) -> None:
        fv, fe = self.expansion.factors(forecast.moments[:, 2], forecast.moments[:, 3])
        _scaled(var, es, col, forecast.sigma, fv, fe)


@register_distribution
class Mix(Distribution):
    """The equal-weight mean of the VaR (and ES) of :attr:`parts`, over those available."""

    name = "mix"
    #: The distributions averaged (registered before this one).
    parts = ("t", "fhs", "cf")

    def fill(
        self,
        var: np.ndarray,
        es: np.ndarray,
        col: int,
        forecast: Forecast,
        columns: Mapping[str, int],
    ) -> None:
        parts = np.array([columns[d] for d in self.parts])
        if (parts >= col).any():
            raise ValueError(f"mix averages {self.parts}: register them before it")
        _mix(var, es, col, parts)


@numba.njit(cache=True)
def _scaled(var, es, col, sigma, fv, fe):  # pragma: no cover - compiled
    """``var[:, col] = sigma * fv`` (and ES); factor rows per row, or one row for all."""
    per_row = fv.shape[0] > 1
    for i in range(var.shape[0]):
        r = i if per_row else 0
        for j in range(var.shape[2]):
            var[i, col, j] = sigma[i] * fv[r, j]
            es[i, col, j] = sigma[i] * fe[r, j]


@numba.njit(cache=True)
def _filtered(var, es, col, sigma, q, tail):  # pragma: no cover - compiled
    """Empirical quantiles times ``sigma``; window columns run from the highest level down."""
    k = var.shape[2]
    for i in range(var.shape[0]):
        for j in range(k):
            var[i, col, j] = -sigma[i] * q[i, k - 1 - j]
            es[i, col, j] = -sigma[i] * tail[i, k - 1 - j]


@numba.njit(cache=True)
def _mix(var, es, col, parts):  # pragma: no cover - compiled
    """``var[:, col]``: the mean of the finite ``var[:, parts]`` (NaN when none is); ES alike."""
    for out in (var, es):
        for i in range(out.shape[0]):
            for j in range(out.shape[2]):
                total = 0.0
                count = 0
                for p in parts:
                    v = out[i, p, j]
                    if np.isfinite(v):
                        total += v
                        count += 1
                out[i, col, j] = total / count if count else np.nan
