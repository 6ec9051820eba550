"""Benchmark of the pure pipeline and risk core, in-process, one core, no services.

Synthetic GARCH-t ticks for ``symbols`` symbols, ``interval_ms`` apart per symbol (with
a realized-variance field, so HAR-RV runs on every tick, or without one, as a live feed,
so HAR-RV runs on the engine's session realised variance) are encoded as the messages a
consumer would receive, then fed in micro-batches of ``batch`` records. At an intraday
interval (an hour) the ticks span many trading sessions, and the GARCH-family refits
fall on the session schedule. Every symbol first gets ``warm`` ticks untimed, so
the timed ticks see every model fitted and every window full: all volatility models
(EWMA, GARCH-t, GJR-GARCH-t, HAR-RV), VaR/ES of every method at every level, breach
counters and rolling backtests. Reported per timed tick:

``validate``  JSON decoding and validation (:func:`engine.boundary.validation.decode_prices`);
``core``      the risk book's step: sequencing, every online model, VaR/ES, backtests;
``pipeline``  the whole :class:`~engine.pipeline.PricePipeline` (the two above plus
              alerts, snapshots and state rows): what the worker runs per batch.

Model fits (arch) run off the hot path, in other processes (:class:`PoolFitter`). To
time the hot path alone, fits here return fixed, plausible parameters at once; the
book still does everything else of a refit (gathering the window, installing the
parameters, catching the recursion up). What the fits themselves cost is measured
separately on real jobs of the run: milliseconds per arch fit, fits requested per tick,
and their product, the fitting CPU per tick that the pool spends.

Times are CPU time of this process (:func:`time.process_time`), not wall-clock time, so
that other work on a shared machine does not inflate them; everything here runs on one
thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import orjson

from engine.boundary.records import RawRecord
from engine.boundary.timeutil import now_ms
from engine.boundary.validation import decode_prices
from engine.config import Settings
from engine.core.volatility.fitting import FitJob, FitResult, fit
from engine.gctune import tune_for_streaming
from engine.pipeline import PricePipeline

#: Parameters the benchmark's fits return (decimal units; GJR order omega, alpha, gamma, beta, nu).
FIXED = {
    "garch": np.array([2e-6, 0.08, 0.0, 0.90, 7.0]),
    "gjr": np.array([2e-6, 0.02, 0.15, 0.85, 7.0]),
    "har": np.array([1e-6, 0.4, 0.3, 0.2]),
}


@dataclass
class FixedFitter:
    """Returns :data:`FIXED` parameters at once and keeps the first jobs of each kind for timing."""

    keep: int = 20
    jobs: dict[str, list[FitJob]] = field(default_factory=dict)
    requested: dict[str, int] = field(default_factory=dict)

    def submit(self, job: FitJob) -> None:
        """Nothing to start."""

    def result(self, job: FitJob) -> FitResult:
        self.requested[job.kind] = self.requested.get(job.kind, 0) + 1
        kept = self.jobs.setdefault(job.kind, [])
        if len(kept) < self.keep:
            kept.append(job)
        end_var = float(np.var(job.data)) if job.kind != "har" else float("nan")
        return FitResult(FIXED[job.kind], end_var, True)

    def ready(self, job: FitJob) -> bool:
        """Always: the result is made at once."""
        return True


@dataclass(frozen=True)
class CoreResult:
    symbols: int
    batch: int
    ticks: int
    warm: int
    validate_us: float
    core_us: float
    pipeline_us: float
    fit_ms: dict[str, float]
    fits_per_tick: float
    fit_us_per_tick: float
    interval_ms: int = 1000
    fits: dict[str, int] = field(default_factory=dict)
    rows_us: float = float("nan")
    """Of :attr:`pipeline_us`, the state rows of the slots each batch touched. The worker
    builds them at checkpoints (``RISKSTREAM_CHECKPOINT_MS``), once per changed key, not
    per micro-batch."""

    def markdown(self) -> str:
        fits = ", ".join(f"{kind} {ms:.1f} ms" for kind, ms in sorted(self.fit_ms.items()))
        counted = ", ".join(f"{kind} {n:,}" for kind, n in sorted(self.fits.items())) or "none"
        return "\n".join(
            [
                "| stage | microseconds per tick |",
                "|---|---|",
                f"| validate (decode JSON, check fields) | {self.validate_us:.2f} |",
                f"| risk core step (all models, VaR/ES, backtests) | {self.core_us:.2f} |",
                f"| whole pipeline (+ alerts, snapshots, state rows) | {self.pipeline_us:.2f} |",
                f"| of which state rows of the batch's symbols (the worker builds them at checkpoints) | {self.rows_us:.2f} |",
                f"| model fits, off the hot path ({self.fits_per_tick:.4f} fits per tick; {fits}) | {self.fit_us_per_tick:.1f} |",
                f"| fits installed during the timed ticks | {counted} |",
                f"| input | {self.ticks:,} timed ticks, {self.symbols:,} symbols, {self.warm} warm-up ticks each, "
                f"{self.interval_ms:,} ms apart, batches of {self.batch:,} |",
            ]
        )


def _records(
    symbols: int, ticks: int, interval_ms: int = 1000, producer_rv: bool = True
) -> list[RawRecord]:
    """Synthetic ticks, with ``rv`` (the squared log return since the symbol's previous tick)
    when ``producer_rv``."""
    from producers.synthetic import SyntheticPrices

    last: dict[str, float] = {}
    out = []
    prices = SyntheticPrices(
        symbols, ticks=ticks, interval_ms=interval_ms, seed=3, end_ms=now_ms() - 60_000
    )
    for i, tick in enumerate(prices):
        doc = tick.to_dict()
        previous = last.get(tick.symbol)
        if producer_rv and previous is not None:
            doc["rv"] = float(np.log(tick.price / previous) ** 2) + 1e-8
        last[tick.symbol] = tick.price
        out.append(RawRecord(tick.key, orjson.dumps(doc), 0, i))
    return out


def run(
    *,
    symbols: int = 1000,
    ticks: int = 500_000,
    batch: int = 20_000,
    warm: int = 300,
    settings: Settings | None = None,
    interval_ms: int = 1000,
    producer_rv: bool = True,
) -> CoreResult:
    settings = settings or Settings()
    records = _records(symbols, symbols * warm + ticks, interval_ms, producer_rv)
    warmup, timed = records[: symbols * warm], records[symbols * warm :]
    chunks = lambda rs: [rs[i : i + batch] for i in range(0, len(rs), batch)]  # noqa: E731
    tune_for_streaming()
    now = now_ms()
    skew = int(settings.validation.max_future_skew_s * 1000)
    decode = lambda b: decode_prices(b, now_ms=now, max_future_skew_ms=skew)[0]  # noqa: E731

    decode(warmup[:batch])
    started = time.process_time()
    decoded = [decode(b) for b in chunks(timed)]
    validate = time.process_time() - started

    fitter = FixedFitter()
    book = PricePipeline.from_settings(settings, fitter=fitter).book
    for b in chunks(warmup):
        book.step(decode(b))
    before = dict(fitter.requested)
    started = time.process_time()
    for cols in decoded:
        book.step(cols)
    core = time.process_time() - started
    fits = {k: v - before.get(k, 0) for k, v in fitter.requested.items()}

    pipeline = PricePipeline.from_settings(settings, fitter=FixedFitter())
    for b in chunks(warmup):
        pipeline.process(b, now_ms=now)
    rows = 0.0
    started = time.process_time()
    for b in chunks(timed):
        touched = pipeline.process(b, now_ms=now, persist=False).touched
        mark = time.process_time()
        pipeline.book.rows(touched)  # what persist=True adds, timed apart
        rows += time.process_time() - mark
    whole = time.process_time() - started

    fit_ms = {}
    for kind, jobs in fitter.jobs.items():
        started = time.process_time()
        for job in jobs:
            fit(job)
        fit_ms[kind] = (time.process_time() - started) / len(jobs) * 1e3
    n = len(timed)
    fit_us = sum(count / n * fit_ms[kind] * 1e3 for kind, count in fits.items() if kind in fit_ms)
    return CoreResult(
        symbols,
        batch,
        n,
        warm,
        validate / n * 1e6,
        core / n * 1e6,
        whole / n * 1e6,
        fit_ms,
        sum(fits.values()) / n,
        fit_us,
        interval_ms,
        fits,
        rows / n * 1e6,
    )
