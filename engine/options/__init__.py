"""Options and instruments: reference data, European and American pricing, Greeks, implied
volatility and non-linear VaR of option books.

Pure and vectorised like the rest of the risk core: no Kafka, Redis or asyncio here.

Modules:

- :mod:`~engine.options.instruments`: the instrument schema (kind, underlying, currency,
  multiplier, calendar; strike, expiry, right and style for options).
- :mod:`~engine.options.black`: European prices and Greeks in closed form
  (Black–Scholes–Merton, Black-76, Garman–Kohlhagen), QuantLib's conventions.
- :mod:`~engine.options.american`: American options by Barone-Adesi–Whaley, with its
  measured accuracy.
- :mod:`~engine.options.implied`: implied volatility (Jäckel's "Let's be rational").
- :mod:`~engine.options.pricing`: European and American elements in one call.
- :mod:`~engine.options.tables`: the files of ``riskstream options price``.
- :mod:`~engine.options.book`: option books, their factor sensitivities and full revaluation.
- :mod:`~engine.options.var`: delta-normal, delta-gamma (Cornish–Fisher, Monte Carlo) and
  full-revaluation VaR, with the gap of each approximation.
- :mod:`~engine.options.scenarios`: real S&P 500 / VIX scenarios and generated books.
"""

from __future__ import annotations
