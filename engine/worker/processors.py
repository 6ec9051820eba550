"""What the worker does with one micro-batch of a topic.

For each batch, in this order (the order is what makes delivery safe):

1. drop records at or below the partition's *watermark* (the last offset whose batch
   completed): Kafka redelivers them after a restart, and they were fully handled;
2. run the pure pipeline (:mod:`engine.pipeline`), restoring unseen keys' state from
   the Faust table;
3. write the results that leave the worker: Redis (latest state, alerts, idempotent),
   ``risk.updates`` and dead letters to Kafka;
4. persist the touched keys' state rows, then the partition watermarks, to the Faust
   table (its changelog partition equals the source partition);
5. return, so the caller acks the offsets; faust flushes the producer before it
   commits them.

A crash anywhere before 5 replays the batch. The per-key offsets inside the state rows
(:mod:`engine.core.sequencer`) make the replay a no-op for state; deterministic alert
ids make it a no-op for alerts. Dead letters may be written twice in the narrow window
between 3 and 4; they carry their source coordinates in headers to tell.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from engine.metrics import Metrics
from engine.pipeline import PriceOutcome, PricePipeline, TransactionOutcome, TransactionPipeline
from engine.records import DeadLetter
from engine.sinks.redis import RedisSink
from engine.timeutil import now_ms
from engine.topics import PRICES, RISK_UPDATES, TRANSACTIONS
from engine.worker.batching import Chunk

if TYPE_CHECKING:
    import faust

log = logging.getLogger(__name__)

#: Table key of a partition's watermark. Control characters cannot appear in a symbol or
#: customer id (validation refuses them), so these keys never collide with real keys.
WATERMARK_KEY = "\x00watermark:{}"


class KafkaOutputs:
    """``risk.updates`` and the dead-letter topics, sent through faust's producer."""

    def __init__(self, app: faust.App) -> None:
        raw = {"key_serializer": "raw", "value_serializer": "raw"}
        self.updates = app.topic(RISK_UPDATES, **raw)
        self.dlq = {topic: app.topic(f"{topic}.dlq", **raw) for topic in (PRICES, TRANSACTIONS)}

    def risk_updates(self, snapshots: Sequence[Any]) -> None:
        send = self.updates.send_soon
        for snap in snapshots:
            send(key=snap.symbol.encode("utf-8"), value=orjson.dumps(snap.to_json()))

    def dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        for letter in letters:
            self.dlq[letter.topic].send_soon(
                key=letter.key, value=letter.value, headers=letter.headers()
            )


class TopicProcessor:
    """The shared batch procedure (module docstring); subclasses say what to write."""

    topic: str

    def __init__(
        self, *, table: faust.Table, outputs: KafkaOutputs, sink: RedisSink | None, metrics: Metrics
    ) -> None:
        self.table = table
        self.outputs = outputs
        self.sink = sink
        self.metrics = metrics

    def _load_row(self, key: str) -> bytes | None:
        return self.table.data.get(key)

    def _watermark(self, partition: int) -> int:
        saved = self.table.data.get(WATERMARK_KEY.format(partition))
        return int(saved) if saved is not None else -1

    def _fresh(self, chunks: Sequence[Chunk]) -> tuple[list[Any], int]:
        """Records beyond their partition's watermark, and how many were dropped as replays."""
        fresh: list[Any] = []
        replayed = 0
        for chunk in chunks:
            mark = self._watermark(chunk.tp.partition)
            if chunk.first_offset > mark:
                fresh += chunk.records
            else:
                kept = [r for r in chunk.records if r.offset > mark]
                replayed += len(chunk.records) - len(kept)
                fresh += kept
        return fresh, replayed

    def _persist(self, rows: Sequence[tuple[str, int, bytes]], chunks: Sequence[Chunk]) -> None:
        data = self.table.data
        send = self.table.send_changelog
        for key, partition, row in rows:
            data[key] = row
            send(partition, key, row)
        last: dict[int, int] = {}
        for chunk in chunks:
            last[chunk.tp.partition] = max(last.get(chunk.tp.partition, -1), chunk.last_offset)
        for partition, offset in last.items():
            key = WATERMARK_KEY.format(partition)
            value = str(offset).encode()
            data[key] = value
            send(partition, key, value)

    async def handle(self, chunks: Sequence[Chunk]) -> None:
        """Process one micro-batch (the steps of the module docstring)."""
        started = time.perf_counter()
        records, replayed = self._fresh(chunks)
        if replayed:
            self.metrics.events_processed.labels(self.topic, "replayed").inc(replayed)
        rows: Sequence[tuple[str, int, bytes]] = ()
        if records:
            outcome = self.process(records)
            await self.write(outcome)
            self.outputs.dead_letters(outcome.dead_letters)
            rows = outcome.rows
        self._persist(rows, chunks)
        self.metrics.batch_seconds.labels(self.topic).observe(time.perf_counter() - started)

    def process(self, records: list[Any]) -> Any:
        raise NotImplementedError

    async def write(self, outcome: Any) -> None:
        raise NotImplementedError


class PriceProcessor(TopicProcessor):
    """Prices: latest risk to Redis and ``risk.updates``, VaR-breach alerts to Redis."""

    topic = PRICES

    def __init__(self, pipeline: PricePipeline, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pipeline = pipeline

    def process(self, records: list[Any]) -> PriceOutcome:
        outcome = self.pipeline.process(records, now_ms=now_ms(), load_row=self._load_row)
        self.metrics.record_prices(outcome, self.pipeline.book.model_name)
        self.metrics.symbols.set(len(self.pipeline.book))
        return outcome

    async def write(self, outcome: PriceOutcome) -> None:
        if self.sink is not None:
            await self.sink.write(snapshots=outcome.snapshots, alerts=outcome.alerts)
        self.outputs.risk_updates(outcome.snapshots)


class TransactionProcessor(TopicProcessor):
    """Transactions: customer profiles (and, with later models, alerts) to Redis."""

    topic = TRANSACTIONS

    def __init__(self, pipeline: TransactionPipeline, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pipeline = pipeline

    def process(self, records: list[Any]) -> TransactionOutcome:
        outcome = self.pipeline.process(records, now_ms=now_ms(), load_row=self._load_row)
        self.metrics.record_transactions(outcome)
        self.metrics.customers.set(len(self.pipeline.book))
        return outcome

    async def write(self, outcome: TransactionOutcome) -> None:
        if self.sink is not None:
            await self.sink.write(customers=outcome.snapshots, alerts=outcome.alerts)
