"""Benchmark of the pure pipeline and risk core, in-process, one core, no services.

Synthetic ticks for ``symbols`` symbols are encoded as the messages a consumer would
receive, then fed in micro-batches of ``batch`` records. Reported per tick, after a
warm-up batch (numba compilation and first-seen symbols excluded):

``validate``  JSON decoding and validation (:func:`engine.validation.decode_prices`);
``core``      the risk book's step: sequencing, every online model, VaR/ES, backtests;
``pipeline``  the whole :class:`~engine.pipeline.PricePipeline` (the two above plus
              alerts, snapshots and state rows): what the worker runs per batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from engine.config import Settings
from engine.gctune import tune_for_streaming
from engine.pipeline import PricePipeline
from engine.records import RawRecord
from engine.timeutil import now_ms
from engine.validation import decode_prices


@dataclass(frozen=True)
class CoreResult:
    symbols: int
    batch: int
    ticks: int
    validate_us: float
    core_us: float
    pipeline_us: float

    def markdown(self) -> str:
        return "\n".join(
            [
                "| stage | microseconds per tick |",
                "|---|---|",
                f"| validate (decode JSON, check fields) | {self.validate_us:.2f} |",
                f"| risk core step (all models, VaR/ES, backtests) | {self.core_us:.2f} |",
                f"| whole pipeline (+ alerts, snapshots, state rows) | {self.pipeline_us:.2f} |",
                f"| input | {self.ticks:,} ticks, {self.symbols:,} symbols, batches of {self.batch:,} |",
            ]
        )


def run(
    *,
    symbols: int = 1000,
    ticks: int = 500_000,
    batch: int = 20_000,
    settings: Settings | None = None,
) -> CoreResult:
    from producers.synthetic import SyntheticPrices

    settings = settings or Settings()
    records = [
        RawRecord(t.key, t.to_json(), 0, i)
        for i, t in enumerate(
            SyntheticPrices(symbols, ticks=ticks + batch, interval_ms=1000, seed=3)
        )
    ]
    warm, timed = records[:batch], records[batch:]
    batches = [timed[i : i + batch] for i in range(0, len(timed), batch)]
    tune_for_streaming()
    now = now_ms()
    skew = int(settings.max_future_skew_s * 1000)

    decode_prices(warm, now_ms=now, max_future_skew_ms=skew)
    started = time.perf_counter()
    decoded = [decode_prices(b, now_ms=now, max_future_skew_ms=skew)[0] for b in batches]
    validate = time.perf_counter() - started

    book = PricePipeline.from_settings(settings).book
    book.step(decode_prices(warm, now_ms=now, max_future_skew_ms=skew)[0])
    started = time.perf_counter()
    for cols in decoded:
        book.step(cols)
    core = time.perf_counter() - started

    pipeline = PricePipeline.from_settings(settings)
    pipeline.process(warm, now_ms=now)
    started = time.perf_counter()
    for b in batches:
        pipeline.process(b, now_ms=now)
    whole = time.perf_counter() - started
    n = len(timed)
    return CoreResult(symbols, batch, n, validate / n * 1e6, core / n * 1e6, whole / n * 1e6)
