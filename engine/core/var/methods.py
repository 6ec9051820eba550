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
                    s = sigma[:, None]
                    if dist == "normal":
                        var[:, col], es[:, col] = s * self.normal_var, s * self.normal_es
                    elif dist == "t":
                        dof = nu if vol in ("garch", "gjr") else nu_from_kurtosis(mom[:, 3])
                        fv, fe = self.student.factors(dof)
                        var[:, col], es[:, col] = s * fv, s * fe
                    elif dist == "fhs":  # window columns run from the highest level down
                        var[:, col], es[:, col] = -s * q[:, ::-1], -s * tail[:, ::-1]
                    elif dist == "cf":
                        fv, fe = self.cornish_fisher.factors(mom[:, 2], mom[:, 3])
                        var[:, col], es[:, col] = s * fv, s * fe
                    else:
                        first = col - DISTRIBUTIONS.index("mix")  # this model's first column
                        parts = [first + DISTRIBUTIONS.index(d) for d in MIXED]
                        var[:, col] = _mean_available(var[:, parts])
                        es[:, col] = _mean_available(es[:, parts])
                col += 1
        var_b[:, col], var_a[:, col] = -returns.q_before[:, ::-1], -returns.q_after[:, ::-1]
        es_b[:, col], es_a[:, col] = -returns.tail_before[:, ::-1], -returns.tail_after[:, ::-1]
        return var_b, var_a, es_b, es_a
