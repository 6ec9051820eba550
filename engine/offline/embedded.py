"""The embedded runner: the worker's pipelines in-process, with no Kafka and no Redis.

:class:`EmbeddedRunner` feeds price records through the same
:class:`~engine.pipeline.PricePipeline` the Faust worker uses, and transaction records
through its :class:`~engine.pipeline.TransactionPipeline`, in micro-batches, and writes
alerts and dead letters to JSON Lines files (and to Redis as well when
``RISKSTREAM_REDIS_URL`` is set). Records get consecutive offsets on partition 0, so
the state and alerts equal what a worker computes for the same input in the same
per-key order. :mod:`engine.offline.embedded_inputs` reads a user's own files and streams.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from engine.boundary.records import RawRecord, RecordLike
from engine.boundary.schemas import PriceTick
from engine.boundary.timeutil import now_ms
from engine.config import Settings
from engine.kafka.topics import PRICES, TRANSACTIONS
from engine.metrics import Metrics, instrument_stages
from engine.pipeline import PriceOutcome, PricePipeline, TransactionOutcome, TransactionPipeline
from engine.sinks.base import Sink
from engine.sinks.files import DeadLetterFile, JsonlSink
from engine.sinks.redis import RedisSink

Outcome = PriceOutcome | TransactionOutcome


def tick_records(ticks: Iterable[PriceTick], start_offset: int = 0) -> Iterator[RawRecord]:
    """Ticks as the raw records a consumer would receive, with consecutive offsets."""
    for offset, tick in enumerate(ticks, start=start_offset):
        yield tick.to_record(offset)


@dataclass(slots=True)
class SymbolSummary:
    """One symbol's state at the end of a run (from its last snapshot)."""

    ticks: int
    price: float
    sigma: float
    var: dict[float, float]
    tested: dict[float, int]
    breaches: dict[float, int]


@dataclass(slots=True)
class RunReport:
    """What an embedded run of one topic did."""

    topic: str = PRICES
    received: int = 0
    accepted: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)
    alerts: int = 0
    symbols: dict[str, SymbolSummary] = field(default_factory=dict)
    seconds: float = 0.0
    alerts_path: Path | None = None
    dead_letters_path: Path | None = None

    def violation_rate(self, level: float) -> tuple[int, int, float]:
        """``(breaches, tested, rate)`` over all symbols at a VaR level."""
        tested = sum(s.tested.get(level, 0) for s in self.symbols.values())
        breaches = sum(s.breaches.get(level, 0) for s in self.symbols.values())
        return breaches, tested, (breaches / tested if tested else float("nan"))


class EmbeddedRunner:
    """Run the price pipeline over an iterable of records (see module docstring).

    Parameters
    ----------
    settings : Settings
        Risk model and alerting settings; ``redis_url`` enables the Redis sink.
    out_dir : Path
        Where ``alerts.jsonl`` and ``dead_letters.jsonl`` are written (truncated).
    rate : float or None
        Records per second to pace the replay at; ``None`` runs as fast as possible.
    batch_size : int
        Records per micro-batch when running as fast as possible.
    """

    def __init__(
        self,
        settings: Settings,
        out_dir: Path,
        *,
        rate: float | None = None,
        batch_size: int = 5000,
        metrics: Metrics | None = None,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive (or None for as fast as possible)")
        self.settings = settings
        self.pipeline = PricePipeline.from_settings(settings)
        self.out_dir = Path(out_dir)
        self.rate = rate
        self.batch_size = (
            batch_size if rate is None else max(1, min(batch_size, int(rate / 20) or 1))
        )
        self.metrics = metrics if metrics is not None else Metrics.from_settings(settings)
        instrument_stages(self.pipeline, self.metrics)
        self.metrics.describe(self.pipeline)
        self._transactions: TransactionPipeline | None = None
        self._runs = 0

    @property
    def transactions(self) -> TransactionPipeline:
        """The transactions pipeline (credit, anomaly stages), built on first use."""
        if self._transactions is None:
            self._transactions = TransactionPipeline.from_settings(self.settings)
            instrument_stages(self._transactions, self.metrics)
        return self._transactions

    async def run(
        self,
        records: Iterable[RecordLike],
        on_batch: Callable[[Outcome, RunReport], None] | None = None,
        *,
        topic: str = PRICES,
    ) -> RunReport:
        """Process every record of ``topic`` (``prices`` or ``transactions``); ``on_batch``
        is called after each micro-batch (progress, UI).

        The first run of a runner starts ``alerts.jsonl`` and ``dead_letters.jsonl``
        afresh; later runs (the other topic) append to them, as both topics' alerts go to
        one Redis stream.
        """
        if topic not in (PRICES, TRANSACTIONS):
            raise ValueError(f"topic must be {PRICES!r} or {TRANSACTIONS!r}, not {topic!r}")
        pipeline = self.pipeline if topic == PRICES else self.transactions
        report = RunReport(
            topic=topic,
            alerts_path=self.out_dir / "alerts.jsonl",
            dead_letters_path=self.out_dir / "dead_letters.jsonl",
        )
        fresh = self._runs == 0
        self._runs += 1
        files = JsonlSink(self.out_dir, truncate=fresh)
        dead = DeadLetterFile(report.dead_letters_path, truncate=fresh)
        sinks: list[Sink] = [files]
        if self.settings.redis.dsn:
            redis_sink = RedisSink.from_settings(self.settings, self.metrics)
            await redis_sink.check()
            sinks.append(redis_sink)
        started = time.perf_counter()
        try:
            for batch in _batches(records, self.batch_size):
                outcome = pipeline.process(batch, now_ms=now_ms())
                if isinstance(outcome, PriceOutcome):
                    self.metrics.record_prices(outcome)
                    self.metrics.record_book(self.pipeline, outcome.step.slots)
                else:
                    self.metrics.record_transactions(outcome)
                latest = [s.latest() for s in outcome.snapshots] + outcome.latest
                for sink in sinks:
                    result = await sink.write(latest=latest, alerts=outcome.alerts)
                    if sink is files:
                        report.alerts += result.alerts_written
                dead.write_letters(outcome.dead_letters)
                self._account(report, outcome)
                if on_batch is not None:
                    on_batch(outcome, report)
                if self.rate is not None:
                    due = started + (report.received / self.rate)
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))
                else:
                    await asyncio.sleep(0)
        finally:
            report.seconds = time.perf_counter() - started
            dead.close()
            for sink in sinks:
                await sink.close()
        return report

    @staticmethod
    def _account(report: RunReport, outcome: Outcome) -> None:
        report.received += outcome.received
        report.accepted += outcome.accepted
        for letter in outcome.dead_letters:
            report.dead_letters[letter.reason.value] = (
                report.dead_letters.get(letter.reason.value, 0) + 1
            )
        if not isinstance(outcome, PriceOutcome):
            return
        for snap in outcome.snapshots:
            report.symbols[snap.symbol] = SymbolSummary(
                ticks=snap.n_ticks,
                price=snap.price,
                sigma=snap.sigma,
                var=dict(snap.var),
                tested={level: t for level, (t, _) in snap.backtest.items()},
                breaches={level: x for level, (_, x) in snap.backtest.items()},
            )


def _batches(records: Iterable[RecordLike], size: int) -> Iterator[list[RecordLike]]:
    batch: list[RecordLike] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
