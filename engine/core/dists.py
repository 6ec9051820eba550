"""Standardised distributions for parametric VaR and ES, evaluated fast inside kernels.

All distributions here have mean 0 and variance 1, so ``VaR = sigma * var_factor`` and
``ES = sigma * es_factor`` for a volatility forecast ``sigma`` (losses positive).

Student-t with ``nu`` degrees of freedom, standardised to unit variance (as ``arch``'s
``StudentsT``): the quantile is ``t_nu^-1(p) * sqrt((nu - 2) / nu)``. Its factors depend
on ``nu``, which can change at every tick, and scipy's ``t.ppf`` costs microseconds a
call; :class:`StudentTable` precomputes the factors with scipy on a grid uniform in
``1 / nu`` (4,097 points from ``nu = 4.01`` to normal) and interpolates linearly, with a
maximum relative error below 1e-6 (tested against scipy).

Cornish-Fisher expands the normal quantile with skewness ``S`` and excess kurtosis
``K``: ``cf(z) = a0 + a1 z + a2 z^2 + a3 z^3``. Its ES, the average of the expanded
quantiles over the tail, is exact in closed form because the truncated normal moments
``integral z^k phi(z) dz`` up to ``k = 3`` are elementary. The expansion is a quantile
only while it is increasing; for skewness and kurtosis that make it decrease anywhere on
``z`` in [-5, 0] (outside its domain of validity, Maillard 2012) the factors are NaN: no
forecast rather than a wrong one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np
from scipy import stats

NU_MIN = 4.01
GRID = 4097


def normal_factors(level: float) -> tuple[float, float]:
    """``(var_factor, es_factor)`` of the standard normal at confidence ``level``.

    >>> [round(x, 4) for x in normal_factors(0.99)]
    [2.3263, 2.6652]
    """
    z = float(stats.norm.ppf(level))
    return z, float(stats.norm.pdf(z) / (1 - level))


def student_factors(level: float, nu: float) -> tuple[float, float]:
    """``(var_factor, es_factor)`` of the unit-variance Student-t (scipy; for tables and tests).

    >>> [round(x, 4) for x in student_factors(0.99, 5.0)]
    [2.6065, 3.4488]
    """
    scale = np.sqrt((nu - 2.0) / nu)
    q = float(stats.t.ppf(level, nu))
    es = (nu + q * q) / (nu - 1.0) * stats.t.pdf(q, nu) / (1.0 - level)
    return float(q * scale), float(es * scale)


class StudentTable:
    """VaR and ES factors of the unit-variance Student-t at a set of levels, by ``nu``."""

    def __init__(self, levels: Sequence[float]) -> None:
        self.levels = tuple(levels)
        # Grid uniform in x = 1/nu, from 0 (normal) to 1/NU_MIN.
        self.x = np.linspace(0.0, 1.0 / NU_MIN, GRID)
        nu = 1.0 / self.x[1:]
        scale = np.sqrt((nu - 2.0) / nu)
        var = np.empty((GRID, len(self.levels)))
        es = np.empty((GRID, len(self.levels)))
        for j, level in enumerate(self.levels):
            var[0, j], es[0, j] = normal_factors(level)
            q = stats.t.ppf(level, nu)
            var[1:, j] = q * scale
            es[1:, j] = (nu + q * q) / (nu - 1.0) * stats.t.pdf(q, nu) / (1.0 - level) * scale
        self.var_table = var
        self.es_table = es

    def factors(self, nu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(var factors, es factors)``, each ``(n, levels)``, for an array of ``nu`` (NaN stays NaN)."""
        nu = np.asarray(nu, dtype=np.float64)
        var = np.empty((nu.shape[0], len(self.levels)))
        es = np.empty((nu.shape[0], len(self.levels)))
        _student_lookup(nu, self.var_table, self.es_table, 1.0 / NU_MIN, var, es)
        return var, es


