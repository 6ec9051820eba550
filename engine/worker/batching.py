"""Micro-batch delivery for Faust: whole Kafka fetches in, ``take(max_, within)`` out.

Why this exists (measured on this project's machine, see docs/benchmarks/index.md): a
faust-streaming agent reading ``stream.take(...)`` tops out near 17,000 messages/s
while doing *nothing*, because faust wraps every message in an ``Event`` and spends
several asyncio tasks on each (``wait_first`` in the consumer's drain loop and again in
the stream iterator). riskstream's work per tick is about 2 microseconds, so the
framework, not the risk core, would be the bottleneck.

:class:`BatchingConsumer` keeps everything else of faust's aiokafka consumer (group
membership, the co-partitioning assignor, table recovery, offset commits, rebalance
handling) and changes three things. First, for topics registered as *batch topics*, each fetched
partition chunk is handed over whole, as a :class:`Chunk`, to that topic's
:class:`BatchChannel`. A processing task reads micro-batches with
:meth:`BatchChannel.take`, which has the contract of faust's ``stream.take``: up to
``max_`` records, waiting at most ``within`` seconds to fill, and records are acked
only after the consumer of the batch returns (at-least-once). Second, its fetcher does
not long-poll the broker while fetched records wait to be processed
(:class:`BusyAwareFetcher`): aiokafka's did, and a worker catching up on a backlog
waited for its fetches 0.45-0.94 s in every ~1.7 s (docs/benchmarks/index.md, steps 5 and 6).
Third, it lets Kafka's ``fetch.max.wait.ms``, the long poll of an idle worker, be set
(``RISKSTREAM_FETCH_MAX_WAIT_MS``; faust fixes it at 1,500 ms,
:class:`BatchingConsumerThread`).

What callers can rely on:

* records of one partition arrive in offset order, never interleaved out of order;
* a chunk is processed only in the consumer generation it was fetched in and while
  flow is active, never during or across a rebalance; the rebalance path waits for
  the batch in flight, then drops queued chunks. Nothing dropped is lost: when a
  rebalance ends, every stream partition is sought back to its committed offset, or to
  its beginning where nothing is committed yet (:meth:`BatchingConsumer.perform_seek`);
* a record may be *delivered* twice (a chunk fetched just before that seek is
  fetched again after it); processors are idempotent, and acks are de-duplicated;
* offsets are committed only up to a checkpoint (:mod:`.processors`) whose outputs
  and state are durable: the writer acks them (:meth:`BatchingConsumer.ack`) once
  Redis and Kafka acknowledged everything up to it.

The queue is deliberately *not* one that faust clears when it resumes flow: faust
resumes flow at the end of recovery, after stream partitions were already resumed
and seeked, so a chunk fetched in between would be cleared and never fetched again
(observed here as records lost on worker start).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiokafka.consumer.fetcher import Fetcher
from faust.transport.drivers import aiokafka as faust_aiokafka

from engine.metrics import observe_latency
from engine.worker.membership import leave_as_static_member, use_static_membership

if TYPE_CHECKING:
    import faust

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Chunk:
    """Consecutive records of one topic partition from one fetch (aiokafka ``ConsumerRecord``)."""

    tp: Any
    records: Sequence[Any]
    generation: int

    @property
    def first_offset(self) -> int:
        return int(self.records[0].offset)

    @property
    def last_offset(self) -> int:
        return int(self.records[-1].offset)


class BatchChannel:
    """The chunks of one topic, waiting to be processed as micro-batches.

    Backed by faust's flow-controlled queue: puts block while flow is suspended. The
    worker clears it (:meth:`clear`) when partitions are revoked.
    """

    def __init__(
        self, app: faust.App, topic: str, *, max_chunks: int = 8, fetched_latency: Any = None
    ) -> None:
        self.app = app
        self.topic = topic
        self.queue = app.FlowControlQueue(maxsize=max_chunks, clear_on_resume=False)
        self.idle = asyncio.Event()
        self.idle.set()
        #: Histogram of record timestamp to hand-over here (``stage="fetched"``), or None.
        self.fetched_latency = fetched_latency

    async def put(self, chunk: Chunk) -> None:
        if self.fetched_latency is not None:
            observe_latency(self.fetched_latency, (chunk,), time.time() * 1000)
        await self.queue.put(chunk)

    def clear(self) -> int:
        """Drop every queued chunk (after partitions were revoked); returns how many.

        The chunks are taken out one by one, never with the queue's own ``clear()``:
        that cancels the puts waiting for room, and the fetcher waits in one whenever
        the channel is full. faust reads a cancelled fetcher during a rebalance as a
        fetcher to restart, finds no supervisor to restart it and crashes the worker
        (seen in the kill -9 and rolling-restart fault tests on a loaded machine). Here a
        waiting put completes instead; its chunk carries the old generation, so
        :meth:`take` drops it like any chunk fetched before the rebalance.
        """
        dropped = 0
        while True:
            try:
                self.queue.get_nowait()
            except asyncio.QueueEmpty:
                return dropped
            dropped += 1

    def _current(self, chunk: Chunk) -> bool:
        """Whether a chunk may be processed now: same generation, and no rebalance under way."""
        return chunk.generation == self.app.consumer_generation_id and self.app.consumer.flow_active

    async def take(
        self, max_: int, within: float, quiet: float | None = None
    ) -> AsyncIterator[list[Chunk]]:
        """Yield micro-batches: lists of chunks holding up to about ``max_`` records.

        A batch is yielded as soon as it holds ``max_`` records, or ``within`` seconds
        after its first chunk arrived, whichever comes first. With ``quiet``, an empty
        batch is yielded after every ``quiet`` seconds without input while flow is
        active (the processor checkpoints then). While the consumer of a batch runs,
        :attr:`idle` is clear (the rebalance path waits for it). Iterate it under
        ``contextlib.aclosing``: if the consumer raises, only closing the generator
        sets :attr:`idle` again.
        """
        queue = self.queue
        loop = asyncio.get_running_loop()
        while True:
            try:
                first = await asyncio.wait_for(queue.get(), quiet)  # None: no limit
            except TimeoutError:
                if self.app.consumer.flow_active:
                    with self._busy():
                        yield []
                continue
            if not self._current(first):
                continue
            with self._busy():
                batch = [first]
                size = len(first.records)
                deadline = loop.time() + within
                while size < max_:
                    try:
                        chunk = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        remaining = deadline - loop.time()
                        if remaining <= 0:
                            break
                        try:
                            chunk = await asyncio.wait_for(queue.get(), remaining)
                        except TimeoutError:
                            break
                    if self._current(chunk):
                        batch.append(chunk)
                        size += len(chunk.records)
                batch = [c for c in batch if self._current(c)]
                if batch:
                    yield batch

    @contextmanager
    def _busy(self) -> Iterator[None]:
        """:attr:`idle` is clear while a batch's consumer runs."""
        self.idle.clear()
        try:
            yield
        finally:
            self.idle.set()


