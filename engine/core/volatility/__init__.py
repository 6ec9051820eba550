"""Online volatility models: one-step-ahead standard deviation of log returns, per symbol."""

from __future__ import annotations

from engine.core.volatility.base import VolatilityModel
from engine.core.volatility.ewma import EWMAVolatility

__all__ = ["EWMAVolatility", "VolatilityModel"]
