"""What the worker computes for one micro-batch of a topic.

For each batch, in this order (the order is what makes delivery safe):

1. drop records at or below the partition's *watermark* (the last offset whose batch
   was completed): Kafka redelivers them after a restart, and they were fully handled;
2. run the pure pipeline (:mod:`engine.pipeline`), restoring unseen keys' state from
   the Faust table, and update the table's in-memory rows and watermarks;
3. return an :class:`~engine.worker.writer.OutputJob` with everything the batch
   writes: Redis (latest state, alerts), ``risk.updates``, dead letters, and the state
   rows and watermarks for the table's changelog (same partition as the source).

The :class:`~engine.worker.writer.OrderedWriter` writes jobs in order and acks a
batch's offsets only once all of it is durable. A crash before that replays the batch:
the per-key offsets in the state rows (:mod:`engine.core.sequencer`) make the replay a
no-op for state, and deterministic alert ids make it a no-op for alerts. Dead letters
may be written twice if a crash falls between their write and the ack; they carry
their source coordinates in headers to tell.

``risk.updates`` records go to the same partition number as the symbol's ``prices``
records (the topics are created with equal partition counts).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from engine.metrics import Metrics, observe_latency
from engine.pipeline import PricePipeline, TransactionPipeline
from engine.records import DeadLetter
from engine.timeutil import now_ms
from engine.topics import PRICES, RISK_UPDATES, TRANSACTIONS
from engine.worker.batching import Chunk
from engine.worker.writer import OutputJob

if TYPE_CHECKING:
    import faust

#: Table key of a partition's watermark. Control characters cannot appear in a symbol or
#: customer id (validation refuses them), so these keys never collide with real keys.
WATERMARK_KEY = "\x00watermark:{}"


class TopicProcessor:
    """The shared batch procedure (module docstring); subclasses say what to compute and write."""

    topic: str

    def __init__(self, *, table: faust.Table, metrics: Metrics, dlq_partitions: int) -> None:
        self.table = table
        self.metrics = metrics
        self.dlq_partitions = dlq_partitions
        self.changelog = table.changelog_topic.get_topic_name()

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

    def _persist(
        self, job: OutputJob, rows: Sequence[tuple[str, int, bytes | None]], chunks: Sequence[Chunk]
    ) -> None:
        """Update the table in memory now; queue the changelog records in the job."""
        data = self.table.data
        dumps = orjson.dumps  # the table's str keys are JSON on the changelog (faust's json codec)
        for key, partition, row in rows:
            if row is None:  # a ring block that fell out of its ring: delete (tombstone)
                data.pop(key, None)
            else:
                data[key] = row
            job.send(self.changelog, partition, dumps(key), row)
        last: dict[int, int] = {}
        for chunk in chunks:
            last[chunk.tp.partition] = max(last.get(chunk.tp.partition, -1), chunk.last_offset)
        for partition, offset in last.items():
            key = WATERMARK_KEY.format(partition)
            value = str(offset).encode()
            data[key] = value
            job.send(self.changelog, partition, dumps(key), value)

    def _dead_letters(self, job: OutputJob, letters: Sequence[DeadLetter]) -> None:
        for letter in letters:
            job.send(
                letter.dlq_topic,
                letter.partition % self.dlq_partitions,
                letter.key,
                letter.value,
                letter.headers(),
            )

    def handle(self, chunks: Sequence[Chunk]) -> OutputJob:
        """Compute one micro-batch (module docstring, steps 1-3)."""
        started = time.perf_counter()
        job = OutputJob(chunks)
        records, replayed = self._fresh(chunks)
        if replayed:
            self.metrics.events_processed.labels(self.topic, "replayed").inc(replayed)
        rows: Sequence[tuple[str, int, bytes | None]] = ()
        if records:
            rows = self.compute(records, job)
        self._persist(job, rows, chunks)
        self.metrics.batch_seconds.labels(self.topic).observe(time.perf_counter() - started)
        observe_latency(
            self.metrics.event_latency.labels(self.topic, "processed"), chunks, time.time() * 1000
        )
        return job

    def compute(
        self, records: list[Any], job: OutputJob
    ) -> Sequence[tuple[str, int, bytes | None]]:
        """Run the pipeline, fill ``job`` with its outputs, return the state rows to persist."""
        raise NotImplementedError


class PriceProcessor(TopicProcessor):
    """Prices: latest risk to Redis and ``risk.updates``, VaR-breach alerts to Redis."""

    topic = PRICES

    def __init__(self, pipeline: PricePipeline, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pipeline = pipeline

    def compute(
        self, records: list[Any], job: OutputJob
    ) -> Sequence[tuple[str, int, bytes | None]]:
        outcome = self.pipeline.process(records, now_ms=now_ms(), load_row=self._load_row)
        self.metrics.record_prices(outcome)
        self.metrics.record_book(self.pipeline, outcome.step.slots)
        job.latest = [snap.latest() for snap in outcome.snapshots] + outcome.latest
        job.alerts = outcome.alerts
        partition_of = {key: partition for key, partition, _ in outcome.rows}
        for snap in outcome.snapshots:
            job.send(
                RISK_UPDATES,
                partition_of[snap.symbol],
                snap.symbol.encode("utf-8"),
                orjson.dumps(snap.to_json()),
            )
        self._dead_letters(job, outcome.dead_letters)
        return outcome.rows


class TransactionProcessor(TopicProcessor):
    """Transactions: customer profiles (and, with later models, alerts) to Redis."""

    topic = TRANSACTIONS

    def __init__(self, pipeline: TransactionPipeline, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pipeline = pipeline

    def compute(
        self, records: list[Any], job: OutputJob
    ) -> Sequence[tuple[str, int, bytes | None]]:
        outcome = self.pipeline.process(records, now_ms=now_ms(), load_row=self._load_row)
        self.metrics.record_transactions(outcome)
        self.metrics.customers.set(len(self.pipeline.book))
        job.latest = [snap.latest() for snap in outcome.snapshots] + outcome.latest
        job.alerts = outcome.alerts
        self._dead_letters(job, outcome.dead_letters)
        return outcome.rows
