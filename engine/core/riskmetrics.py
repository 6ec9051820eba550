"""The RiskMetrics (J.P. Morgan, 1996) constants every EWMA default in the engine refers to.

Kept apart from the models (no imports) so that settings and the command line can name
them without loading the compiled core.
"""

from __future__ import annotations

from typing import Final

DEFAULT_LAMBDA: Final = 0.94
"""The daily decay :math:`\\lambda` of the EWMA variance and covariance: the default of the
volatility model, ``settings.risk.ewma_lambda``, the ``--lambda`` options, the portfolio
covariance and the anomaly features."""

DEFAULT_WARMUP: Final = 20
"""Returns averaged as a plain mean of squares before the EWMA recursion starts."""
