"""Scenario P&L of many portfolios at once: an exposure matrix times the move matrix.

For spot positions the P&L of a scenario is linear in its relative moves::

    pnl[p, c] = sum_i X[p, i] * M[c, i],    X[p, i] = quantity[p, i] * price[i]

in the price's currency (negative is a loss), with ``M`` the (cells x symbols) relative
moves of :class:`~engine.stress.moves.ScenarioMoves`. Books with vega (currency per
1.00 change of annualised volatility) add ``V @ vol.T``; spot positions have none. The
whole library over every portfolio is one matrix product, which is what makes it cheap
enough to recompute on every close of the stream.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from engine.stress.moves import Market, ScenarioMoves


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
