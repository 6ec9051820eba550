"""Benchmark of the options risk core on one core: Greeks per tick, full-revaluation VaR, the gap.

Data: one-day scenarios bootstrap real S&P 500 returns and VIX changes (``arch.data``,
2014-2018); the option books and their stocks are GENERATED (engine/options/scenarios.py).
BLAS is limited to one thread; the numba kernel is single-threaded.

``greeks``    price and Greeks of every position of a 10,000-option book after an underlying
              tick, plus the book's per-underlying cash delta, gamma and vega
              (:func:`~engine.options.book.sensitivities`): p50 and p99 over repeats;
``full VaR``  full revaluation of that book in 10,000 scenarios and its 99% quantile: the
              median (and range) of ``full_repeats`` timed runs after an untimed one that
              compiles or loads the kernel, wall clock, and the median CPU time of the
              process over the same runs (on a shared machine, wall time includes the
              time other processes held the core);
``gap``       VaR at 99% of a 1,000-option, 50-underlying book by every method of
              :mod:`engine.options.var`, with each one's gap to full revaluation.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from engine.bench.result import BenchResult
from engine.options.book import revalue, sensitivities
from engine.options.scenarios import ONE_DAY, generated_book, market_history, scenarios
from engine.options.var import book_var


@dataclass
class OptionsBench(BenchResult):
    positions: int
    underlyings: int
    greeks_p50_ms: float
    greeks_p99_ms: float
    scenarios: int
    full_var_seconds: float
    full_var_seconds_range: tuple[float, float]
    full_var_repeats: int
    full_var_cpu_seconds: float
    full_var_99: float
    gap_positions: int
    gap_underlyings: int
    gap_table: list[dict[str, object]]
    data: str
    load_average: float
    cpus: int

    def markdown(self) -> str:
        lines = [
            f"Options risk core, one core (load average {self.load_average:.2f} on {self.cpus} CPUs). "
            f"Data: {self.data}.",
            "",
            "| measurement | value | target |",
            "|---|---|---|",
            f"| Greeks of {self.positions:,} positions + per-underlying aggregates after a tick, p50 / p99 "
            f"| {self.greeks_p50_ms:.2f} / {self.greeks_p99_ms:.2f} ms | <= 5 ms |",
            f"| full-revaluation VaR, {self.positions:,} positions x {self.scenarios:,} scenarios, "
            f"median of {self.full_var_repeats} (range) "
            f"| {self.full_var_seconds:.2f} s ({self.full_var_seconds_range[0]:.2f}-"
            f"{self.full_var_seconds_range[1]:.2f}); CPU {self.full_var_cpu_seconds:.2f} s | <= 2 s |",
            "",
            f"VaR 99%, one day, {self.gap_positions:,} options on {self.gap_underlyings} underlyings "
            f"({self.scenarios:,} scenarios):",
            "",
            "| method | VaR | gap to full | relative gap |",
            "|---|---|---|---|",
        ]
        for row in self.gap_table:
            lines.append(
                f"| {row['method']} | {row['var']:,.0f} | {row['gap']:+,.0f} | {row['relative_gap']:+.2%} |"
            )
        return "\n".join(lines)


def run(
    *,
    positions: int = 10_000,
    underlyings: int = 50,
    n_scenarios: int = 10_000,
    gap_positions: int = 1_000,
    repeats: int = 200,
    full_repeats: int = 5,
    seed: int = 7,
) -> OptionsBench:
    """Run the three measurements (see the module docstring)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        history = market_history()
        book, market = generated_book(positions, underlyings, history, seed=seed)
        returns, vol_change = scenarios(history, market, n_scenarios, seed=seed + 4)
        revalue(book, returns[:2], vol_change[:2], ONE_DAY)  # compile the kernel untimed

        rng = np.random.default_rng(seed)
        times = []
        for _ in range(repeats):
            u = int(rng.integers(underlyings))
            book.spot[u] *= float(np.exp(rng.normal(0.0, 1e-3)))  # the tick
            start = time.perf_counter()
            sensitivities(book, book.greeks(), ONE_DAY)
            times.append(time.perf_counter() - start)
        greeks_ms = np.array(times) * 1e3

        full_times, cpu_times = [], []
        for _ in range(full_repeats):
            start, cpu = time.perf_counter(), time.process_time()
            pnl = revalue(book, returns, vol_change, ONE_DAY)
            full_var = -float(np.quantile(pnl, 0.01))
            full_times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu)

        small, small_market = generated_book(gap_positions, underlyings, history, seed=seed)
        r_small, v_small = scenarios(history, small_market, n_scenarios, seed=seed + 4)
        table: list[dict[str, object]] = [
            {"method": r.method, "var": r.var, "gap": r.gap, "relative_gap": r.relative_gap}
            for r in book_var(small, r_small, v_small, horizon=ONE_DAY, level=0.99)
        ]
    return OptionsBench(
        positions=positions,
        underlyings=underlyings,
        greeks_p50_ms=float(np.percentile(greeks_ms, 50)),
        greeks_p99_ms=float(np.percentile(greeks_ms, 99)),
        scenarios=n_scenarios,
        full_var_seconds=float(np.median(full_times)),
        full_var_seconds_range=(min(full_times), max(full_times)),
        full_var_repeats=full_repeats,
        full_var_cpu_seconds=float(np.median(cpu_times)),
        full_var_99=full_var,
        gap_positions=gap_positions,
        gap_underlyings=underlyings,
        gap_table=table,
        data=(
            f"real S&P 500 returns and VIX changes {history.first_day} to {history.last_day} "
            f"({len(history.market_return):,} days, bootstrapped); GENERATED option books and stocks"
        ),
        load_average=os.getloadavg()[0],
        cpus=os.cpu_count() or 1,
    )
