"""The output stage of the worker: writes each micro-batch's results, in order, then acks it.

Processing (CPU) and writing (waiting on Redis and Kafka) overlap: while batch N's
outputs are being written, batch N+1 is already being computed. What stays strict:

* outputs are written in batch order, by one task per topic: Redis first (latest state,
  alerts), then Kafka (``risk.updates``, dead letters, state changelog), the Kafka
  records handed to the producer in order;
* a checkpoint's offsets (:attr:`OutputJob.commit`) are acked only after Redis confirmed
  and Kafka acknowledged every record of its job and of every job before it, so a commit
  never runs ahead of durable outputs and state. Waiting for Kafka's
  acknowledgement happens in a second task, in batch order, so it overlaps with the next
  batch's Redis write instead of delaying it;
* the queues between the stages are bounded (``depth`` batches): a slow Redis or Kafka
  slows consumption instead of growing memory.

Kafka records go through aiokafka's batch API (``create_batch``/``send_batch``), one
batch per topic partition per micro-batch, rather than faust's ``send_soon``: faust
drains its producer buffer one message at a time, and a commit waits for that buffer,
which measured here stalled fetching for over a second per commit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.alerts import Alert
from engine.metrics import Metrics, observe_latency
from engine.sinks.base import Sink
from engine.stages import LatestState

if TYPE_CHECKING:
    import faust

    from engine.worker.batching import BatchingConsumer, Chunk

log = logging.getLogger(__name__)

KafkaRecord = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]


@dataclass(slots=True)
class OutputJob:
    """Everything one micro-batch writes, and what to commit once it is written."""

    chunks: Sequence[Chunk]
    """The batch's input (for the processed position and latency); empty for a checkpoint
    written while the input is quiet."""
    commit: dict[Any, int] = field(default_factory=dict)
    """Per topic partition, the offset to commit once this job is durable (one past the
    last record its checkpoint covers); empty when the job carries no checkpoint."""
    latest: Sequence[LatestState] = ()
    alerts: Sequence[Alert] = ()
    alerts_ready: asyncio.Future[list[Alert]] | None = None
    """When set, the alerts to write instead of ``alerts``: the same alerts with their SHAP
    attributions, computed meanwhile by :mod:`engine.explain.service`."""
    kafka: dict[tuple[str, int], list[KafkaRecord]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def send(
        self,
        topic: str,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Queue one Kafka record for an explicit partition."""
        self.kafka[(topic, partition)].append((key, value, headers or []))


class OrderedWriter:
    """Writes :class:`OutputJob` s one at a time, in submission order, then acks them."""

    def __init__(
        self,
        app: faust.App,
        consumer: BatchingConsumer,
        sink: Sink | None,
        metrics: Metrics,
        topic: str,
        *,
        depth: int = 2,
    ) -> None:
        self.app = app
        self.consumer = consumer
        self.sink = sink
        self.metrics = metrics
        self.written_latency = metrics.event_latency.labels(topic, "written")
        self.queue: asyncio.Queue[OutputJob] = asyncio.Queue(maxsize=depth)
        self._acks: asyncio.Queue[tuple[OutputJob, list[asyncio.Future[Any]]]] = asyncio.Queue(
            maxsize=depth
        )
        self._partitions: dict[str, int] = {}
        self._turn = asyncio.Lock()
        #: Whether :meth:`run` is writing (false before it starts and after it failed).
        self.running = False

    async def submit(self, build: Callable[[], OutputJob | None]) -> None:
        """Build a job and hand it over; waits while ``depth`` jobs are pending (backpressure).

        Building happens in the submitter's turn, so jobs enter the queue in the order
        they were built, whichever task builds them (the processing loop, or the final
        checkpoint of a stop or rebalance): a checkpoint never overtakes an older one.
        ``build`` returning ``None`` submits nothing.
        """
        async with self._turn:
            job = build()
            if job is not None:
                await self.queue.put(job)

    async def drained(self) -> None:
        """Wait until every submitted job is written and acked."""
        await self.queue.join()
        await self._acks.join()

    async def run(self) -> None:
        """The writing and acking loops; an error propagates (the worker crashes, nothing more is acked)."""
        self.running = True
        try:
            await asyncio.gather(self._write_loop(), self._ack_loop())
        finally:
            self.running = False

    async def _write_loop(self) -> None:
        while True:
            job = await self.queue.get()
            try:
                alerts = await job.alerts_ready if job.alerts_ready is not None else job.alerts
                if self.sink is not None and (job.latest or alerts):
                    await self.sink.write(latest=job.latest, alerts=alerts)
                    observe_latency(self.written_latency, job.chunks, time.time() * 1000)
                self._record_lag(self.consumer.mark_processed(job.chunks))
                deliveries = await self._send(job.kafka) if job.kafka else []
                await self._acks.put((job, deliveries))
            finally:
                self.queue.task_done()

    async def _ack_loop(self) -> None:
        while True:
            job, deliveries = await self._acks.get()
            try:
                for delivery in deliveries:
                    await delivery
                if job.commit:
                    self.consumer.ack(job.commit)
            finally:
                self._acks.task_done()

    def _record_lag(self, processed: dict[Any, int]) -> None:
        """``riskstream_consumer_lag_records``: high watermark minus the next offset to process."""
        for tp, offset in processed.items():
            highwater = self.consumer.highwater(tp)
            if highwater is not None:
                self.metrics.record_lag(tp.topic, tp.partition, highwater - offset)

    async def partitions(self, topic: str) -> int:
        """Partition count of an output topic (metadata, cached)."""
        count = self._partitions.get(topic)
        if count is None:
            found = await self.app.producer._ensure_producer().partitions_for(topic)  # type: ignore[attr-defined]
            count = self._partitions[topic] = len(found)
        return count

    async def _send(
        self, records: dict[tuple[str, int], list[KafkaRecord]]
    ) -> list[asyncio.Future[Any]]:
        producer = self.app.producer._ensure_producer()  # type: ignore[attr-defined]
        deliveries = []
        for (topic, partition), items in records.items():
            batch = producer.create_batch()
            for key, value, headers in items:
                if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                    deliveries.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                        raise ValueError(
                            f"a record for {topic} is larger than the producer's batch size"
                        )
            deliveries.append(await producer.send_batch(batch, topic, partition=partition))
        return deliveries
