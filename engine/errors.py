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


def cell_text(value: object) -> str:
    """A CSV cell as a reader wrote it, for error messages: text quoted, numbers plain.

    NumPy scalars print as the Python numbers they hold, never as reprs such as
    ``np.float64(-5.0)``; a missing cell (``None`` or NaN) reads ``an empty cell``.

    >>> import numpy as np
    >>> cell_text(np.float64(-5.0)), cell_text(np.int64(3)), cell_text("abc"), cell_text(None)
    ('-5.0', '3', "'abc'", 'an empty cell')
    """
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        value = item()
    if value is None or (isinstance(value, float) and value != value):
        return "an empty cell"
    return repr(value) if isinstance(value, str) else str(value)