class BatchingConsumer(faust_aiokafka.Consumer):
    """faust's aiokafka consumer, delivering batch topics chunk-wise (see module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Per batch-topic partition: one past the last offset acked (see :meth:`ack`).
        self._batch_marks: dict[Any, int] = {}
        #: Per batch-topic partition: one past the last offset whose batch was written
        #: (ahead of :attr:`_batch_marks` between checkpoints); for the lag.
        self._processed: dict[Any, int] = {}
        #: Batch-topic partitions this consumer held in an earlier generation (their fetch
        #: position may be past records it dropped at the revocation; :meth:`perform_seek`).
        self._held_before: set[Any] = set()

    def batch_channels(self) -> dict[str, BatchChannel]:
        return getattr(self.app, "batch_channels", {})

    def ack(self, offsets: Mapping[Any, int]) -> None:
        """Make these positions committable (per topic partition, one past the last offset
        covered); faust commits them on its schedule.

        Positions of a partition are acked in order (the writer acks checkpoints in order),
        so a partition's committable position is simply the highest acked: a high-water
        mark per partition instead of faust's list and set of every acked offset, which it
        sorts and walks at each commit. Offsets skipped between fetched chunks
        (transaction markers, compacted records) were read past, so they are covered. A
        position acked twice moves nothing (the mark only grows).
        """
        marks = self._batch_marks
        for tp, following in offsets.items():
            if following > marks.get(tp, -1):
                marks[tp] = following

    def mark_processed(self, chunks: Sequence[Chunk]) -> dict[Any, int]:
        """Note that these chunks' outputs are written (the lag counts from here); returns
        the processed position (one past the last offset) of each partition they moved."""
        done = self._processed
        moved = {}
        for chunk in chunks:
            following = chunk.last_offset + 1
            if following > done.get(chunk.tp, -1):
                done[chunk.tp] = moved[chunk.tp] = following
        return moved

    async def lag(self, topics: Sequence[str]) -> dict[Any, int]:
        """Records beyond what was processed, per assigned partition of ``topics``.

        The end offsets come from the broker (one ListOffsets request), so the lag keeps
        growing while processing is stalled; the processed position is one past the last
        offset whose batch was written, else the committed offset (partitions with neither
        are left out).
        """
        tps = [tp for tp in self.assignment() if tp.topic in topics]
        if not tps:
            return {}
        ends = await self.highwaters(*tps)
        out = {}
        for tp in tps:
            done = self._processed.get(tp)
            if done is None:
                done = self._committed_offset.get(tp)
            end = ends.get(tp)
            if done is not None and end is not None:
                out[tp] = max(0, int(end) - int(done))
        return out

    def _filter_tps_with_pending_acks(self, topics: Any = None) -> Any:
        yield from super()._filter_tps_with_pending_acks(topics)
        for tp in list(self._batch_marks):
            if topics is None or tp in topics or tp.topic in topics:
                yield tp

    def _new_offset(self, tp: Any) -> int | None:
        mark = self._batch_marks.get(tp)
        if mark is None:
            return super()._new_offset(tp)
        committed = self._committed_offset[tp]
        return mark if committed is None or mark > committed else None

    async def on_partitions_revoked(self, revoked: Any) -> None:
        channels = self.batch_channels()
        for tp in revoked:
            self._batch_marks.pop(tp, None)
            self._processed.pop(tp, None)
            if tp.topic in channels:
                self._held_before.add(tp)
        await super().on_partitions_revoked(revoked)

    async def perform_seek(self) -> None:
        """faust's seek to the committed offsets, and to the first offset where none is committed.

        aiokafka's ``seek_to_committed`` only seeks partitions with a committed offset above
        0 and leaves the others wherever the fetcher had got to. Records fetched there in
        the previous generation and dropped with it (module docstring) would then never be
        read again: the fault suite found the first records of a young stream's partitions
        skipped when a second worker joined before anything was committed. Seeking those
        partitions to their beginning is what ``auto_offset_reset="earliest"`` promises.

        Only partitions this consumer held in an earlier generation can have been fetched
        from: a partition it never held starts at the beginning anyway. The seek waits for
        the fetch in flight (up to ``fetch.max.wait.ms``, 1.5 s, on partitions with nothing
        new), so a freshly started or restarted worker no longer pays it.
        """
        await super().perform_seek()
        uncommitted = self.to_rewind()
        if uncommitted:
            log.info("no committed offset: reading %s from the beginning", sorted(uncommitted))
            await self._thread.seek_to_beginning(
                *map(faust_aiokafka.ensure_aiokafka_TP, uncommitted)
            )

    def to_rewind(self) -> list[Any]:
        """Assigned batch-topic partitions without a committed offset that this consumer
        held in an earlier generation: the ones :meth:`perform_seek` seeks to their start."""
        channels = self.batch_channels()
        return [
            tp
            for tp in self.assignment()
            if tp.topic in channels
            and not self._committed_offset.get(tp)
            and tp in self._held_before
        ]

    async def commit(self, *args: Any, **kwargs: Any) -> bool:
        """faust's commit, timed (a commit slower than half a second is logged); none once
        the worker crashed.

        A crash marks every service of the app crashed, the consumer thread included, and
        a commit is a call into that thread: it would never be answered, and the crashed
        worker would hang in its stop (faust commits in "Wait for streams...") instead of
        exiting, whenever an acked checkpoint was still uncommitted. Found by the
        processing-failure fault test (a stack dump of the hung worker, mode's SIGUSR1).
        Skipping it loses nothing: the restart replays from the last commit, as after a kill.
        """
        if self.app.crashed or self._thread.crashed:
            log.warning(
                "not committing: the worker crashed; its restart replays from the last commit"
            )
            return False
        started = time.perf_counter()
        try:
            return await super().commit(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - started
            if elapsed > 0.5:
                log.warning("offset commit took %.2fs", elapsed)

    async def wait_empty(self) -> None:
        """Before a stop or a rebalance commits: wait for in-flight micro-batches, write a
        checkpoint of everything processed, wait for those writes, then for faust's own
        in-flight events."""
        for channel in self.batch_channels().values():
            await channel.idle.wait()
        settle = getattr(self.app, "batch_settle", None)  # RiskWorker._settle
        if settle is not None:
            await settle()
        await super().wait_empty()

    def _new_consumer_thread(self) -> BatchingConsumerThread:
        return BatchingConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _drain_messages(
        self, fetcher: Any
    ) -> None:  # pragma: no cover - exercised end to end
        """Fetch loop: batch topics chunk-wise, any other topic through faust's per-message path."""
        channels = self.batch_channels()
        callback = self.callback
        consumer_stopped = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                records, active = await self._wait_next_records(1.0)
                if not records or self.should_stop:
                    continue
                if not self.flow_active:
                    # A rebalance started after the fetch: drop it, re-read from committed offsets.
                    await self.perform_seek()
                    continue
                generation = self.app.consumer_generation_id
                for tp, batch in records.items():
                    if (
                        active is not None
                        and tp not in active
                        and tp not in self._buffered_partitions
                    ):
                        continue
                    if self.app.consumer_generation_id != generation or not self.flow_active:
                        break
                    self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                    channel = channels.get(tp.topic)
                    if channel is not None:
                        # No read-offset filter, unlike faust's per-message path: after a
                        # seek to committed offsets the re-read must go through, and a
                        # record delivered twice is harmless (see module docstring).
                        await channel.put(Chunk(tp, batch, generation))
                    else:
                        await self._deliver_per_message(tp, batch, callback)
                # Unlike faust's loop, no commit here: a commit waits for the producer to
                # flush and must not stall fetching. faust's periodic commit task commits.
                await asyncio.sleep(0)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                log.info("consumer stopped, shutting down")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise

    async def _deliver_per_message(self, tp: Any, batch: Sequence[Any], callback: Any) -> None:
        """faust's own path, for topics that are not batch topics (e.g. agents, if any)."""
        read_offset = self._read_offset
        floor = read_offset[tp]
        for record in batch:
            if floor is None or record.offset >= floor:
                await callback(self._to_message(tp, record))
                read_offset[tp] = record.offset


#: Longest a fetch waits on the broker while records of other partitions of the same
#: broker wait to be processed (milliseconds); see :class:`BusyAwareFetcher`.
BUSY_FETCH_WAIT_MS = 20


class BusyAwareFetcher(Fetcher):
    """aiokafka's fetcher, which does not long-poll a broker while the worker has work from it.

    aiokafka keeps one fetch in flight per broker and leaves out of it the partitions
    whose fetched records are still waiting to be processed (after 100 ms it stops
    waiting for them and fetches the others). When the others are quiet (an idle topic,
    a partition at its end), that fetch waits ``fetch_max_wait_ms`` on the broker, and
    the busy partitions, drained meanwhile, cannot be fetched until it returns: a
    worker catching up on a backlog in one topic, with another topic idle, sat idle for
    0.45-0.94 s about every 1.7 s (``bench e2e``, 1,000,000 ticks, the default 1,500 ms).

    Here such a fetch waits at most :data:`BUSY_FETCH_WAIT_MS`; a fetch while nothing
    is waiting to be processed still long-polls for the configured time, so an idle
    worker does not poll the broker faster than before. Only records that are being
    consumed count: while faust recovers tables it leaves the stream partitions out of
    what it consumes (``is_consumed``), and their fetched records wait for the recovery,
    not for the worker, so the changelogs' fetches keep the configured long poll then,
    as before. Which records wait is aiokafka's ``_records`` (partition to fetched
    records), read as aiokafka reads it.
    """

    #: Whether a partition's fetched records are being consumed (called on the fetcher's
    #: thread); None: every partition aiokafka has not paused.
    is_consumed: Callable[[Any], bool] | None = None

    def _consumed(self, assignment: Any, tp: Any) -> bool:
        if self.is_consumed is not None:
            return self.is_consumed(tp)
        state = assignment.state_value(tp)
        return state is None or not state.paused

    def _get_actions_per_node(self, assignment: Any) -> Any:
        fetches, *rest = super()._get_actions_per_node(assignment)
        if fetches and self._records:
            busy = {
                self._select_read_replica(tp)
                for tp in self._records
                if self._consumed(assignment, tp)
            }
            for node_id, request in fetches:
                if node_id in busy:
                    request._max_wait_ms = min(request._max_wait_ms, BUSY_FETCH_WAIT_MS)
        return (fetches, *rest)


def use_busy_aware_fetcher(
    consumer: Any, is_consumed: Callable[[Any], bool] | None = None
) -> BusyAwareFetcher:
    """Give a started aiokafka consumer the :class:`BusyAwareFetcher` (before it is assigned
    partitions: aiokafka offers no way to choose the class, so the instance is re-classed)."""
    fetcher = consumer._fetcher
    if type(fetcher) is not Fetcher:
        raise TypeError(f"expected aiokafka's Fetcher, the consumer has {type(fetcher).__name__}")
    fetcher.__class__ = BusyAwareFetcher
    fetcher.is_consumed = is_consumed
    return fetcher


class BatchingConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """faust's consumer thread, with the app's ``fetch_max_wait_ms`` instead of faust's 1,500,
    a fetcher that does not long-poll while fetched records wait (:class:`BusyAwareFetcher`),
    static group membership when the app has a ``group_instance_id`` (:mod:`.membership`),
    and a livelock check that survives a partition whose position is being reset.

    For the check, see :meth:`verify_event_path`.
    """

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        wait_ms = getattr(self.app, "fetch_max_wait_ms", None)
        if wait_ms is not None:
            # Read by AIOKafkaConsumer.start() when it creates its fetcher; faust passes
            # no way to set it.
            consumer._fetch_max_wait_ms = int(wait_ms)
        instance_id = getattr(self.app, "group_instance_id", None)
        if instance_id:
            use_static_membership(consumer, instance_id)
        return consumer

    async def on_start(self) -> None:
        """Start aiokafka's consumer (faust), then give it the :class:`BusyAwareFetcher`.

        aiokafka creates its fetcher in ``start()`` and offers no way to choose its
        class; the fetcher's loop waits for a partition assignment, which comes only
        after faust subscribes, later, so no fetch has been planned yet.
        """
        await super().on_start()
        use_busy_aware_fetcher(self._consumer, self._is_active)
        leave_as_static_member(self._consumer)

    def _is_active(self, tp: Any) -> bool:
        """Whether faust consumes ``tp`` now (its active partitions; read from this
        thread, a membership test only, as faust's own fetch path reads them)."""
        active = self.consumer._active_partitions
        return active is not None and tp in active

    def verify_event_path(self, now: float, tp: Any) -> None:
        """faust's periodic livelock check, skipped for a partition with no fetch position.

        After a leader change (a paused or killed broker) aiokafka resets a partition's
        position; faust's check read ``position`` in between, failed aiokafka's assertion
        and crashed the worker (seen once in the broker_paused fault test). A partition
        waiting for its position has no stream side to check yet; its fetch side (faust's
        check that aiokafka still sends fetch requests for it) reads no position and runs.
        """
        if not self._has_position(tp):
            self._verify_aiokafka_event_path(now, tp)
            return None
        return super().verify_event_path(now, tp)

    def close(self) -> None:
        """faust's answer to a rebalance that reaches a stopping worker; here, nothing.

        faust calls this (``App._on_rebalance_when_stopped``) from the rebalance callback.
        Its version closes aiokafka's client and group coordinator, but schedules both
        on the app's event loop while they live on this thread's: the rebalance's next
        request (OffsetFetch) finds its connection closed and marks the coordinator dead,
        the coordinator counts as closing so it never looks for another, and the stop's
        final offset commit retried for ever: the worker ignored SIGTERM until killed
        (``test_worker_stopped_while_the_group_rebalances``; first seen in ``bench
        compare``). Doing nothing lets aiokafka finish the rebalance; the stop then
        commits only partitions this member holds in the new generation (faust filters
        commits by assignment) and the consumer's own stop leaves the group, on this
        thread's loop.
        """
        log.info("a rebalance reached the stopping worker; it leaves the group when it stops")

    def _stopped_set(self) -> None:
        """mode's last step of stopping this service: set its ``stopped`` flag on the
        thread's loop; nothing once that loop is closed.

        When the worker crashes, this thread's loop can end with the crash before the
        consumer stops it; mode then scheduled the flag on the closed loop and logged
        ``RuntimeError('Event loop is closed')`` at ERROR from every crashed worker's
        stop (the processing-failure fault test). Nothing can wait on a closed loop.
        """
        if not self.thread_loop.is_closed():
            super()._stopped_set()

    def _has_position(self, tp: Any) -> bool:
        """Whether aiokafka holds a fetch position for ``tp`` (not while resetting it)."""
        consumer = self._consumer
        subscription = consumer._subscription.subscription if consumer is not None else None
        assignment = subscription.assignment if subscription is not None else None
        if assignment is None:
            return True  # faust's own check reports a missing assignment
        state = assignment.state_value(faust_aiokafka.ensure_aiokafka_TP(tp))
        return state is None or state.has_valid_position


class BatchingTransport(faust_aiokafka.Transport):
    """faust's aiokafka transport with :class:`BatchingConsumer`."""

    Consumer = BatchingConsumer
