"""Parametric normal VaR and ES (zero mean, as RiskMetrics).

With :math:`z_a = \\Phi^{-1}(a)`:

* :math:`\\mathrm{VaR}_a = z_a\\,\\sigma`
* :math:`\\mathrm{ES}_a = \\sigma\\,\\varphi(z_a) / (1 - a)`
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import norm


class ParametricNormal:
    """Normal VaR at several levels and ES at one level, from a volatility forecast.

    >>> method = ParametricNormal(var_levels=(0.95, 0.99), es_level=0.975)
    >>> {k: round(float(v[0]), 4) for k, v in method.var(np.array([0.01])).items()}
    {0.95: 0.0164, 0.99: 0.0233}
    >>> round(float(method.es(np.array([0.01]))[0]), 4)
    0.0234
    """

    name = "normal"

    def __init__(self, var_levels: Sequence[float] = (0.95, 0.99), es_level: float = 0.975) -> None:
        for level in (*var_levels, es_level):
            if not 0.5 < level < 1.0:
                raise ValueError(f"confidence level {level} must be strictly between 0.5 and 1")
        self.var_levels = tuple(sorted(var_levels))
        self.es_level = float(es_level)
        self._z = {level: float(norm.ppf(level)) for level in self.var_levels}
        z_es = norm.ppf(self.es_level)
        self._es_factor = float(norm.pdf(z_es) / (1.0 - self.es_level))

    def var(self, sigma: np.ndarray) -> dict[float, np.ndarray]:
        """VaR per level for each volatility forecast (NaN stays NaN)."""
        return {level: z * sigma for level, z in self._z.items()}

    def es(self, sigma: np.ndarray) -> np.ndarray:
        """Expected shortfall at ``es_level`` for each volatility forecast."""
        return self._es_factor * sigma
