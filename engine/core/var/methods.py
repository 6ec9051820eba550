"""VaR and ES of every method, before and after each return, from the book's components.

Inputs per volatility model: the forecasts ``sigma`` before and after each return (and
``nu`` for models that estimate a Student-t), and the statistics of its
standardised-residual window; plus the return window for historical simulation. Outputs
are arrays ``var[n, method, level]`` and ``es[n, method, level]`` at every level of the
spec (:attr:`~engine.core.spec.RiskSpec.levels`, ascending), positive losses in
log-return units. A method is a volatility model (:mod:`engine.core.volatility.registry`)
composed with a distribution (:mod:`engine.core.var.registry`); see
:mod:`engine.core.spec` for the built-in ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from engine.core.var.average import AVERAGE, fill_average
from engine.core.var.distributions import _filtered
from engine.core.var.registry import Forecast, distribution, distribution_names
from engine.core.volatility.base import VolOutput
from engine.core.volatility.registry import vol_model
from engine.core.windows import WindowStats

if TYPE_CHECKING:  # the spec lists the registries' names; this module only reads a spec
    from engine.core.spec import RiskSpec

__all__ = ["VaRMethods", "VolOutput"]


class VaRMethods:
    """Computes every method of a :class:`RiskSpec`: each volatility model of the spec with
    each registered distribution (in registration order), then ``hs``, then ``avg`` when
    the spec has it (:mod:`engine.core.var.average`); the book fills ``champion``."""

    def __init__(self, spec: RiskSpec) -> None:
        self.spec = spec
        self.levels = spec.levels
        names = distribution_names()
        self.distributions = [distribution(name)(self.levels) for name in names]
        self.offsets = {name: i for i, name in enumerate(names)}
        self.model_nu = {vol: vol_model(vol).estimates_nu for vol in spec.vol_models}
        self.methods = spec.methods
        self.average: tuple[int, list[int]] | None = None
        if AVERAGE in self.methods:
            parts = [self.methods.index(m) for m in spec.average_methods]
            self.average = (self.methods.index(AVERAGE), parts)

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
            out, z, model_nu = vols[vol], residuals[vol], self.model_nu[vol]
            before = Forecast(
                out.before, out.nu_before, z.q_before, z.tail_before, z.moments_before, model_nu
            )
            after = Forecast(
                out.after, out.nu_after, z.q_after, z.tail_after, z.moments_after, model_nu
            )
            columns = {name: col + i for name, i in self.offsets.items()}
            for dist in self.distributions:
                for forecast, var, es in ((before, var_b, es_b), (after, var_a, es_a)):
                    dist.fill(var, es, col, forecast, columns)
                col += 1
        ones = np.ones(n)
        _filtered(var_b, es_b, col, ones, returns.q_before, returns.tail_before)
        _filtered(var_a, es_a, col, ones, returns.q_after, returns.tail_after)
        if self.average is not None:
            fill_average((var_b, var_a, es_b, es_a), *self.average)
        return var_b, var_a, es_b, es_a
