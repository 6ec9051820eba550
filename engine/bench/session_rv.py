"""A rough microbenchmark of the online session accumulator's cost per tick.

``python -m engine.bench.session_rv`` feeds :class:`~engine.core.volatility.session_rv.SessionRVTracker`
synthetic ticks (one a second across 1,000 symbols for about 4.6 days, so sessions open
and close) in micro-batches of 1,000, as the book does, and prints the median of three
runs in nanoseconds of CPU time per tick, for a fixed calendar and for ``auto``, and the
bytes of persisted state per symbol. Rough: one process, CPU time
(:func:`time.process_time`), no isolation from other work on the machine.
"""

from __future__ import annotations

import time

import numpy as np

from engine.anomaly.sessions import session_table
from engine.core.volatility.session_rv import SessionRVTracker


def cost_per_tick(
    calendar: str, *, ticks: int = 400_000, symbols: int = 1000, batch: int = 1000, rounds: int = 3
) -> float:
    """Median CPU nanoseconds per tick of :meth:`SessionRVTracker.update` over ``rounds`` runs."""
    rng = np.random.default_rng(0)
    slots = rng.integers(0, symbols, ticks)
    ts = 1_572_964_200_000 + np.arange(ticks) * 1_000  # 2019-11-05 14:30 UTC, a tick a second
    price = 100.0 * np.exp(rng.normal(0.0, 1e-4, ticks).cumsum())
    warm = SessionRVTracker(session_table, calendar)
    warm.ensure(symbols)
    warm.update(slots[:batch], ts[:batch], price[:batch])  # compiles, loads the calendars
    runs = []
    for _ in range(rounds):
        tracker = SessionRVTracker(session_table, calendar)
        tracker.ensure(symbols)
        start = time.process_time()
        for i in range(0, ticks, batch):
            tracker.update(slots[i : i + batch], ts[i : i + batch], price[i : i + batch])
        runs.append((time.process_time() - start) / ticks * 1e9)
    return float(np.median(runs))


def main() -> None:
    size = SessionRVTracker(session_table, "24/7").pack(np.zeros(1, np.int64)).shape[1]
    for calendar in ("24/7", "XNYS", "auto"):
        print(f"{calendar}: {cost_per_tick(calendar):.0f} ns per tick (CPU, median of 3)")
    print(f"state: {size} bytes per symbol")


if __name__ == "__main__":
    main()
