"""Portfolio Greeks in currency: positions + instruments + market in, one snapshot per portfolio out.

The pure computation shared by the streaming portfolio service and ``riskstream options
greeks``: the same inputs give the same numbers, to the bit.

Valuation of a position of ``q`` contracts of an instrument with multiplier ``m``:

- an option: the pricer of :func:`engine.options.pricing.price_vanilla` (European in
  closed form, American by Barone-Adesi–Whaley) at the underlying's spot, the rate and
  dividend yield of its :class:`UnderlyingMarket`, and a vol: the option's own ``vol``
  (reference data) if it has one, else the underlying's. Time to expiry is Actual/365
  Fixed from the evaluation time to 00:00 UTC of the expiry date. An option whose
  underlying is a ``future`` is priced by Black-76 (the yield is the rate; ``rho`` holds
  the futures price fixed). An expired option (``t <= 0``) is left out and counted.
- a spot position (a symbol that is not an option: an equity/index/fx/crypto instrument,
  or a symbol absent from the reference data) in a priced symbol: delta 1 per unit, the
  rest 0, so a portfolio's delta includes its hedges. Futures positions are not valued
  here (counted in ``unpriced``).

Greeks in currency, with ``S`` the underlying's spot and per-unit Greeks in QuantLib's
units; without a base currency, each position's amounts are in its instrument's price
currency (add only same-currency books); with ``base_currency`` (see "Base currency"
below), every amount is in the base currency:

- ``value`` = sum q m price;
- ``delta`` = sum q m Delta S: currency per 1.00 relative move of the underlying (0.01 of
  it for a 1% move); ``delta_units`` = sum q m Delta, in units of the underlying;
- ``gamma`` = sum q m Gamma S^2: currency per (1.00 relative move)^2, so the P&L of a
  relative move ``x`` is about ``delta x + gamma x^2 / 2``;
- ``vega`` = sum q m vega per 1.00 of vol; ``theta`` per year; ``rho`` per 1.00 of rate.

Base currency (``base_currency`` set): each position's ``value``, ``delta``, ``gamma``,
``vega``, ``theta`` and ``rho`` are multiplied by ``X``, the live rate from its price
currency into the base (:class:`~engine.options.currency.BaseRates`: the FX pairs of the
reference data at their latest prices in ``spots``, the rates the portfolio book values
with); ``delta_units`` stays in units of the underlying. So delta is the base-currency
P&L of a 1.00 relative move of the underlying *at today's rate, FX held fixed* (a dollar
delta of 1,000 is a euro delta of 1,000 / EURUSD), and likewise for the others. The
currency risk of the options' value is not a Greek here (for an option on the pair that
converts, such as a EURUSD call in a euro book, the delta is the dollar delta converted,
without the conversion's own sensitivity to EURUSD). A position whose currency has no
rate (no route, or a pair without a price) is left out, counted in ``unpriced``, and its
currency listed in the snapshot's ``missing_fx``; no rate is ever assumed to be 1.

>>> from datetime import date
>>> from engine.options.instruments import Instrument, option_terms
>>> c = Instrument("C", "option", "SPX", multiplier=100,
...                option=option_terms(strike=100, expiry="2025-01-01", right="call", style="european"))
>>> snap = portfolio_greeks({"p": {"C": 2.0, "SPX": -100.0}}, {"C": c}, {}, {"SPX": 100.0},
...     {"SPX": UnderlyingMarket(0.0, 0.0, 0.2)}, ts_ms=1_704_067_200_000)[0]
>>> snap.underlyings, round(snap.total("delta_units"), 4)  # 200 x N(d1) - 100 shares
(('SPX',), 7.9764)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from engine.options.currency import BaseRates
from engine.options.instruments import Instrument, expiry_timestamp
from engine.options.pricing import price_vanilla

if TYPE_CHECKING:
    from engine.options.live_var import OptionsVar

GREEK_NAMES = ("value", "delta", "delta_units", "gamma", "vega", "theta", "rho")
_MS_PER_YEAR = 365 * 86_400_000  # Actual/365 Fixed


@dataclass(frozen=True, slots=True)
class UnderlyingMarket:
    """Market parameters of one underlying besides its spot (decimals, annualised).

    Attributes
    ----------
    rate : float
        Continuously compounded risk-free rate of the price currency.
    dividend_yield : float
        Continuously compounded yield (dividends; the foreign rate for FX).
    vol : float
        Implied vol of the underlying's options, used where an option has none of its own.
    """

    rate: float
    dividend_yield: float
    vol: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate) and math.isfinite(self.dividend_yield)):
            raise ValueError("rate and dividend_yield must be finite decimals")
        if not (math.isfinite(self.vol) and self.vol > 0.0):
            raise ValueError("vol must be a finite number > 0 (annualised decimal)")


@dataclass(frozen=True, slots=True)
class GreeksSnapshot:
    """One portfolio's Greeks in currency at ``ts_ms`` (see the module docstring for units).

    Totals are sums over ``underlyings`` of the per-underlying arrays (same order).
    ``options`` counts the option positions valued; ``expired`` those left out because
    expired (an expired option is worth nothing here: settle it by a position update); ``unpriced`` the positions that could not be valued (no spot, no vol, a
    future, or an American option outside Barone-Adesi–Whaley's domain).
    """

    ts_ms: int
    portfolio: str
    underlyings: tuple[str, ...]
    by_underlying: Mapping[str, np.ndarray]
    options: int
    expired: int
    unpriced: int
    var: OptionsVar | None = None
    """The options part's delta-gamma VaR and its gap to full revaluation, when computed
    (:mod:`engine.options.live_var`)."""
    currency: str | None = None
    """The base currency of every amount (None: each position's price currency)."""
    missing_fx: tuple[str, ...] = ()
    """Currencies without a rate into the base (their positions are left out), sorted."""

    def total(self, name: str) -> float:
        """The portfolio total of one of :data:`GREEK_NAMES`."""
        return float(self.by_underlying[name].sum())

    @property
    def delta(self) -> float:
        """Currency per 1.00 relative move of every underlying."""
        return self.total("delta")

    @property
    def vega(self) -> float:
        """Currency per 1.00 change of every vol."""
        return self.total("vega")


def portfolio_greeks(
    positions: Mapping[str, Mapping[str, float]],
    instruments: Mapping[str, Instrument],
    vols: Mapping[str, float],
    spots: Mapping[str, float],
    markets: Mapping[str, UnderlyingMarket],
    *,
    ts_ms: int,
    base_currency: str | None = None,
) -> list[GreeksSnapshot]:
    """Greeks of every portfolio that holds at least one option instrument.

    Parameters
    ----------
    positions : mapping
        ``{portfolio: {symbol: quantity}}``, quantities in contracts (negative is short).
    instruments : mapping
        Reference data by instrument id.
    vols : mapping
        Options' own implied vols by instrument id (annualised decimals).
    spots : mapping
        Latest price of each symbol (an option's underlying, a spot position's symbol).
    markets : mapping
        :class:`UnderlyingMarket` by underlying.
    ts_ms : int
        Evaluation time, epoch milliseconds.
    base_currency : str, optional
        Convert every amount into this currency through the FX pairs of ``instruments``
        at their prices in ``spots`` (see the module docstring).

    Returns
    -------
    list of GreeksSnapshot
        Sorted by portfolio; within a portfolio, underlyings sorted by name. Positions are
        visited in sorted symbol order, so the sums do not depend on insertion order.
    """
    out = []
    rates = None if base_currency is None else BaseRates(instruments, spots, base_currency)
    for portfolio in sorted(positions):
        held = positions[portfolio]
        options = [
            s for s in sorted(held) if s in instruments and instruments[s].is_option and held[s]
        ]
        if not options:
            continue
        out.append(_one(portfolio, held, options, instruments, vols, spots, markets, ts_ms, rates))
    return out


def _one(
    portfolio: str,
    held: Mapping[str, float],
    options: list[str],
    instruments: Mapping[str, Instrument],
    vols: Mapping[str, float],
    spots: Mapping[str, float],
    markets: Mapping[str, UnderlyingMarket],
    ts_ms: int,
    rates: BaseRates | None = None,
) -> GreeksSnapshot:
    # one row per valued position: (underlying, value, delta, delta_units, gamma, vega, theta, rho)
    rows: list[tuple[str, float, float, float, float, float, float, float]] = []
    # (underlying, q x m, spot, strike, t, rate, yield, vol, call, american, on a future)
    priced: list[tuple[str, float, float, float, float, float, float, float, bool, bool, bool]] = []
    fx: list[float] = []  # per priced option: its price currency's rate into the base
    missing: set[str] = set()
    expired = unpriced = 0

    def to_base(currency: str) -> float | None:
        """The rate of ``currency`` (1 without a base), or None when it is missing."""
        if rates is None:
            return 1.0
        x = rates(currency)
        if math.isfinite(x) and x > 0.0:
            return x
        missing.add(currency)
        return None

    for symbol in options:
        inst = instruments[symbol]
        assert inst.option is not None
        u = inst.underlying
        spot, market = spots.get(u), markets.get(u)
        vol = vols.get(symbol, market.vol if market is not None else None)
        t = (expiry_ms(inst) - ts_ms) / _MS_PER_YEAR
        if t <= 0.0:
            expired += 1
            continue
        if spot is None or not math.isfinite(spot) or market is None or vol is None:
            unpriced += 1
            continue
        fx_option = to_base(inst.currency)
        if fx_option is None:
            unpriced += 1
            continue
        fx.append(fx_option)
        on_future = u in instruments and instruments[u].kind == "future"
        priced.append(
            (
                u,
                held[symbol] * inst.multiplier,
                spot,
                inst.option.strike,
                t,
                market.rate,
                market.rate if on_future else market.dividend_yield,
                vol,
                inst.option.is_call,
                inst.option.style == "american",
                on_future,
            )
        )
    valued = 0
    if priced:
        cols = list(zip(*priced, strict=True))
        qm, s, xs = np.array(cols[1]), np.array(cols[2]), np.array(fx)
        g = price_vanilla(s, cols[3], cols[4], cols[5], cols[6], cols[7], cols[8], cols[9])
        rho = np.where(np.array(cols[10]), g.rho + g.dividend_rho, g.rho)
        ok = np.isfinite(g.price)
        unpriced += int((~ok).sum())
        valued = int(ok.sum())
        for k in np.flatnonzero(ok):
            rows.append(
                (
                    str(cols[0][k]),
                    float(qm[k] * g.price[k] * xs[k]),
                    float(qm[k] * g.delta[k] * s[k] * xs[k]),
                    float(qm[k] * g.delta[k]),
                    float(qm[k] * g.gamma[k] * s[k] * s[k] * xs[k]),
                    float(qm[k] * g.vega[k] * xs[k]),
                    float(qm[k] * g.theta[k] * xs[k]),
                    float(qm[k] * rho[k] * xs[k]),
                )
            )
    for symbol in sorted(held):
        ref = instruments.get(symbol)
        if (ref is not None and ref.kind in ("option", "future")) or not held[symbol]:
            if ref is not None and ref.kind == "future" and held[symbol]:
                unpriced += 1
            continue
        spot = spots.get(symbol)
        if spot is None or not math.isfinite(spot):
            unpriced += 1
            continue
        m = 1.0 if ref is None else ref.multiplier
        # a symbol without reference data is quoted in the base currency, as in the book
        fx_spot = 1.0 if ref is None else to_base(ref.currency)
        if fx_spot is None:
            unpriced += 1
            continue
        units = held[symbol] * m
        worth = units * spot * fx_spot
        rows.append((symbol, worth, worth, units, 0.0, 0.0, 0.0, 0.0))
    names = tuple(sorted({r[0] for r in rows}))
    index = {u: i for i, u in enumerate(names)}
    sums = np.zeros((len(GREEK_NAMES), len(names)))
    for r in rows:
        sums[:, index[r[0]]] += np.array(r[1:], dtype=np.float64)
    return GreeksSnapshot(
        ts_ms,
        portfolio,
        names,
        {name: sums[i] for i, name in enumerate(GREEK_NAMES)},
        valued,
        expired,
        unpriced,
        currency=None if rates is None else rates.base,
        missing_fx=tuple(sorted(missing)),
    )


def expiry_ms(inst: Instrument) -> int:
    """Epoch milliseconds of an option's or future's expiry: 00:00 UTC of its expiry date."""
    assert inst.expiry is not None
    return int(expiry_timestamp(inst.expiry).timestamp() * 1000)
