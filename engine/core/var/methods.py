"""VaR and ES of every method, before and after each return, from the book's components.

Inputs per volatility model: the forecasts ``sigma`` before and after each return (and
``nu`` for GARCH-family Student-t), and the statistics of its standardised-residual
window; plus the return window for historical simulation. Outputs are arrays
``var[n, method, level]`` and ``es[n, method, level]`` at every level of the spec
(:attr:`~engine.core.spec.RiskSpec.levels`, ascending), positive losses in log-return
units. See :mod:`engine.core.spec` for the methods.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from engine.core.dists import CornishFisher, StudentTable, normal_factors, nu_from_kurtosis
from engine.core.spec import DISTRIBUTIONS, MIXED, RiskSpec
from engine.core.windows import WindowStats


@dataclass(slots=True)
class VolOutput:
    """One volatility model's forecasts for a segment (``nu`` NaN when not a GARCH-t)."""

    before: np.ndarray
    after: np.ndarray
    nu_before: np.ndarray
    nu_after: np.ndarray


def _mean_available(columns: np.ndarray) -> np.ndarray:
    """Mean over axis 1 of the finite entries (NaN where none is finite).

    >>> _mean_available(np.array([[[1.0], [3.0], [np.nan]], [[np.nan], [np.nan], [np.nan]]]))
    array([[ 2.],
           [nan]])
    """
    finite = np.isfinite(columns)
    count = finite.sum(axis=1)
    total = np.where(finite, columns, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


class VaRMethods:
    """Computes every method of a :class:`RiskSpec` (see the module docstring)."""

    def __init__(self, spec: RiskSpec) -> None:
        self.spec = spec
        self.levels = spec.levels
        factors = np.array([normal_factors(level) for level in self.levels])
        self.normal_var, self.normal_es = factors[:, 0], factors[:, 1]
        self.student = StudentTable(self.levels)
        self.cornish_fisher = CornishFisher(self.levels)
        self.methods = spec.methods

    def compute(
        self, vols: dict[str, VolOutput], residuals: dict[str, WindowStats], returns: WindowStats
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(var_before, var_after, es_before, es_after)``, each ``[n, method, level]``."""
        n = returns.q_before.shape[0]
        shape = (n, len(self.methods), len(self.levels))
        var_b, var_a, es_b, es_a = (
            np.empty(shape),
            np.empty(shape),
            np.empty(shape),
            np.empty(shape),
        )
        normal = (self.normal_var[None, :], self.normal_es[None, :])
        col = 0
        for vol in self.spec.vol_models:
            out, z = vols[vol], residuals[vol]
            for dist in DISTRIBUTIONS:
                for sigma, nu, q, tail, mom, var, es in (
                    (
                        out.before,
                        out.nu_before,
                        z.q_before,
                        z.tail_before,
                        z.moments_before,
                        var_b,
                        es_b,
                    ),
                    (
                        out.after,
                        out.nu_after,
                        z.q_after,
                        z.tail_after,
                        z.moments_after,
                        var_a,
                        es_a,
                    ),
                ):
                    if dist == "normal":
                        _scaled(var, es, col, sigma, *normal)
                    elif dist == "t":
                        dof = nu if vol in ("garch", "gjr") else nu_from_kurtosis(mom[:, 3])
                        _scaled(var, es, col, sigma, *self.student.factors(dof))
                    elif dist == "fhs":
                        _filtered(var, es, col, sigma, q, tail)
                    elif dist == "cf":
                        fv, fe = self.cornish_fisher.factors(mom[:, 2], mom[:, 3])
                        _scaled(var, es, col, sigma, fv, fe)
                    else:
                        first = col - DISTRIBUTIONS.index("mix")  # this model's first column
                        parts = np.array([first + DISTRIBUTIONS.index(d) for d in MIXED])
                        _mix(var, es, col, parts)
                col += 1
        ones = np.ones(n)
        _filtered(var_b, es_b, col, ones, returns.q_before, returns.tail_before)
        _filtered(var_a, es_a, col, ones, returns.q_after, returns.tail_after)
        return var_b, var_a, es_b, es_a


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