@numba.njit(cache=True, nogil=True)
def _student_lookup(nu, var_table, es_table, x_max, var_out, es_out):  # pragma: no cover - compiled
    last = var_table.shape[0] - 1
    for i in range(nu.shape[0]):
        v = nu[i]
        if np.isnan(v):
            var_out[i, :] = np.nan
            es_out[i, :] = np.nan
            continue
        x = 0.0 if v == np.inf else 1.0 / max(v, 1.0 / x_max)
        h = x / x_max * last
        lo = min(int(h), last - 1)
        frac = h - lo
        for j in range(var_table.shape[1]):
            var_out[i, j] = var_table[lo, j] + frac * (var_table[lo + 1, j] - var_table[lo, j])
            es_out[i, j] = es_table[lo, j] + frac * (es_table[lo + 1, j] - es_table[lo, j])


def nu_from_kurtosis(excess_kurtosis: np.ndarray) -> np.ndarray:
    """Method-of-moments Student-t degrees of freedom: ``nu = 4 + 6 / K`` (``inf`` when ``K <= 0``).

    >>> nu_from_kurtosis(np.array([3.0, 0.0, -0.5, np.nan])).tolist()
    [6.0, inf, inf, nan]
    """
    k = np.asarray(excess_kurtosis, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isnan(k), np.nan, np.where(k > 0, 4.0 + 6.0 / k, np.inf))


class CornishFisher:
    """Cornish-Fisher VaR and ES factors from skewness and excess kurtosis (exact ES, see module)."""

    def __init__(self, levels: Sequence[float]) -> None:
        self.tail = np.array([1.0 - level for level in levels])
        self.c = stats.norm.ppf(self.tail)  # lower-tail z, Phi(c) = tail
        self.phi_c = stats.norm.pdf(self.c)

    def factors(self, skew: np.ndarray, kurt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(var factors, es factors)``, each ``(n, levels)``; NaN outside the domain of validity.

        >>> cf = CornishFisher((0.99, 0.975))
        >>> var, es = cf.factors(np.zeros(1), np.zeros(1))  # no skew, no excess kurtosis: normal
        >>> round(float(var[0, 0]), 6), bool(abs(es[0, 1] - normal_factors(0.975)[1]) < 1e-12)
        (2.326348, True)
        """
        n, k = skew.shape[0], self.tail.shape[0]
        var, es = np.empty((n, k)), np.empty((n, k))
        _cornish_fisher(
            np.asarray(skew, np.float64),
            np.asarray(kurt, np.float64),
            self.tail,
            self.c,
            self.phi_c,
            var,
            es,
        )
        return var, es


@numba.njit(cache=True, nogil=True)
def _cornish_fisher(skew, kurt, tail, c, phi_c, var_out, es_out):  # pragma: no cover - compiled
    for i in range(skew.shape[0]):
        s, k = skew[i], kurt[i]
        a0 = -s / 6.0
        a1 = 1.0 - k / 8.0 + 5.0 * s * s / 36.0
        a2 = s / 6.0
        a3 = k / 24.0 - s * s / 18.0
        # cf'(z) = a1 + 2 a2 z + 3 a3 z^2 must stay positive on [-5, 0]: check the ends
        # and, if inside, the vertex of the parabola.
        slope = min(a1, a1 - 10.0 * a2 + 75.0 * a3)
        if a3 > 0:
            vertex = -a2 / (3.0 * a3)
            if -5.0 < vertex < 0.0:
                slope = min(slope, a1 + 2.0 * a2 * vertex + 3.0 * a3 * vertex * vertex)
        for j in range(tail.shape[0]):
            if not slope > 0:  # also catches NaN moments
                var_out[i, j] = np.nan
                es_out[i, j] = np.nan
                continue
            z = c[j]
            var_out[i, j] = -(a0 + a1 * z + a2 * z * z + a3 * z**3)
            # integral over z < c of cf(z) phi(z) dz, where Phi(c) = tail
            p = phi_c[j]
            integral = a0 * tail[j] - a1 * p + a2 * (tail[j] - z * p) - a3 * (z * z + 2.0) * p
            es_out[i, j] = -integral / tail[j]
