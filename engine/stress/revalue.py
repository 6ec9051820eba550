"""One portfolio's P&L under many sets of relative moves, option positions fully revalued.

The P&L function behind ``stress reverse`` and ``stress svar`` on books that hold
options: spot holdings are linear in the moves, options are repriced (as in
:mod:`engine.stress.option_pnl`), so the P&L of moves ``M`` (rows: sets of moves,
columns: the portfolio's symbols, relative price changes) is::

    pnl[k] = sum_i x_i M[k, i] + sum_o q_o m_o (V_o(S_u (1 + M[k, u])) - V_o(S_u))

with ``x`` the spot exposures (quantity x price, currency units) and ``V_o`` the option's
unit price at its underlying's moved price, everything else (time to expiry, vol, rate,
yield) held. Amounts are in each position's price currency (no base-currency conversion
here: add only same-currency books). :func:`book_delta` is the gradient of that P&L at
no move, the linear book that seeds the reverse stress's search direction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from engine.options.greeks import portfolio_greeks
from engine.stress.moves import ScenarioMoves, Source
from engine.stress.option_pnl import OptionHoldings, OptionStressPnl, option_stress_pnl


@dataclass(frozen=True, slots=True)
class RevaluedBook:
    """One portfolio on ``symbols`` (spot holdings and option underlyings) at ``prices``.

    ``exposure`` is quantity x price per symbol (0 for an underlying held only through
    options); ``options`` the portfolio's option positions and reference data (``None``
    for a spot-only book).
    """

    portfolio: str
    symbols: tuple[str, ...]
    prices: np.ndarray
    exposure: np.ndarray
    options: OptionHoldings | None = None

    def pnl(self, moves: np.ndarray) -> np.ndarray:
        """P&L (currency, negative = loss) of each row of ``moves`` (rows x symbols)."""
        return self.pnl_detail(moves)[0]

    def pnl_detail(self, moves: np.ndarray) -> tuple[np.ndarray, OptionStressPnl | None]:
        """:meth:`pnl` and the options' revaluation behind it (``None`` without options)."""
        moves = np.atleast_2d(np.asarray(moves, dtype=np.float64))
        linear = moves @ self.exposure
        if self.options is None:
            return linear, None
        n = moves.shape[0]
        names = tuple(str(k) for k in range(n))
        cells = ScenarioMoves(
            names, names, moves, np.zeros_like(moves), np.full(moves.shape, Source.DIRECT, np.int8)
        )
        o = option_stress_pnl(self.options, [self.portfolio], self.symbols, self.prices, cells)
        return linear + o.pnl[0], o


def revalued_book(
    portfolio: str,
    spot: dict[str, float],
    options: OptionHoldings | None,
    symbols: Sequence[str],
    prices: np.ndarray,
) -> RevaluedBook:
    """The :class:`RevaluedBook` of ``portfolio``: ``spot`` its spot exposures by symbol,
    ``options`` every portfolio's option holdings (only ``portfolio``'s are kept), on the
    market's ``symbols`` and ``prices``; the book's symbols are those it holds spot or
    through an option's underlying, in market order."""
    held = set(spot)
    mine = None
    if options is not None and options.option_symbols(portfolio):
        mine = replace(options, positions={portfolio: dict(options.positions[portfolio])})
        held |= {options.instruments[s].underlying for s in mine.option_symbols(portfolio)}
    index = [i for i, s in enumerate(symbols) if s in held]
    names = tuple(symbols[i] for i in index)
    exposure = np.array([spot.get(s, 0.0) for s in names], dtype=np.float64)
    return RevaluedBook(portfolio, names, np.asarray(prices, float)[index], exposure, mine)


def book_delta(book: RevaluedBook) -> np.ndarray:
    """Currency per 1.00 relative move of each symbol at no move: spot exposure plus the
    options' dollar delta ``q m Delta S`` (:func:`engine.options.greeks.portfolio_greeks`,
    the positions the stress values: expired and unpriced ones have none)."""
    delta = book.exposure.copy()
    if book.options is None:
        return delta
    o = book.options
    held = {s: o.positions[book.portfolio][s] for s in o.option_symbols(book.portfolio)}
    spots = dict(zip(book.symbols, book.prices.tolist(), strict=True))
    snaps = portfolio_greeks(
        {book.portfolio: held}, o.instruments, o.vols, spots, o.markets, ts_ms=o.ts_ms
    )
    slot = {s: i for i, s in enumerate(book.symbols)}
    for snap in snaps:
        for k, u in enumerate(snap.underlyings):
            if u in slot:
                delta[slot[u]] += float(snap.by_underlying["delta"][k])
    return delta
