"""Benchmark: the whole scenario library over many portfolios, on one core.

A synthetic market of ``symbols`` symbols (the library's indices SPX, NASDAQ and DJI
among them) with a one-factor covariance of daily log returns (betas 0.5-1.5 to SPX,
idiosyncratic vols 1-3% a day), and ``portfolios`` portfolios of ``positions`` random
holdings each. One recomputation, what the portfolio service does on a close, is:

``moves``     the (cells x symbols) move matrix of every approved scenario of the
              bundled library on today's prices and covariance (betas, correlation
              propagation, grid cells);
``pnl``       exposures (quantity x price) refreshed and multiplied by the move matrix:
              every portfolio's P&L in every scenario cell.

Times are CPU time of this process (:func:`time.process_time`) with BLAS limited to one
thread; the median and the worst of ``repeat`` runs are reported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from engine.bench.result import BenchResult
from engine.stress.library import load_library
from engine.stress.moves import Market, library_moves
from engine.stress.pnl import scenario_pnl


@dataclass(frozen=True, slots=True)
class StressBench(BenchResult):
    """Milliseconds (CPU) per full recomputation, median and worst over ``repeat`` runs."""

    portfolios: int
    positions: int
    symbols: int
    cells: int
    repeat: int
    moves_ms: float
    pnl_ms: float
    total_ms: float
    total_worst_ms: float

    def markdown(self) -> str:
        return "\n".join(
            [
                f"Stress library: {self.cells} scenario cells x {self.portfolios:,} portfolios x "
                f"{self.positions} positions ({self.symbols:,} symbols), one core, CPU time, "
                f"median of {self.repeat}",
                "",
                "| step | ms |",
                "|---|---:|",
                f"| move matrix (all scenarios) | {self.moves_ms:.2f} |",
                f"| exposures x moves (all portfolios) | {self.pnl_ms:.2f} |",
                f"| full recomputation | {self.total_ms:.2f} (worst {self.total_worst_ms:.2f}) |",
            ]
        )


def synthetic_market(symbols: int, seed: int = 0) -> Market:
    """A one-factor market: SPX, NASDAQ, DJI and ``symbols - 3`` stocks (see the module docstring)."""
    rng = np.random.default_rng(seed)
    names = ("SPX", "NASDAQ", "DJI", *(f"S{i:05d}" for i in range(symbols - 3)))
    beta = np.r_[1.0, 1.1, 0.95, rng.uniform(0.5, 1.5, symbols - 3)]
    idio = np.r_[0.0, 0.004, 0.003, rng.uniform(0.01, 0.03, symbols - 3)]
    market_var = 0.012**2
    cov = market_var * np.outer(beta, beta) + np.diag(idio**2)
    prices = rng.uniform(10.0, 500.0, symbols)
    return Market(names, prices, cov, np.full(symbols, 250))


def run(
    *, portfolios: int = 1000, positions: int = 100, symbols: int = 2000, repeat: int = 20
) -> StressBench:
    """Time the full library over ``portfolios`` x ``positions`` (see the module docstring)."""
    from threadpoolctl import threadpool_limits

    if positions > symbols:
        raise ValueError("positions per portfolio cannot exceed the number of symbols")
    rng = np.random.default_rng(1)
    market = synthetic_market(symbols)
    quantity = np.zeros((portfolios, symbols))
    for row in range(portfolios):
        held = rng.choice(symbols, positions, replace=False)
        quantity[row, held] = rng.normal(0.0, 100.0, positions)
    scenarios = load_library().runnable()
    moves_t, pnl_t, total_t = [], [], []
    cells = 0
    with threadpool_limits(limits=1):
        for _ in range(repeat + 1):  # the first run warms caches and is not counted
            t0 = time.process_time()
            moves = library_moves(scenarios, market)
            t1 = time.process_time()
            pnl = scenario_pnl(quantity * market.prices[None, :], moves)
            t2 = time.process_time()
            moves_t.append(t1 - t0)
            pnl_t.append(t2 - t1)
            total_t.append(t2 - t0)
            cells = pnl.shape[1]
    ms = [1e3 * np.array(t[1:]) for t in (moves_t, pnl_t, total_t)]
    return StressBench(
        portfolios,
        positions,
        symbols,
        cells,
        repeat,
        float(np.median(ms[0])),
        float(np.median(ms[1])),
        float(np.median(ms[2])),
        float(ms[2].max()),
    )
