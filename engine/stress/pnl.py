"""Scenario P&L of many portfolios at once: an exposure matrix times the move matrix.

For spot positions the P&L of a scenario is linear in its relative moves::

    pnl[p, c] = sum_i X[p, i] * M[c, i],    X[p, i] = quantity[p, i] * price[i]

in the price's currency (negative is a loss), with ``M`` the (cells x symbols) relative
moves of :class:`~engine.stress.moves.ScenarioMoves`. Books with vega (currency per
1.00 change of annualised volatility) add ``V @ vol.T``; spot positions have none. The
whole library over every portfolio is one matrix product, which is what makes it cheap
enough to recompute on every close of the stream.

Option positions are not linear: :func:`book_stress` adds their full revaluation in every
cell (:mod:`engine.stress.option_pnl`) to the spot positions' P&L.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from engine.stress.moves import Market, ScenarioMoves, Source
from engine.stress.option_pnl import OptionHoldings, OptionStressPnl, option_stress_pnl


@dataclass(frozen=True, slots=True)
class Exposures:
    """Quantity x price per portfolio (rows, sorted) and market symbol (columns), currency units."""

    portfolios: tuple[str, ...]
    matrix: np.ndarray
    quantity: np.ndarray

    def held(self, row: int) -> np.ndarray:
        """Market slots of the symbols portfolio ``row`` holds (non-zero quantity)."""
        return np.flatnonzero(self.quantity[row] != 0.0)


def exposures(holdings: Mapping[str, Mapping[str, float]], market: Market) -> Exposures:
    """Exposures of ``{portfolio: {symbol: quantity}}`` at the market's prices.

    Every held symbol must be a market symbol (``KeyError`` otherwise; callers check
    first and say which).

    >>> m = Market(("A", "B"), np.array([10.0, 20.0]), np.eye(2), np.array([30, 30]))
    >>> exposures({"p": {"B": 2.0, "A": -1.0}}, m).matrix
    array([[-10.,  40.]])
    """
    names = tuple(sorted(holdings))
    slots = {s: i for i, s in enumerate(market.symbols)}
    quantity = np.zeros((len(names), len(market.symbols)))
    for row, name in enumerate(names):
        for symbol, qty in holdings[name].items():
            quantity[row, slots[symbol]] += qty
    return Exposures(names, quantity * market.prices[None, :], quantity)


def scenario_pnl(
    exposure: np.ndarray, moves: ScenarioMoves, vega: np.ndarray | None = None
) -> np.ndarray:
    """P&L (portfolios x cells, currency units, negative = loss) of every scenario cell.

    ``exposure`` is (portfolios x symbols) quantity x price; ``vega`` (same shape, per
    1.00 of vol) is added against the cells' vol moves when given.

    >>> from engine.stress.moves import ScenarioMoves
    >>> m = ScenarioMoves(("down",), ("down",), np.array([[-0.1, 0.05]]), np.zeros((1, 2)), np.ones((1, 2), np.int8))
    >>> scenario_pnl(np.array([[1000.0, 200.0]]), m)
    array([[-90.]])
    """
    pnl = exposure @ moves.spot.T
    if vega is not None:
        pnl = pnl + vega @ moves.vol.T
    return np.asarray(pnl)


def contributions(exposure: np.ndarray, moves: ScenarioMoves) -> np.ndarray:
    """Per-position P&L (cells x symbols) of one portfolio's exposure row; rows sum to its P&L."""
    return moves.spot * exposure[None, :]


def holdings_of(rows: Iterable[tuple[str, str, float]]) -> dict[str, dict[str, float]]:
    """``(portfolio, symbol, quantity)`` rows as ``{portfolio: {symbol: quantity}}``.

    A later row of the same portfolio and symbol replaces an earlier one (positions are
    replacements, as in the positions topic); a zero quantity closes the position.

    >>> holdings_of([("p", "A", 1.0), ("p", "A", 3.0), ("q", "B", 0.0)])
    {'p': {'A': 3.0}}
    """
    out: dict[str, dict[str, float]] = {}
    for portfolio, symbol, quantity in rows:
        book = out.setdefault(portfolio, {})
        if quantity == 0.0:
            book.pop(symbol, None)
        else:
            book[symbol] = quantity
    return {p: h for p, h in out.items() if h}


@dataclass(frozen=True, slots=True)
class BookStress:
    """Scenario P&L of spot and option positions together, one row per portfolio (sorted).

    ``pnl`` (portfolios x cells, currency, negative = loss) is the linear P&L of the spot
    positions plus the full-revaluation P&L of the option positions; ``proxied`` counts
    each portfolio's positions whose move (an option's: its underlying's) is a proxy in
    some cell; ``options`` and ``options_excluded`` count the option positions revalued
    and those left out (expired or unpriced); ``fx_missing`` the currencies of the option
    positions left out for want of a rate into the base currency (sorted, per
    portfolio); ``linear`` and ``option`` are the two parts (``option`` is ``None``
    without option positions).
    """

    portfolios: tuple[str, ...]
    pnl: np.ndarray
    proxied: np.ndarray
    options: np.ndarray
    options_excluded: np.ndarray
    linear: Exposures | None
    option: OptionStressPnl | None
    fx_missing: tuple[tuple[str, ...], ...] = ()


def book_stress(
    holdings: Mapping[str, Mapping[str, float]],
    options: OptionHoldings | None,
    market: Market,
    moves: ScenarioMoves,
    exposure: Exposures | None = None,
) -> BookStress:
    """The P&L of every portfolio of ``holdings`` (spot positions, every symbol in the
    market) and of ``options`` (option positions) in every cell of ``moves``: what both
    ``riskstream stress run`` and the streaming service publish.

    ``exposure``, when given, stands for the spot positions' exposures instead of those
    of ``holdings``: a base-currency book's exposures per risk factor, FX pairs included
    (:func:`engine.stress.live.factor_exposures`).
    """
    x = exposure if exposure is not None else exposures(holdings, market) if holdings else None
    with_options = [] if options is None else options.portfolios()
    linear = () if x is None else x.portfolios
    names = tuple(sorted(set(linear) | set(with_options)))
    row_of = {name: k for k, name in enumerate(names)}
    proxied_symbol = np.asarray((moves.source > Source.DIRECT).any(axis=0))
    pnl = np.zeros((len(names), len(moves.names)))
    proxied = np.zeros(len(names), dtype=np.int64)
    counts = np.zeros((2, len(names)), dtype=np.int64)
    o = None
    missing: list[tuple[str, ...]] = [() for _ in names]
    if x is not None and x.portfolios:
        rows = [row_of[p] for p in x.portfolios]
        pnl[rows] += scenario_pnl(x.matrix, moves)
        for k, row in enumerate(rows):
            proxied[row] += int(proxied_symbol[x.held(k)].sum())
    if options is not None and with_options:
        o = option_stress_pnl(options, with_options, market.symbols, market.prices, moves)
        rows = [row_of[p] for p in o.portfolios]
        pnl[rows] += o.pnl
        counts[0, rows] = o.options
        counts[1, rows] = o.expired + o.unpriced
        for row, currencies in zip(rows, o.fx_missing, strict=True):
            missing[row] = currencies
        slot = {s: i for i, s in enumerate(market.symbols)}
        for portfolio, symbol in o.positions:
            underlying = options.instruments[symbol].underlying
            proxied[row_of[portfolio]] += int(proxied_symbol[slot[underlying]])
    return BookStress(names, pnl, proxied, counts[0], counts[1], x, o, tuple(missing))
