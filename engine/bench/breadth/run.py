"""The breadth sweep: every series through the CLI in a pool of low-priority processes.

Per series: its price CSV (the most recent ``max_obs`` prices), the CLI's forecasts for
each method, the scored row (:mod:`.evaluate`). Results are written as they arrive, so
an interrupted sweep keeps what it finished. :mod:`.report` makes the tables and plots.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from engine.bench.breadth.data import Missing, PriceSeries, load_series
from engine.bench.breadth.evaluate import COMPARATORS, DEFAULT, forecast, score
from engine.bench.breadth.sources import SOURCES, log_return_summary


@dataclass(frozen=True, slots=True)
class SweepConfig:
    """What the sweep runs: series pattern, methods, length cap, processes, niceness."""

    out: Path
    pattern: str = "*"
    methods: tuple[str, ...] = (DEFAULT, *COMPARATORS)
    max_obs: int = 3000
    min_obs: int = 800
    workers: int = 1
    nice: int = 15


def _nice(increment: int) -> None:
    os.nice(increment)


def run_one(series: PriceSeries, config: SweepConfig) -> dict[str, object]:
    """Score one series (runs in a pool process)."""
    started = time.perf_counter()
    workdir = config.out / "series" / series.name
    prices = workdir / "prices.csv"
    rows = series.to_price_csv(prices, config.max_obs)
    with warnings.catch_warnings():
        # The sweep reports what the CLI publishes; a library warning must not abort a series.
        warnings.simplefilter("ignore")
        scored = score(forecast(prices, workdir, config.methods), config.methods)
    kept = series.prices.iloc[-config.max_obs :]
    return {
        "series": series.name,
        "class": series.asset_class,
        "frequency": series.frequency,
        "source": series.source,
        "dates": series.dates,
        "start": kept.index[0].strftime("%Y-%m-%d"),
        "end": kept.index[-1].strftime("%Y-%m-%d"),
        "prices": rows,
        **log_return_summary(PriceSeries(series.name, series.asset_class, "", "", kept)),
        **scored,
        "seconds": round(time.perf_counter() - started, 1),
    }


def sweep(config: SweepConfig) -> tuple[pd.DataFrame, list[Missing]]:
    """Run every matching series; returns the per-series table and the missing sources."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    series, missing = load_series(SOURCES, config.pattern, config.min_obs)
    config.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []
    failures: list[Missing] = []
    context = multiprocessing.get_context("spawn")
    with (
        concurrent.futures.ProcessPoolExecutor(
            config.workers, mp_context=context, initializer=_nice, initargs=(config.nice,)
        ) as pool,
        Progress(
            TextColumn("breadth"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.description}"),
        ) as bar,
    ):  # fmt: skip
        task = bar.add_task("", total=len(series))
        futures = {pool.submit(run_one, s, config): s for s in series}
        for future in concurrent.futures.as_completed(futures):
            s = futures[future]
            try:
                rows.append(future.result())
            except Exception as exc:  # a failing series is reported in the tables, not raised
                failures.append(Missing(s.source, f"{type(exc).__name__}: {exc}", ""))
            bar.update(task, advance=1, description=s.name)
            pd.DataFrame(rows).to_csv(config.out / "per_series.partial.csv", index=False)
    table = pd.DataFrame(rows)
    if not table.empty:
        table = table.sort_values(["class", "series"], kind="stable").reset_index(drop=True)
    return table, missing + failures
