"""Rates that turn amounts in an instrument's price currency into the portfolio's base currency.

For the Greeks and the options VaR of a portfolio with a base currency. The FX pairs are
the ``fx`` instruments of the reference data named ``<foreign><currency>`` (``EURUSD``
quoted in ``USD``), as for the portfolio book (:func:`engine.portfolio.positions.apply_listings`),
and their rates are their latest prices among ``spots``: the same live rates the book
converts values with. Routes are :func:`engine.core.fx.route`'s (direct, inverse, or
crossed through USD); a currency with no route, or whose pairs have no price yet, has
rate NaN: a *missing rate*, which the caller reports and never replaces with 1.

>>> from engine.options.instruments import Instrument
>>> refs = {"EURUSD": Instrument("EURUSD", "fx", currency="USD", calendar="24/5")}
>>> rates = BaseRates(refs, {"EURUSD": 1.25}, "EUR")
>>> rates("USD"), rates("EUR"), rates("JPY")
(0.8, 1.0, nan)
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from engine.core.fx import Route, pair_currencies, rate, route
from engine.options.instruments import Instrument


class BaseRates:
    """Units of ``base`` per unit of a currency at ``spots`` (a callable, memoised per currency).

    Parameters
    ----------
    instruments : mapping
        Reference data by instrument id; its ``fx`` instruments named like a pair are the pairs.
    spots : mapping
        Latest price of each symbol, the pairs' included.
    base : str
        The base currency.
    """

    def __init__(
        self, instruments: Mapping[str, Instrument], spots: Mapping[str, float], base: str
    ) -> None:
        self.base = base
        self.spots = spots
        self.pairs: dict[str, tuple[str, str]] = {}
        for key, inst in instruments.items():
            pair = pair_currencies(key, inst.currency) if inst.kind == "fx" else None
            if pair is not None:
                self.pairs[key] = pair
        self._memo: dict[str, float] = {}
        self._legs: dict[str, Route | None] = {}

    def legs(self, currency: str) -> Route | None:
        """The route of ``currency`` into the base when it has a rate now, else ``None``.

        The legs are what a scenario moving FX pairs moves the rate through
        (:mod:`engine.stress.option_pnl`); ``()`` for the base itself.
        """
        if currency not in self._legs:
            legs = route(currency, self.base, self.pairs)
            self._legs[currency] = (
                None if legs is None or not math.isfinite(self(currency)) else legs
            )
        return self._legs[currency]

    def __call__(self, currency: str) -> float:
        """The rate, or NaN when it is missing (no route, or a pair without a price)."""
        if currency not in self._memo:
            legs = route(currency, self.base, self.pairs)
            self._memo[currency] = math.nan if legs is None else rate(legs, self.spots)
        return self._memo[currency]
