"""Value-at-Risk and Expected Shortfall from volatility forecasts.

Sign convention everywhere: VaR and ES are *positive losses* in log-return units
(a loss of 2% is 0.02). A return ``r`` violates VaR at level ``a`` when ``-r > VaR_a``.
"""

from __future__ import annotations

from engine.core.var.parametric import ParametricNormal

__all__ = ["ParametricNormal"]
