"""VaR and ES of every method, before and after each return, from the book's components.

Inputs per volatility model: the forecasts ``sigma`` before and after each return (and
``nu`` for GARCH-family Student-t), and the statistics of its standardised-residual
window; plus the return window for historical simulation. Outputs are arrays
``var[n, method, level]`` and ``es[n, method]``, positive losses in log-return units.
See :mod:`engine.core.spec` for the methods.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.core.dists import CornishFisher, StudentTable, normal_factors, nu_from_kurtosis
from engine.core.spec import DISTRIBUTIONS, RiskSpec
from engine.core.windows import WindowStats


@dataclass(slots=True)
class VolOutput:
    """One volatility model's forecasts for a segment (``nu`` NaN when not a GARCH-t)."""

    before: np.ndarray
    after: np.ndarray
    nu_before: np.ndarray
    nu_after: np.ndarray


class VaRMethods:
    """Computes every method of a :class:`RiskSpec` (see the module docstring)."""

    def __init__(self, spec: RiskSpec) -> None:
        self.spec = spec
        self.levels = spec.var_levels
        self.normal_var = np.array([normal_factors(level)[0] for level in self.levels])
        self.normal_es = normal_factors(spec.es_level)[1]
        self.student = StudentTable(self.levels, spec.es_level)
        self.cornish_fisher = CornishFisher(self.levels, spec.es_level)
        self.methods = spec.methods

    def compute(
        self, vols: dict[str, VolOutput], residuals: dict[str, WindowStats], returns: WindowStats
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(var_before, var_after, es_before, es_after)`` for a segment of ``n`` returns."""
        n = returns.q_before.shape[0]
        m, levels = len(self.methods), len(self.levels)
        var_b, var_a = np.empty((n, m, levels)), np.empty((n, m, levels))
        es_b, es_a = np.empty((n, m)), np.empty((n, m))
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
                        var[:, col] = s * self.normal_var
                        es[:, col] = sigma * self.normal_es
                    elif dist == "t":
                        dof = nu if vol in ("garch", "gjr") else nu_from_kurtosis(mom[:, 3])
                        fv, fe = self.student.factors(dof)
                        var[:, col] = s * fv
                        es[:, col] = sigma * fe
                    elif dist == "fhs":
                        var[:, col] = -s * q
                        es[:, col] = -sigma * tail
                    else:
                        fv, fe = self.cornish_fisher.factors(mom[:, 2], mom[:, 3])
                        var[:, col] = s * fv
                        es[:, col] = sigma * fe
                col += 1
        var_b[:, col], var_a[:, col] = -returns.q_before, -returns.q_after
        es_b[:, col], es_a[:, col] = -returns.tail_before, -returns.tail_after
        return var_b, var_a, es_b, es_a
