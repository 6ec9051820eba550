"""Option positions under stress scenarios: every option repriced in every scenario cell.

A scenario cell moves each market symbol's price by a relative ``spot`` move and its
implied volatility by an absolute ``vol`` move (:class:`~engine.stress.moves.ScenarioMoves`;
only spot x vol grids move vols, historical and hypothetical scenarios leave them at 0).
An option position of ``q`` contracts with multiplier ``m`` on underlying ``u`` is worth,
after the shock of cell ``c``::

    q m V(S_u (1 + spot[c, u]), K, T, r, y, max(sigma + vol[c, u], MIN_VOL))

with ``V`` the pricer of :func:`engine.options.pricing.price_vanilla` (European in closed
form, American by Barone-Adesi–Whaley; Black-76 on a future, as
:mod:`engine.options.greeks` does), so its stress P&L is that value minus the same
formula at the unshocked inputs: a full revaluation, not a delta or delta-gamma
approximation. The shock is instantaneous (time to expiry ``T`` is unchanged; rates,
yields and the strike do not move). ``S_u`` is the market's price of ``u`` (the last
close, the same price the spot positions are valued at), ``sigma`` the option's own vol
from the reference data or else its underlying's (:class:`UnderlyingMarket`), and
``MIN_VOL`` keeps a grid's vol-down cell from asking for a zero or negative vol.

Base currency (:attr:`OptionHoldings.base_currency` set, the portfolio book's base): the
option's value in its price currency is converted at the live rate ``X`` of that
currency into the base (:class:`~engine.options.currency.BaseRates` at the market's
prices, the latest closes of the FX pairs: direct, inverse, or crossed through USD, as
for the Greeks), and a scenario that moves the pairs of that route moves the rate with
them: with legs ``(pair_k, e_k)``, ``X[c] = X prod_k (1 + spot[c, pair_k]) ** e_k``. The
base-currency P&L is therefore a full revaluation of price *and* rate::

    q m (V[c] X[c] - V X)

(the cross term of a joint move of the underlying and the rate included). A position
whose currency has no rate (no route, or a pair without a price) is never converted at
1: it is left out, counted in ``unpriced``, and its currency listed in
:attr:`OptionStressPnl.fx_missing`.

An option position is left out of the P&L and counted in :attr:`OptionStressPnl.expired`
when ``T <= 0``, and in :attr:`OptionStressPnl.unpriced` when it cannot be valued: its
underlying has no price in the market or no :class:`UnderlyingMarket`, its currency no
rate into the base, or Barone-Adesi–Whaley is undefined at its inputs (an American
option at a negative rate).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from engine.core.fx import Route
from engine.options.currency import BaseRates
from engine.options.greeks import UnderlyingMarket, expiry_ms
from engine.options.instruments import Instrument
from engine.options.pricing import price_vanilla
from engine.stress.moves import ScenarioMoves

MIN_VOL = 0.01
"""The floor of a shocked implied vol (annualised decimal: one vol point)."""
_MS_PER_YEAR = 365 * 86_400_000  # Actual/365 Fixed, as engine.options.greeks


@dataclass(frozen=True, slots=True)
class OptionHoldings:
    """What the stress needs to revalue options: positions and reference data at ``ts_ms``.

    ``positions`` is ``{portfolio: {symbol: contracts}}`` (symbols that are not option
    instruments are ignored here: they are spot positions); ``vols`` the options' own
    implied vols; ``markets`` rate, yield and vol per underlying; ``ts_ms`` the valuation
    time (epoch milliseconds) from which time to expiry is measured: the time of the
    market's prices, i.e. of the latest grid close (its newest tick;
    :attr:`~engine.core.portfolio.PortfolioBook.last_close_ms`), which is the price file's
    last timestamp offline. ``base_currency``, when set, is the currency every P&L is
    converted into (see the module docstring); ``None`` leaves each option's P&L in its
    own price currency.
    """

    positions: Mapping[str, Mapping[str, float]]
    instruments: Mapping[str, Instrument]
    vols: Mapping[str, float]
    markets: Mapping[str, UnderlyingMarket]
    ts_ms: int
    base_currency: str | None = None

    def option_symbols(self, portfolio: str) -> list[str]:
        """The option instruments ``portfolio`` holds (non-zero quantity), sorted."""
        held = self.positions.get(portfolio, {})
        return sorted(
            s
            for s, q in held.items()
            if q and s in self.instruments and self.instruments[s].is_option
        )

    def portfolios(self) -> list[str]:
        """The portfolios holding at least one option, sorted."""
        return sorted(p for p in self.positions if self.option_symbols(p))


@dataclass(frozen=True, slots=True)
class OptionStressPnl:
    """Full-revaluation P&L (portfolios x cells, currency, negative = loss) of the options.

    Rows follow ``portfolios``; ``options``, ``expired`` and ``unpriced`` count, per
    portfolio, the option positions valued, left out as expired and left out as unpriced.
    ``base`` and ``shocked`` are, per valued position (rows of ``positions``, a tuple of
    ``(portfolio, symbol)``), the unit price in the option's price currency before and in
    each cell; ``fx`` and ``fx_shocked`` the rate of that currency into the base before and
    in each cell (exactly 1 without a base currency): the detail behind the P&L, which is
    ``units x (shocked x fx_shocked - base x fx)``. ``fx_missing`` lists, per portfolio, the
    currencies of the options left out for want of a rate (sorted).
    """

    portfolios: tuple[str, ...]
    pnl: np.ndarray
    options: np.ndarray
    expired: np.ndarray
    unpriced: np.ndarray
    positions: tuple[tuple[str, str], ...]
    units: np.ndarray
    base: np.ndarray
    shocked: np.ndarray
    fx: np.ndarray
    fx_shocked: np.ndarray
    fx_missing: tuple[tuple[str, ...], ...]


def option_stress_pnl(
    holdings: OptionHoldings,
    portfolios: Sequence[str],
    symbols: Sequence[str],
    prices: np.ndarray,
    moves: ScenarioMoves,
) -> OptionStressPnl:
    """Revalue every option position of ``portfolios`` in every cell of ``moves``.

    ``symbols`` and ``prices`` are the market's (the columns of ``moves``); an option's
    underlying is found among them, and so are the FX pairs converting into
    ``holdings.base_currency``.
    """
    slots = {s: i for i, s in enumerate(symbols)}
    n_cells = len(moves.names)
    rows = {p: k for k, p in enumerate(portfolios)}
    counts = np.zeros((3, len(portfolios)), dtype=np.int64)  # options, expired, unpriced
    missing: list[set[str]] = [set() for _ in portfolios]
    rates = None
    if holdings.base_currency is not None:
        spots = {s: float(prices[i]) for i, s in enumerate(symbols)}
        rates = BaseRates(holdings.instruments, spots, holdings.base_currency)
    keys: list[tuple[str, str]] = []
    # (q x m, market slot of the underlying, strike, t, rate, carry yield, vol, call, american)
    columns: list[tuple[float, int, float, float, float, float, float, bool, bool]] = []
    routes: list[Route] = []
    for portfolio in portfolios:
        for symbol in holdings.option_symbols(portfolio):
            inst = holdings.instruments[symbol]
            assert inst.option is not None
            u = inst.underlying
            years = (expiry_ms(inst) - holdings.ts_ms) / _MS_PER_YEAR
            if years <= 0.0:
                counts[1, rows[portfolio]] += 1
                continue
            market = holdings.markets.get(u)
            sigma = holdings.vols.get(symbol, market.vol if market is not None else None)
            slot = slots.get(u)
            if market is None or sigma is None or slot is None or not math.isfinite(prices[slot]):
                counts[2, rows[portfolio]] += 1
                continue
            legs: Route = ()
            if rates is not None:
                found = rates.legs(inst.currency)
                if found is None or not all(leg in slots for leg, _ in found):
                    counts[2, rows[portfolio]] += 1
                    missing[rows[portfolio]].add(inst.currency)
                    continue
                legs = found
            on_future = u in holdings.instruments and holdings.instruments[u].kind == "future"
            keys.append((portfolio, symbol))
            routes.append(legs)
            columns.append(
                (
                    holdings.positions[portfolio][symbol] * inst.multiplier,
                    slot,
                    inst.option.strike,
                    years,
                    market.rate,
                    market.rate if on_future else market.dividend_yield,
                    sigma,
                    inst.option.is_call,
                    inst.option.style == "american",
                )
            )
    n = len(columns)
    units = np.array([c[0] for c in columns], dtype=np.float64)
    slot_of = np.array([c[1] for c in columns], dtype=np.int64)
    strike, t, rate, carry, vol = (
        np.array([c[i] for c in columns], dtype=np.float64) for i in (2, 3, 4, 5, 6)
    )
    call = np.array([c[7] for c in columns], dtype=bool)
    american = np.array([c[8] for c in columns], dtype=bool)
    spot = np.asarray(prices, dtype=np.float64)[slot_of]
    base = price_vanilla(spot, strike, t, rate, carry, vol, call, american).price
    # cells x positions: the shocked spot and vol of each option's underlying in each cell
    shocked_spot = spot[None, :] * (1.0 + moves.spot[:, slot_of])
    shocked_vol = np.maximum(vol[None, :] + moves.vol[:, slot_of], MIN_VOL)
    shocked = price_vanilla(
        shocked_spot, strike, t, rate, carry, shocked_vol, call, american
    ).price.reshape(n_cells, n)
    fx, fx_shocked = _rates(routes, slots, prices, moves)
    ok = np.isfinite(base) & np.isfinite(shocked).all(axis=0)
    pnl = np.zeros((len(portfolios), n_cells))
    for k in range(n):
        row = rows[keys[k][0]]
        if ok[k]:
            pnl[row] += units[k] * (shocked[:, k] * fx_shocked[:, k] - base[k] * fx[k])
            counts[0, row] += 1
        else:
            counts[2, row] += 1
    keep = np.flatnonzero(ok)
    return OptionStressPnl(
        tuple(portfolios),
        pnl,
        counts[0],
        counts[1],
        counts[2],
        tuple(keys[k] for k in keep),
        units[keep],
        base[keep],
        shocked[:, keep],
        fx[keep],
        fx_shocked[:, keep],
        tuple(tuple(sorted(m)) for m in missing),
    )


def _rates(
    routes: Sequence[Route], slots: Mapping[str, int], prices: np.ndarray, moves: ScenarioMoves
) -> tuple[np.ndarray, np.ndarray]:
    """Each position's rate into the base before (positions,) and in each cell (cells x
    positions): the product of its legs' prices to their exponents, the shocked legs'
    prices ``p (1 + spot move)``. An empty route (no base currency, or the base itself)
    is exactly 1 in every cell."""
    n_cells = len(moves.names)
    fx = np.ones(len(routes))
    fx_shocked = np.ones((n_cells, len(routes)))
    by_route: dict[Route, list[int]] = {}
    for k, legs in enumerate(routes):
        by_route.setdefault(legs, []).append(k)
    for legs, positions in by_route.items():  # a few currencies: one product per route
        rate, shocked = 1.0, np.ones(n_cells)
        for pair, exponent in legs:
            i = slots[pair]
            rate *= float(prices[i]) ** exponent
            shocked *= (float(prices[i]) * (1.0 + moves.spot[:, i])) ** exponent
        fx[positions] = rate
        fx_shocked[:, positions] = shocked[:, None]
    return fx, fx_shocked
