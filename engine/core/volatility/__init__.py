"""Online volatility models: one-step-ahead standard deviation of log returns, per symbol.

Importing this package registers the built-in models (:mod:`engine.core.volatility.registry`)
in the order their names are listed (CLI choices, error messages, the spec's methods):
EWMA, GARCH and GJR, HAR-RV, the deep models, and their combination.
"""

from __future__ import annotations

# The import order is the registration order.
# isort: off
from engine.core.volatility.base import VolatilityModel
from engine.core.volatility.ewma import EWMAVolatility
from engine.core.volatility.garch import GARCHVolatility
from engine.core.volatility.har import HARVolatility
from engine.core.volatility.deep import DeepVolatility
from engine.core.volatility.combination import CombinationVolatility
# isort: on

__all__ = [
    "CombinationVolatility",
    "DeepVolatility",
    "EWMAVolatility",
    "GARCHVolatility",
    "HARVolatility",
    "VolatilityModel",
]
