"""The error hierarchy.

Every error riskstream raises on purpose derives from :class:`RiskstreamError`.
Errors caused by bad input are also :class:`ValueError`, so callers that only know
the standard library still catch them (faust does the same with its
``ValidationError``).
"""

from __future__ import annotations


class RiskstreamError(Exception):
    """Root of every error riskstream raises on purpose."""


class InputError(RiskstreamError, ValueError):
    """Bad input from a user: a file, a column, an option. The CLI exits with 2."""


class ConfigError(RiskstreamError, ValueError):
    """A setting or model parameter is outside its valid range."""


class ModelMismatchError(RiskstreamError, ValueError):
    """A model artifact does not match what the engine feeds it."""


class ServiceUnavailableError(RiskstreamError, ConnectionError):
    """A required service (Kafka, Redis, Prometheus) cannot be reached."""
