"""Benchmark: option books under the scenario library, in a base currency, and reverse stress.

A synthetic market of ``underlyings`` underlyings (the library's SPX among them, prices
50-500, a one-factor covariance as :func:`engine.bench.stress.synthetic_market`) and the
pairs ``GBPUSD`` and ``JPYUSD``; a book of ``options`` European options (calls and puts,
strikes 80-120% of spot, 10-400 days), alternately priced in USD and in JPY. Timed, CPU
time of this process with BLAS on one thread, median of ``repeat`` runs:

``local``    the full revaluation of every option in every cell of the bundled library
             (:func:`engine.stress.option_pnl.option_stress_pnl`), P&L in each option's
             own currency;
``base``     the same in GBP: each option converted at its live rate, moved by the
             cells' FX moves (USD through GBPUSD, JPY crossed through USD);
``reverse``  the reverse stress of the book (a loss of three delta-book sigmas): the
             scan and Brent search of :func:`engine.stress.reverse.reverse_stress_revalued`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from engine.bench.result import BenchResult
from engine.bench.stress import synthetic_market
from engine.options.greeks import UnderlyingMarket
from engine.options.instruments import Instrument, option_terms
from engine.stress.library import load_library
from engine.stress.moves import Market, library_moves
from engine.stress.option_pnl import OptionHoldings, option_stress_pnl
from engine.stress.revalue import RevaluedBook, book_delta
from engine.stress.reverse import reverse_stress_revalued

_TODAY = date(2024, 3, 15)


@dataclass(frozen=True, slots=True)
class OptionStressBench(BenchResult):
    """Milliseconds (CPU, median of ``repeat``) of the three timed steps."""

    options: int
    underlyings: int
    cells: int
    repeat: int
    local_ms: float
    base_ms: float
    reverse_ms: float
    reverse_residual: float

    def markdown(self) -> str:
        return "\n".join(
            [
                f"Option stress: {self.options:,} options on {self.underlyings} underlyings x "
                f"{self.cells} scenario cells, one core, CPU time, median of {self.repeat}",
                "",
                "| step | ms |",
                "|---|---:|",
                f"| every option in every cell, own currency | {self.local_ms:.1f} |",
                f"| the same in GBP (USD and JPY options, FX moved) | {self.base_ms:.1f} |",
                f"| reverse stress (3 sigma), options revalued | {self.reverse_ms:.1f} |",
                "",
                f"Reverse stress |revalued P&L + loss| / loss: {self.reverse_residual:.1e}",
            ]
        )


def run(*, options: int = 1000, underlyings: int = 50, repeat: int = 10) -> OptionStressBench:
    """Time the three steps of the module docstring."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(3)
    base = synthetic_market(underlyings)
    symbols = (*base.symbols, "GBPUSD", "JPYUSD")
    prices = np.r_[base.prices, 1.25, 0.0068]
    cov = np.zeros((len(symbols), len(symbols)))
    cov[:underlyings, :underlyings] = base.cov
    cov[underlyings:, underlyings:] = np.diag([0.006**2, 0.007**2])
    market = Market(symbols, prices, cov, np.full(len(symbols), 250))
    instruments = {p: Instrument(p, "fx", currency="USD", calendar="24/5") for p in symbols[-2:]}
    held: dict[str, float] = {}
    for k in range(options):
        u = k % underlyings
        key = f"O{k:05d}"
        expiry = _TODAY + timedelta(days=int(rng.integers(10, 400)))
        instruments[key] = Instrument(
            key,
            "option",
            symbols[u],
            currency="USD" if k % 2 else "JPY",
            multiplier=100.0,
            option=option_terms(
                strike=round(float(prices[u] * rng.uniform(0.8, 1.2)), 2),
                expiry=expiry.isoformat(),
                right="call" if k % 3 else "put",
                style="european",
            ),
        )
        held[key] = float(rng.choice([-1.0, 1.0]) * rng.integers(1, 20))
    markets = {s: UnderlyingMarket(0.03, 0.01, 0.25) for s in symbols[:underlyings]}
    ts_ms = int(np.datetime64(_TODAY.isoformat(), "ms").astype(np.int64))
    moves = library_moves(load_library().runnable(), market)
    local = OptionHoldings({"p": held}, instruments, {}, markets, ts_ms)
    in_gbp = OptionHoldings({"p": held}, instruments, {}, markets, ts_ms, "GBP")
    book = RevaluedBook(
        "p", symbols[:underlyings], prices[:underlyings], np.zeros(underlyings), local
    )
    delta = book_delta(book)
    c = cov[:underlyings, :underlyings]
    loss = 3.0 * float(np.sqrt(delta @ c @ delta))
    times: dict[str, list[float]] = {"local": [], "base": [], "reverse": []}
    residual = 0.0
    with threadpool_limits(limits=1):
        for k in range(repeat + 1):  # the first run warms caches and is not counted
            t0 = time.process_time()
            option_stress_pnl(local, ["p"], symbols, prices, moves)
            t1 = time.process_time()
            option_stress_pnl(in_gbp, ["p"], symbols, prices, moves)
            t2 = time.process_time()
            result = reverse_stress_revalued("p", book.symbols, delta, book.pnl, c, loss)
            t3 = time.process_time()
            if k:
                times["local"].append(t1 - t0)
                times["base"].append(t2 - t1)
                times["reverse"].append(t3 - t2)
            assert result.pnl is not None
            residual = abs(result.pnl + loss) / loss
    return OptionStressBench(
        options,
        underlyings,
        len(moves.names),
        repeat,
        *(1e3 * float(np.median(times[k])) for k in ("local", "base", "reverse")),
        residual,
    )
