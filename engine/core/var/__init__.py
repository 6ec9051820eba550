"""Value-at-Risk and Expected Shortfall of every method, from the book's components.

Sign convention everywhere: VaR and ES are *positive losses* in log-return units
(a loss of 2% is 0.02). A return ``r`` violates VaR at level ``a`` when ``-r > VaR_a``.
Importing this package registers the built-in distributions
(:mod:`engine.core.var.distributions`).
"""

from __future__ import annotations

from engine.core.var import distributions as distributions
from engine.core.var.methods import VaRMethods, VolOutput

__all__ = ["VaRMethods", "VolOutput"]
