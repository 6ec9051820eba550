"""Backtests of VaR forecasts, computed as the stream goes."""

from __future__ import annotations

from engine.core.backtest.breaches import BreachCounters

__all__ = ["BreachCounters"]
