"""Benchmark of anomaly detection in the stream, in-process, one core, no services.

The default detectors run as the worker runs them, as stages of the pipelines, and the
time spent in the stage is measured per event: the stream features (for prices from
the book's step: standardised returns and moves, volume surprise, gaps, frozen runs;
for transactions the customer windows over 1, 7 and 30 days, the delayed terminal-risk
table and time of day), the detector (calibration included), the alert policy, the
alerts and the latest-state hashes. The book's own work (validation, sequencing,
volatility, VaR) is not counted: ``riskstream bench core`` measures it.

Prices: seeded GARCH-t streams with injected anomalies (:mod:`producers.anomalies`),
``symbols`` symbols, micro-batches of ``batch`` ticks; the first ``warm`` ticks of each
symbol are not timed (calibrations and windows are warm). Transactions: the
fraud-handbook file replayed through the transactions pipeline with the default
detector (gradient-boosted trees, ONNX), in micro-batches; the first ``warm_days``
are not timed (customer windows and terminal table filled).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from engine.bench.result import BenchResult
from engine.config import Settings
from engine.stages import StageInput, StageOutput


class TimedStage:
    """A stage whose ``run`` time is accumulated (while ``timing`` is on)."""

    def __init__(self, stage: Any) -> None:
        self.stage = stage
        self.name = stage.name
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self.events = 0
        self.timing = False

    def components(self) -> tuple[Any, ...]:
        return self.stage.components()

    def run(self, data: StageInput) -> StageOutput:
        started, cpu = time.perf_counter(), time.thread_time()
        out = self.stage.run(data)
        if self.timing:
            self.seconds += time.perf_counter() - started
            self.cpu_seconds += time.thread_time() - cpu
            self.events += int(data.step.slots.size)
        return out


@dataclass(frozen=True)
class AnomalyBenchResult(BenchResult):
    price_detector: str
    symbols: int
    price_ticks: int
    price_us: float
    price_cpu_us: float
    price_alerts: int
    tx_detector: str
    tx_rows: int
    tx_us: float
    tx_cpu_us: float
    tx_alerts: int
    batch: int
    load: float

    def markdown(self) -> str:
        return "\n".join(
            [
                "| stream | default detector | events timed | us/event wall | us/event CPU | alerts |",
                "|---|---|---:|---:|---:|---:|",
                f"| prices ({self.symbols} symbols) | {self.price_detector} | {self.price_ticks:,} "
                f"| {self.price_us:.2f} | {self.price_cpu_us:.2f} | {self.price_alerts} |",
                f"| transactions (fraud handbook) | {self.tx_detector} | {self.tx_rows:,} "
                f"| {self.tx_us:.2f} | {self.tx_cpu_us:.2f} | {self.tx_alerts} |",
                "",
                f"Micro-batches of {self.batch:,} events, one process; the stage's features, "
                "detector, policy, alerts and latest-state hashes per event; CPU = the "
                f"thread's CPU time (robust to other load); 1-minute load average at the start: "
                f"{self.load:.2f}.",
            ]
        )


def bench_prices(
    settings: Settings, symbols: int, ticks: int, batch: int, warm: int
) -> tuple[float, float, int, int]:
    """``(wall us, CPU us per timed tick, timed ticks, alerts)`` of the price anomaly stage."""
    from engine.anomaly.factory import anomaly_stages
    from engine.pipeline import PricePipeline
    from producers.anomalies import labelled_prices

    stream = labelled_prices(symbols, ticks, spacing=200, burn_in=warm, seed=3)
    records = [t.to_record(i) for i, t in enumerate(stream.ticks())]
    (stage,) = anomaly_stages(settings, "prices")
    timed = TimedStage(stage)
    pipeline = PricePipeline.from_settings(settings, stages=[timed])
    now = int(stream.frame["ts"].max()) + 60_000
    warm_rows = int((stream.frame["tick"] < warm).sum())
    alerts = 0
    for start in range(0, len(records), batch):
        timed.timing = start >= warm_rows
        out = pipeline.process(records[start : start + batch], now_ms=now)
        if timed.timing:
            alerts += sum(a.kind == "anomaly" for a in out.alerts)
    n = max(timed.events, 1)
    return 1e6 * timed.seconds / n, 1e6 * timed.cpu_seconds / n, timed.events, alerts


def bench_transactions(
    settings: Settings, start: str, end: str, warm_days: int, batch: int
) -> tuple[float, float, int, int]:
    """``(wall us, CPU us per timed transaction, timed transactions, alerts)``."""
    from engine.anomaly.factory import anomaly_stages
    from engine.boundary.timeutil import parse_ts
    from engine.pipeline import TransactionPipeline
    from producers.sources import fraud_handbook

    (stage,) = anomaly_stages(settings, "transactions")
    timed = TimedStage(stage)
    pipeline = TransactionPipeline(stages=[timed])
    first, last = parse_ts(start), parse_ts(end)
    timed_from = first + warm_days * 86_400_000
    now = last + 86_400_000
    records: list[Any] = []
    alerts = 0

    def flush() -> None:
        nonlocal alerts
        out = pipeline.process(records, now_ms=now)
        if timed.timing:
            alerts += sum(a.kind == "anomaly" for a in out.alerts)
        records.clear()

    for offset, tx in enumerate(fraud_handbook(labels=True)):
        if tx.ts < first:
            continue
        if tx.ts >= last:
            break
        if not timed.timing and tx.ts >= timed_from:
            if records:
                flush()
            timed.timing = True
        records.append(tx.to_record(offset))
        if len(records) == batch:
            flush()
    if records:
        flush()
    n = max(timed.events, 1)
    return 1e6 * timed.seconds / n, 1e6 * timed.cpu_seconds / n, timed.events, alerts


def run(
    *,
    symbols: int = 200,
    ticks: int = 5000,
    batch: int = 20_000,
    warm: int = 1000,
    tx_start: str = "2018-06-25",
    tx_end: str = "2018-08-15",
    tx_warm_days: int = 37,
    progress: Any = lambda _: None,
) -> AnomalyBenchResult:
    """Time both default detectors (see the module docstring)."""
    import os

    from engine.gctune import tune_for_streaming

    settings = Settings(vol_models=("ewma",), var_method="ewma-normal")
    load = os.getloadavg()[0]
    tune_for_streaming()
    progress(f"prices: {symbols} symbols x {ticks} ticks ({settings.anomaly.price_detector})")
    price_us, price_cpu, price_n, price_alerts = bench_prices(settings, symbols, ticks, batch, warm)
    progress(f"transactions: {tx_start}..{tx_end} ({settings.anomaly.tx_detector})")
    tx_us, tx_cpu, tx_n, tx_alerts = bench_transactions(
        settings, tx_start, tx_end, tx_warm_days, batch
    )
    return AnomalyBenchResult(
        price_detector=settings.anomaly.price_detector,
        symbols=symbols,
        price_ticks=price_n,
        price_us=price_us,
        price_cpu_us=price_cpu,
        price_alerts=price_alerts,
        tx_detector=settings.anomaly.tx_detector,
        tx_rows=tx_n,
        tx_us=tx_us,
        tx_cpu_us=tx_cpu,
        tx_alerts=tx_alerts,
        batch=batch,
        load=load,
    )
