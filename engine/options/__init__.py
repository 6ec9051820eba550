"""Options and instruments: reference data, European and American pricing, Greeks, implied
volatility and non-linear VaR of option books.

Pure and vectorised like the rest of the risk core: no Kafka, Redis or asyncio here.

Modules:

- :mod:`~engine.options.instruments`: the instrument schema (kind, underlying, currency,
  multiplier, calendar; strike, expiry, right and style for options).
"""

from __future__ import annotations
