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

An option position is left out of the P&L and counted in :attr:`OptionStressPnl.expired`
when ``T <= 0``, and in :attr:`OptionStressPnl.unpriced` when it cannot be valued: its
underlying has no price in the market or no :class:`UnderlyingMarket`, or Barone-Adesi–
Whaley is undefined at its inputs (an American option at a negative rate).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

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
    last timestamp offline.
    """

    positions: Mapping[str, Mapping[str, float]]
    instruments: Mapping[str, Instrument]
    vols: Mapping[str, float]
    markets: Mapping[str, UnderlyingMarket]
    ts_ms: int

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
    ``(portfolio, symbol)``), the unit price before and in each cell: the detail behind
    the P&L.
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


def option_stress_pnl(
    holdings: OptionHoldings,
    portfolios: Sequence[str],
    symbols: Sequence[str],
    prices: np.ndarray,
    moves: ScenarioMoves,
) -> OptionStressPnl:
    """Revalue every option position of ``portfolios`` in every cell of ``moves``.

    ``symbols`` and ``prices`` are the market's (the columns of ``moves``); an option's
    underlying is found among them.
    """
    slots = {s: i for i, s in enumerate(symbols)}
    n_cells = len(moves.names)
    rows = {p: k for k, p in enumerate(portfolios)}
    counts = np.zeros((3, len(portfolios)), dtype=np.int64)  # options, expired, unpriced
    keys: list[tuple[str, str]] = []
    # (q x m, market slot of the underlying, strike, t, rate, carry yield, vol, call, american)
    columns: list[tuple[float, int, float, float, float, float, float, bool, bool]] = []
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
            on_future = u in holdings.instruments and holdings.instruments[u].kind == "future"
            keys.append((portfolio, symbol))
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
    ok = np.isfinite(base) & np.isfinite(shocked).all(axis=0)
    pnl = np.zeros((len(portfolios), n_cells))
    for k in range(n):
        row = rows[keys[k][0]]
        if ok[k]:
            pnl[row] += units[k] * (shocked[:, k] - base[k])
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
    )
