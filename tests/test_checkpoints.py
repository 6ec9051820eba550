"""The worker's checkpoints: when state reaches the changelog and offsets become committable.

A :class:`~engine.worker.processors.TopicProcessor` writes each micro-batch's outputs
at once, but a key's state row, the partition watermarks and the offsets to commit only
at a checkpoint (``RISKSTREAM_CHECKPOINT_MS``). What makes that safe, specified here:
the table holds exactly the last checkpoint, the checkpoint equals what checkpointing
after every batch would have written, and processing resumed from a checkpoint (after
a crash or a rebalance) ends in the same state and the same alerts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import orjson

from engine.boundary.schemas import PriceTick
from engine.config import Settings
from engine.metrics import Metrics
from engine.pipeline import PricePipeline
from engine.worker.batching import Chunk
from engine.worker.processors import WATERMARK_KEY, PriceProcessor
from engine.worker.writer import OutputJob

CHANGELOG = "prices-state-changelog"


class TP(NamedTuple):
    topic: str
    partition: int


@dataclass(frozen=True)
class Consumed:
    """A consumed Kafka record, as the worker sees it."""

    key: bytes | None
    value: bytes | None
    partition: int
    offset: int
    timestamp: int | None = None


class Changelog:
    """The part of a faust table a processor uses."""

    def get_topic_name(self) -> str:
        return CHANGELOG


class Table:
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.changelog_topic = Changelog()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def chunks(start: int, n: int, partition: int = 0) -> list[Chunk]:
    """``n`` ticks at offsets ``start..``: two symbols, a 10% fall on every 25th tick."""
    records = []
    for offset in range(start, start + n):
        symbol = ("SPX", "NDX")[offset % 2]
        price = 100.0 * (0.9 if offset % 25 == 24 else 1.0 + 0.001 * (offset % 3))
        tick = PriceTick(symbol, 1_600_000_000_000 + offset * 60_000, price)
        records.append(Consumed(tick.key, tick.to_json(), partition, offset))
    return [Chunk(TP("prices", partition), records, generation=1)]


def processor(checkpoint_s: float, clock: Clock | None = None) -> PriceProcessor:
    pipeline = PricePipeline.from_settings(
        Settings(warmup=5, vol_models=("ewma",), var_method="ewma-normal", anomaly_enabled=False)
    )
    return PriceProcessor(
        pipeline,
        table=Table(),
        metrics=Metrics(),
        dlq_partitions=1,
        checkpoint_s=checkpoint_s,
        clock=clock or Clock(),
    )


def changelog_keys(job: OutputJob) -> list[str]:
    return [
        orjson.loads(key)
        for (topic, _), items in job.kafka.items()
        if topic == CHANGELOG
        for key, _, _ in items
    ]


def alert_ids(jobs: list[OutputJob | None]) -> list[str]:
    return [alert.alert_id for job in jobs if job is not None for alert in job.alerts]


def test_state_reaches_the_changelog_only_at_a_checkpoint_with_the_offsets_it_covers() -> None:
    clock = Clock()
    proc = processor(1.0, clock)
    clock.now = 0.2
    first = proc.handle(chunks(0, 40))
    clock.now = 0.7
    second = proc.handle(chunks(40, 40))
    assert first is not None and second is not None
    assert first.latest and second.latest  # outputs are written per batch...
    assert changelog_keys(first) == changelog_keys(second) == []  # ...state is not
    assert first.commit == second.commit == {}
    assert proc.table.data == {}

    clock.now = 1.0
    third = proc.handle(chunks(80, 40))
    assert third is not None
    keys = changelog_keys(third)
    assert sorted(k for k in keys if "\x00" not in k) == ["NDX", "SPX"]  # each key once
    assert WATERMARK_KEY.format(0) in keys
    assert proc.table.data[WATERMARK_KEY.format(0)] == b"119"
    assert third.commit == {TP("prices", 0): 120}  # everything since the start


def test_a_checkpoint_equals_checkpointing_after_every_batch() -> None:
    clock = Clock()
    lazy, eager = processor(1.0, clock), processor(0.0)
    for i, start in enumerate(range(0, 300, 60)):
        clock.now = 0.1 * i
        lazy.handle(chunks(start, 60))
        eager.handle(chunks(start, 60))
    clock.now = 5.0
    job = lazy.handle([])  # the input went quiet: the pending checkpoint is written
    assert job is not None and job.commit == {TP("prices", 0): 300}
    assert lazy.table.data == eager.table.data


def test_nothing_to_write_while_quiet_without_a_pending_or_due_checkpoint() -> None:
    clock = Clock()
    proc = processor(1.0, clock)
    assert proc.handle([]) is None  # nothing processed yet
    clock.now = 0.5
    proc.handle(chunks(0, 10))
    clock.now = 0.9
    assert proc.handle([]) is None  # not due yet


def test_resuming_from_the_last_checkpoint_ends_in_the_same_state_and_alerts() -> None:
    """A rebalance (or crash) after a checkpoint: what followed it is delivered again."""
    clock = Clock()
    resumed, straight = processor(1.0, clock), processor(0.0)
    batches = [(0, 50), (50, 50), (100, 50)]
    jobs = [straight.handle(chunks(*b)) for b in batches]
    assert len(alert_ids(jobs[1:2])) >= 2  # the lost batch raised alerts

    clock.now = 1.0
    checkpointed = resumed.handle(chunks(*batches[0]))
    assert checkpointed is not None and checkpointed.commit == {TP("prices", 0): 50}
    clock.now = 1.5
    lost = resumed.handle(chunks(*batches[1]))  # processed, never checkpointed
    assert lost is not None and lost.commit == {}
    # Partitions revoked: the worker clears the book and the processor, Kafka redelivers
    # from the committed offset (50), and the table holds the checkpoint.
    resumed.pipeline.book.clear()
    resumed.reset()
    again = []
    for b in batches[1:]:
        clock.now += 0.6
        again.append(resumed.handle(chunks(*b)))
    assert again[-1] is not None and again[-1].commit == {TP("prices", 0): 150}
    assert resumed.table.data == straight.table.data
    assert alert_ids([checkpointed, *again]) == alert_ids(jobs)
    assert alert_ids([lost]) == alert_ids(jobs[1:2])  # the replay repeats ids, Redis drops them


def test_records_at_or_below_the_watermark_are_dropped_as_replays() -> None:
    clock = Clock()
    proc = processor(0.0, clock)
    proc.handle(chunks(0, 30))
    before = dict(proc.table.data)
    job = proc.handle(chunks(10, 20))  # redelivered after a seek: already processed
    assert job is not None and not job.latest
    assert proc.table.data == before
    replayed = proc.metrics.registry.get_sample_value(
        "riskstream_events_processed_total", {"topic": "prices", "outcome": "replayed"}
    )
    assert replayed == 20


def test_a_stop_or_rebalance_checkpoints_everything_processed_due_or_not() -> None:
    clock = Clock()
    proc, eager = processor(60.0, clock), processor(0.0)
    for start in (0, 40):
        clock.now += 0.1
        proc.handle(chunks(start, 40))
        eager.handle(chunks(start, 40))
    assert proc.table.data == {}  # the interval (60 s) is far from over
    job = proc.checkpoint_now()
    assert job is not None and job.commit == {TP("prices", 0): 80}
    assert proc.table.data == eager.table.data
    assert proc.checkpoint_now() is None  # nothing processed since


def test_jobs_enter_the_writer_in_the_order_they_were_built() -> None:
    """A checkpoint built after a batch never overtakes it into the writer's queue, even
    when submitted the moment room frees up, before the batch's submitter (woken to take
    that room) ran again; otherwise its commit could run ahead of the batch's alerts."""
    import asyncio

    from engine.worker.writer import OrderedWriter

    async def scenario() -> tuple[list[str], list[str]]:
        writer = OrderedWriter(None, None, None, Metrics(), "prices", depth=1)  # type: ignore[arg-type]
        built: list[str] = []
        queued: list[str] = []

        def build(name: str) -> OutputJob:
            built.append(name)
            return OutputJob((), commit={name: 0})

        def take() -> None:
            queued.append(next(iter(writer.queue.get_nowait().commit)))
            writer.queue.task_done()

        async def writer_loop(jobs: int) -> None:
            for _ in range(jobs):
                queued.append(next(iter((await writer.queue.get()).commit)))
                writer.queue.task_done()

        await writer.submit(lambda: build("first"))  # the queue is full now
        batch = asyncio.create_task(writer.submit(lambda: build("batch")))
        await asyncio.sleep(0)  # the batch is built and waits for room
        take()  # room: the batch's submitter is woken, but has not run yet
        rest = asyncio.create_task(writer_loop(2))
        await writer.submit(lambda: build("checkpoint"))  # this very moment
        await asyncio.gather(batch, rest)
        return built, queued

    built, queued = asyncio.run(scenario())
    assert built == ["first", "batch", "checkpoint"]
    assert queued == built
