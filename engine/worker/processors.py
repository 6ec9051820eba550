"""What the worker computes for one micro-batch of a topic, and when it checkpoints.

For each batch, in this order (the order is what makes delivery safe):

1. drop records at or below the partition's *watermark* (the last offset processed):
   Kafka redelivers them after a rebalance, and they were fully handled;
2. run the pure pipeline (:mod:`engine.pipeline`), restoring unseen keys' state from
   the Faust table (as of the last checkpoint), and note the keys whose state changed;
3. return an :class:`~engine.worker.writer.OutputJob` with everything the batch
   writes: Redis (latest state, alerts), ``risk.updates`` and dead letters;
4. when a checkpoint is due (``RISKSTREAM_CHECKPOINT_MS`` after the previous one), the
   job also carries the checkpoint: the state row of every key changed since the
   previous checkpoint and each partition's watermark, for the table's changelog (same
   partition as the source, and into the table's memory now), and the input offsets
   the checkpoint covers, to commit.

The :class:`~engine.worker.writer.OrderedWriter` writes jobs in order and acks a
checkpoint's offsets only once it and every job before it are durable. Between
checkpoints nothing is committed, and the table holds the last checkpoint's state. A
graceful stop and a rebalance first write a checkpoint of everything processed
(:meth:`TopicProcessor.checkpoint_now`, from the consumer's ``wait_empty``), so
processing resumes exactly where it stopped. A crash resumes from the last checkpoint
(state, watermark and committed offsets agree there) and replays what followed, at
most one interval of input. Replays are harmless: the per-key
offsets in the state rows (:mod:`engine.core.sequencer`) drop records a state already
holds, deterministic alert ids make re-sent alerts no-ops, and Redis's latest state
only moves forward (``write_latest.lua``). ``risk.updates`` records and dead letters of
replayed batches are written again; dead letters carry their source coordinates in
headers to tell.

Checkpointing every micro-batch (``RISKSTREAM_CHECKPOINT_MS=0``) writes a busy key's
row (about 4 KB with every model) for every batch it appears in; at 5,000 ticks/s over
100 symbols that was ~3.5 KB of changelog per tick, about a third of the worker's CPU
per small batch and most of the broker's write load.

``risk.updates`` records go to the same partition number as the symbol's ``prices``
records (the topics are created with equal partition counts).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from engine.boundary.records import DeadLetter, Reason
from engine.boundary.timeutil import now_ms
from engine.kafka.topics import PRICES, RISK_UPDATES, TRANSACTIONS
from engine.metrics import Metrics, observe_latency
from engine.pipeline import PricePipeline, TransactionPipeline
from engine.worker.batching import Chunk
from engine.worker.writer import OutputJob

if TYPE_CHECKING:
    import faust

log = logging.getLogger(__name__)

#: Table key of a partition's watermark. Control characters cannot appear in a symbol or
#: customer id (validation refuses them), so these keys never collide with real keys.
WATERMARK_KEY = "\x00watermark:{}"


class TopicProcessor:
    """The shared batch procedure (module docstring); subclasses say what to compute and write."""

    topic: str
    pipeline: PricePipeline | TransactionPipeline

    def __init__(
        self,
        *,
        table: faust.Table,
        metrics: Metrics,
        dlq_partitions: int,
        checkpoint_s: float = 0.0,
        clock: Any = time.monotonic,
    ) -> None:
        self.table = table
        self.metrics = metrics
        self.dlq_partitions = dlq_partitions
        self.changelog = table.changelog_topic.get_topic_name()
        #: Seconds between checkpoints (0: every batch); ``clock`` is monotonic seconds.
        self.checkpoint_s = checkpoint_s
        self.clock = clock
        self._checkpointed_at = clock()
        #: Since the last checkpoint: slots changed, last offset per partition and per
        #: topic partition (what the checkpoint persists and commits).
        self._dirty: list[np.ndarray] = []
        self._through: dict[int, int] = {}
        self._covered: dict[Any, int] = {}

    def reset(self) -> None:
        """Forget everything since the last checkpoint (partitions revoked, book cleared):
        processing resumes from the checkpoint, as after a crash."""
        self._dirty.clear()
        self._through.clear()
        self._covered.clear()
        self._checkpointed_at = self.clock()

    @property
    def pending(self) -> bool:
        """Whether anything was processed since the last checkpoint."""
        return bool(self._covered)

    def _load_row(self, key: str) -> bytes | None:
        return self.table.data.get(key)

    def _watermark(self, partition: int) -> int:
        """Last offset of ``partition`` processed: since the checkpoint, else as of it."""
        through = self._through.get(partition)
        if through is not None:
            return through
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

    def _checkpoint(self, job: OutputJob) -> None:
        """Put the checkpoint in ``job``: changed rows and watermarks into the table's memory
        now and onto its changelog, and the offsets to commit once that is durable."""
        data = self.table.data
        dumps = orjson.dumps  # the table's str keys are JSON on the changelog (faust's json codec)
        if self._dirty:
            slots = np.unique(np.concatenate(self._dirty))
            for key, partition, row in self.pipeline.book.rows(slots):
                if row is None:  # a ring block that fell out of its ring: delete (tombstone)
                    data.pop(key, None)
                else:
                    data[key] = row
                job.send(self.changelog, partition, dumps(key), row)
        for partition, offset in self._through.items():
            key = WATERMARK_KEY.format(partition)
            value = str(offset).encode()
            data[key] = value
            job.send(self.changelog, partition, dumps(key), value)
        job.commit = dict(self._covered)
        self._dirty.clear()
        self._through.clear()
        self._covered.clear()
        self._checkpointed_at = self.clock()

    def _dead_letters(self, job: OutputJob, letters: Sequence[DeadLetter]) -> None:
        misplaced = [letter for letter in letters if letter.reason is Reason.WRONG_PARTITION]
        if misplaced:
            # Not a bad record but a misconfigured producer: every later record it sends for
            # these keys will be refused too, so say it loudly, once per batch.
            log.warning(
                "%d %s record(s) refused as wrong_partition, e.g. %s; a producer partitions "
                "keys differently from the one that sent them first (configure murmur2: "
                "see the operations docs)",
                len(misplaced),
                self.topic,
                misplaced[0].detail,
            )
        for letter in letters:
            job.send(
                letter.dlq_topic,
                letter.partition % self.dlq_partitions,
                letter.key,
                letter.value,
                letter.headers(),
            )

    def handle(self, chunks: Sequence[Chunk]) -> OutputJob | None:
        """Compute one micro-batch (module docstring, steps 1-4).

        An empty ``chunks`` (the input went quiet) only checkpoints, if anything since
        the last checkpoint waits for one and it is due; otherwise there is no job.
        """
        if not chunks:
            return self.checkpoint_now() if self._due() else None
        started = time.perf_counter()
        job = OutputJob(chunks)
        records, replayed = self._fresh(chunks)
        if replayed:
            self.metrics.events_processed.labels(self.topic, "replayed").inc(replayed)
        if records:
            self._dirty.append(self.compute(records, job))
        for chunk in chunks:
            partition, last = chunk.tp.partition, chunk.last_offset
            if last > self._watermark(partition):
                self._through[partition] = last
            if last + 1 > self._covered.get(chunk.tp, -1):
                self._covered[chunk.tp] = last + 1
        if self._due():
            self._checkpoint(job)
        self.metrics.batch_seconds.labels(self.topic).observe(time.perf_counter() - started)
        observe_latency(
            self.metrics.event_latency.labels(self.topic, "processed"), chunks, time.time() * 1000
        )
        return job

    def checkpoint_now(self) -> OutputJob | None:
        """A job carrying only a checkpoint of everything processed since the last one, due
        or not (the worker stops or its partitions are revoked); ``None`` if nothing waits."""
        if not self.pending:
            return None
        job = OutputJob(())
        self._checkpoint(job)
        return job

    def _due(self) -> bool:
        return self.clock() - self._checkpointed_at >= self.checkpoint_s

    def compute(self, records: list[Any], job: OutputJob) -> np.ndarray:
        """Run the pipeline, fill ``job`` with its outputs, return the slots whose state changed."""
        raise NotImplementedError


class PriceProcessor(TopicProcessor):
    """Prices: latest risk to Redis and ``risk.updates``, VaR-breach alerts to Redis."""

    topic = PRICES

    def __init__(self, pipeline: PricePipeline, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pipeline = pipeline

    def compute(self, records: list[Any], job: OutputJob) -> np.ndarray:
        outcome = self.pipeline.process(
            records, now_ms=now_ms(), load_row=self._load_row, persist=False
        )
        self.metrics.record_prices(outcome)
        self.metrics.record_book(self.pipeline, outcome.step.slots)
        job.latest = [snap.latest() for snap in outcome.snapshots] + outcome.latest
        job.alerts = outcome.alerts
        partition_of = self.pipeline.book.partition
        for snap in outcome.snapshots:
            job.send(
                RISK_UPDATES,
                partition_of(snap.symbol),
                snap.symbol.encode("utf-8"),
                orjson.dumps(snap.to_json()),
            )
        self._dead_letters(job, outcome.dead_letters)
        return outcome.touched


class TransactionProcessor(TopicProcessor):
    """Transactions: customer profiles (and, with later models, alerts) to Redis."""

    topic = TRANSACTIONS

    def __init__(self, pipeline: TransactionPipeline, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pipeline = pipeline

    def compute(self, records: list[Any], job: OutputJob) -> np.ndarray:
        outcome = self.pipeline.process(
            records, now_ms=now_ms(), load_row=self._load_row, persist=False
        )
        self.metrics.record_transactions(outcome)
        self.metrics.customers.set(len(self.pipeline.book))
        job.latest = [snap.latest() for snap in outcome.snapshots] + outcome.latest
        job.alerts = outcome.alerts
        self._dead_letters(job, outcome.dead_letters)
        return outcome.touched
