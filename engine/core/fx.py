"""Currency conversion through FX pairs that are ordinary price series; pure, no I/O.

An FX pair symbol such as ``EURUSD`` is priced like any other symbol: its price is the
amount of the *quote* currency (USD) that buys one unit of the *foreign* currency (EUR).
A price quoted in currency ``C`` is worth ``price * rate(C -> base)`` in the portfolio's
base currency, where the rate is a product of pair prices raised to +1 or -1:

- ``C == base``: no pair, rate 1 (the only case where the rate is 1 by definition);
- a pair ``C/base`` (``EURUSD`` for a USD base): its price, exponent +1;
- the inverse pair ``base/C`` (``USDEUR``): its price, exponent -1;
- otherwise a cross through USD: ``C -> USD`` then ``USD -> base``, each leg found as
  above (so ``GBPUSD`` and ``USDJPY`` convert GBP into JPY as ``GBPUSD^1 * USDJPY^1``).

A :data:`Route` is that tuple of ``(pair symbol, exponent)`` legs; :func:`route` returns
``None`` when no pair (or pair of pairs) connects the currencies: the caller must report
the currency as missing, never fall back to a rate of 1.

Because the rate is a product of powers of prices, the log return of the rate is the same
linear combination of the pairs' log returns, ``sum_k e_k r_k``: a holding quoted in ``C``
with local log return ``r`` has base-currency log return ``r + sum_k e_k r_k`` (exact
for log returns). That is what makes FX a risk factor of the portfolio
(:class:`~engine.core.portfolio.PortfolioBook`).

>>> pairs = {"EURUSD": ("EUR", "USD"), "USDJPY": ("USD", "JPY")}
>>> route("EUR", "USD", pairs), route("USD", "EUR", pairs)
((('EURUSD', 1.0),), (('EURUSD', -1.0),))
>>> route("EUR", "JPY", pairs)
(('EURUSD', 1.0), ('USDJPY', 1.0))
>>> route("CHF", "USD", pairs) is None, route("USD", "USD", pairs)
(True, ())
>>> rate((("EURUSD", 1.0), ("USDJPY", 1.0)), {"EURUSD": 1.1, "USDJPY": 150.0})
165.0
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

#: ``(pair symbol, exponent)`` legs whose product of ``price ** exponent`` is the rate.
Route = tuple[tuple[str, float], ...]

#: The currency crosses go through when no direct or inverse pair exists.
PIVOT = "USD"

_PAIR = re.compile(r"([A-Z][A-Z0-9]{2})([A-Z][A-Z0-9]{2})")


def pair_currencies(symbol: str, quote: str) -> tuple[str, str] | None:
    """``(foreign, quote)`` of an FX pair symbol ``<foreign><quote>`` quoted in ``quote``.

    ``None`` when the symbol is not six characters ending in its quote currency (the
    reference data must then not call it an FX pair).

    >>> pair_currencies("EURUSD", "USD"), pair_currencies("EURUSD", "JPY")
    (('EUR', 'USD'), None)
    """
    match = _PAIR.fullmatch(symbol)
    if match is None or match.group(2) != quote or match.group(1) == quote:
        return None
    return match.group(1), quote


def _leg(src: str, dst: str, pairs: Mapping[str, tuple[str, str]]) -> tuple[str, float] | None:
    """The pair converting ``src`` into ``dst`` directly (+1) or as its inverse (-1).

    With several candidates, the first symbol in sorted order wins, so the choice does
    not depend on the order the reference data arrived in.
    """
    direct = sorted(s for s, (f, q) in pairs.items() if f == src and q == dst)
    if direct:
        return direct[0], 1.0
    inverse = sorted(s for s, (f, q) in pairs.items() if f == dst and q == src)
    if inverse:
        return inverse[0], -1.0
    return None


def route(currency: str, base: str, pairs: Mapping[str, tuple[str, str]]) -> Route | None:
    """The legs converting ``currency`` into ``base`` (see the module docstring), or None."""
    if currency == base:
        return ()
    leg = _leg(currency, base, pairs)
    if leg is not None:
        return (leg,)
    if PIVOT in (currency, base):
        return None
    first, second = _leg(currency, PIVOT, pairs), _leg(PIVOT, base, pairs)
    if first is None or second is None:
        return None
    return first, second


def rate(legs: Route, prices: Mapping[str, float]) -> float:
    """Units of base currency per unit of the route's currency at ``prices``.

    NaN when a leg has no finite positive price (a missing rate, to be reported).
    """
    value = 1.0
    for symbol, exponent in legs:
        price = prices.get(symbol, math.nan)
        if not (math.isfinite(price) and price > 0.0):
            return math.nan
        value *= price**exponent
    return value
