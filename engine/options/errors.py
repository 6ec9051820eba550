"""Errors of the options subsystem.

Bad reference or market data is an :class:`~engine.errors.InputError` (so also a
``ValueError``, and the CLI exits with status 2); a model asked outside the domain where
it is defined raises :class:`ModelDomainError`.
"""

from __future__ import annotations

from engine.errors import InputError, RiskstreamError


class OptionsError(RiskstreamError):
    """Root of the errors the options subsystem raises on purpose."""


class InstrumentError(OptionsError, InputError):
    """An instrument record breaks the instrument schema; the message names the field."""


class MarketDataError(OptionsError, InputError):
    """A market data row (spot, rate, dividend yield, volatility) is unusable."""


class ModelDomainError(OptionsError, ValueError):
    """A pricing model was asked for inputs outside its domain (e.g. BAW with a negative rate)."""
