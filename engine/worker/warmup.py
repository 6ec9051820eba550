"""Compile the worker's kernels before it joins its consumer group.

The risk core's loops are numba functions compiled on first call (``cache=True`` keeps
the machine code on disk, so later starts only load it). Compiled lazily, the first
micro-batch after partitions were assigned held the event loop for 30-50 s on a fresh
install ("Timer ... woke up too late"): input waited, heartbeats were late, and the
group saw a member that joined but did not work. :func:`warm_up` instead runs a small
synthetic batch through throwaway pipelines built from the same settings, so every
kernel on the per-tick path (sequencing, volatility models, VaR/ES, backtests, anomaly
stages, customer profiles, row packing) is compiled or loaded before the worker says
Ready. Nothing of it reaches the worker's state, Kafka or Redis.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from engine.boundary.records import RawRecord
from engine.boundary.schemas import PriceTick, Transaction
from engine.config import Settings

log = logging.getLogger(__name__)

#: Synthetic ticks per symbol: enough to fill the default warm-up, windows and
#: backtest windows' first tests.
TICKS = 320
START_MS = 1_500_000_000_000


def _prices() -> list[RawRecord]:
    rng = np.random.default_rng(0)
    records = []
    for k, symbol in enumerate(("WARMUP-A", "WARMUP-B")):
        path = 100.0 * np.exp(np.cumsum(0.01 * rng.standard_t(5, TICKS)))
        for i, price in enumerate(path):
            tick = PriceTick(symbol, START_MS + i * 86_400_000, float(price))
            records.append(tick.to_record(k * TICKS + i))
    return records


def _transactions() -> list[RawRecord]:
    return [
        Transaction(f"warmup-{i}", START_MS + i * 60_000, f"c{i % 3}", 10.0 + i).to_record(i)
        for i in range(60)
    ]


def warm_up(settings: Settings) -> float:
    """Run one synthetic batch through pipelines like the worker's; returns the seconds taken.

    The batch stops short of the models' first fit: fits run in the worker's fit pool,
    whose process the worker starts beside this, without waiting for it
    (:meth:`~engine.core.volatility.fitting.PoolFitter.start`; fitting here, in the
    worker's own process, would put seconds of CPU on a restarted worker's way back).
    """
    from engine.pipeline import PricePipeline, TransactionPipeline

    started = time.perf_counter()
    now = START_MS + 400 * 86_400_000
    risk = settings.risk.model_copy(update={"refit_first": 10 * TICKS})
    no_fits = settings.model_copy(update={"risk": risk})
    PricePipeline.from_settings(no_fits).process(_prices(), now_ms=now)
    TransactionPipeline.from_settings(settings).process(_transactions(), now_ms=now)
    seconds = time.perf_counter() - started
    log.info("kernels compiled or loaded and warmed up in %.1f s", seconds)
    return seconds
