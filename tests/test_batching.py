"""The worker's micro-batch channel: what :meth:`BatchChannel.take` yields, and when the
channel is idle (the rebalance and stop paths wait for that before they commit).

These run a real faust app object (no broker is contacted: nothing is started), the
worker's own processing loop and writer; only the processor is a stand-in that fails.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from engine.config import Settings
from engine.worker.app import RiskWorker
from engine.worker.batching import BatchChannel, Chunk
from engine.worker.writer import OrderedWriter, OutputJob


class Record(NamedTuple):
    offset: int


PRICES_0 = TopicPartition("prices", 0)


def chunk(first: int, n: int, generation: int = 0) -> Chunk:
    return Chunk(PRICES_0, [Record(o) for o in range(first, first + n)], generation)


def unstarted_worker(data_dir: Path, **settings: Any) -> RiskWorker:
    """A worker whose app is built but never started: no broker is contacted."""
    return RiskWorker(Settings(kafka_bootstrap="127.0.0.1:9", data_dir=str(data_dir), **settings))


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop for the module: a faust app belongs to the loop it was made in."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    asyncio.set_event_loop(None)
    loop.close()


@pytest.fixture(scope="module")
def worker(loop: asyncio.AbstractEventLoop, tmp_path_factory: pytest.TempPathFactory) -> RiskWorker:
    data = Path(tmp_path_factory.mktemp("worker"))
    worker = unstarted_worker(data)
    worker.app.flow_control.resume()  # as faust does once partitions are assigned
    return worker


def offsets(batch: Sequence[Chunk]) -> list[int]:
    return [record.offset for c in batch for record in c.records]


def test_a_batch_closes_once_it_holds_max_records_or_within_seconds_after_its_first(
    loop: asyncio.AbstractEventLoop, worker: RiskWorker
) -> None:
    async def scenario() -> list[tuple[list[int], float]]:
        channel = BatchChannel(worker.app, "prices")
        for first in (0, 3, 6):
            await channel.put(chunk(first, 3))
        batches = channel.take(5, within=0.5)
        out = []
        async with asyncio.timeout(5):
            for _ in range(2):
                started = loop.time()
                out.append((offsets(await anext(batches)), loop.time() - started))
        await batches.aclose()
        return out

    (full, full_wait), (rest, rest_wait) = loop.run_until_complete(scenario())
    # 3 < 5 records: one more chunk joins; 6 >= 5: yielded at once.
    assert full == [0, 1, 2, 3, 4, 5] and full_wait < 0.25
    # The third chunk starts the next batch, which nothing fills: yielded after `within`.
    assert rest == [6, 7, 8] and 0.5 <= rest_wait < 1.5


def test_chunks_fetched_in_an_older_consumer_generation_are_dropped(
    loop: asyncio.AbstractEventLoop, worker: RiskWorker
) -> None:
    async def scenario() -> list[int]:
        channel = BatchChannel(worker.app, "prices")
        current = worker.app.consumer_generation_id
        await channel.put(chunk(0, 2, generation=current - 1))  # fetched before a rebalance
        await channel.put(chunk(2, 2, generation=current))
        async with asyncio.timeout(5):
            return offsets(await anext(channel.take(100, within=0.05)))

    assert loop.run_until_complete(scenario()) == [2, 3]


def test_a_quiet_input_yields_empty_batches_so_the_processor_can_checkpoint(
    loop: asyncio.AbstractEventLoop, worker: RiskWorker
) -> None:
    async def scenario() -> tuple[list[Chunk], float]:
        channel = BatchChannel(worker.app, "prices")
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with asyncio.timeout(5):
            batch = await anext(channel.take(100, within=0.01, quiet=0.2))
        return batch, loop.time() - started

    batch, waited = loop.run_until_complete(scenario())
    assert batch == []
    assert 0.2 <= waited < 1.0


def test_the_channel_is_busy_while_a_batch_is_processed_and_idle_after(
    loop: asyncio.AbstractEventLoop, worker: RiskWorker
) -> None:
    async def scenario() -> tuple[bool, bool]:
        channel = BatchChannel(worker.app, "prices")
        await channel.put(chunk(0, 2))
        batches = channel.take(100, within=0.01)
        async with asyncio.timeout(5):
            await anext(batches)
            during = channel.idle.is_set()
            await batches.aclose()
        return during, channel.idle.is_set()

    assert loop.run_until_complete(scenario()) == (False, True)


class FailingProcessor:
    """Fails on every batch, as a processing error would."""

    def handle(self, batch: Sequence[Chunk]) -> OutputJob | None:
        raise RuntimeError("processing failed")


def test_a_failed_batch_leaves_the_channel_idle_so_a_crashed_worker_can_stop(
    loop: asyncio.AbstractEventLoop, worker: RiskWorker
) -> None:
    """The stop of a crashed worker waits for every channel to be idle (``wait_empty``).

    The exception, held here as it is while faust handles the crash, keeps the loop's
    frame and so its batch generator alive: only closing the generator explicitly sets
    the channel idle again. (Found by the processing-failure fault test: a crashed
    worker hung at faust's "Wait for streams" instead of exiting.)
    """

    async def scenario() -> tuple[pytest.ExceptionInfo[RuntimeError], bool]:
        channel = BatchChannel(worker.app, "prices")
        writer = OrderedWriter(worker.app, worker.consumer, None, worker.metrics, "prices")
        await channel.put(chunk(0, 2))
        with pytest.raises(RuntimeError, match="processing failed") as failure:
            async with asyncio.timeout(5):
                await worker._loop(channel, FailingProcessor(), writer)  # type: ignore[arg-type]
        return failure, channel.idle.is_set()

    failure, idle = loop.run_until_complete(scenario())
    assert failure.traceback  # still held
    assert idle


def test_the_consumer_long_polls_quiet_partitions_only_as_long_as_configured(
    loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    """faust fixes Kafka's fetch.max.wait.ms at 1,500 ms; while such a fetch waits on
    quiet partitions, busy ones cannot be fetched (``RISKSTREAM_FETCH_MAX_WAIT_MS``)."""
    worker = unstarted_worker(tmp_path, fetch_max_wait_ms=42)

    async def configured_wait_ms() -> int:
        thread = worker.consumer._new_consumer_thread()
        consumer = thread._create_consumer(asyncio.get_running_loop())
        try:
            return int(consumer._fetch_max_wait_ms)  # what its fetcher is given on start
        finally:
            await consumer.stop()

    assert loop.run_until_complete(configured_wait_ms()) == 42
    assert Settings(kafka_bootstrap="127.0.0.1:9").stream.fetch_max_wait_ms == 1500


def test_aiokafka_keeps_the_fetch_wait_where_the_worker_sets_it(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """The worker sets a private attribute of aiokafka's consumer (faust offers no way);
    if an aiokafka release kept the argument elsewhere, the setting would do nothing."""

    async def kept() -> int:
        consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:9", fetch_max_wait_ms=7)
        try:
            return int(consumer._fetch_max_wait_ms)
        finally:
            await consumer.stop()

    assert loop.run_until_complete(kept()) == 7


def test_the_explainers_are_built_once_beside_the_group_join(
    loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    """Building them (shap's import, every tree of the credit model) takes about a second
    of CPU; ``prepare()`` starts it in its own thread, after the kernels are compiled and
    before faust starts, so it overlaps the group join instead of delaying it, and the
    processing task awaits it before its first batch."""
    worker = unstarted_worker(tmp_path)
    assert worker.explainers is None and worker.explanations is None  # nothing slow yet
    worker.prepare()
    building = worker.explainers
    assert building is not None
    built = building.result(timeout=120)
    assert built is not None  # the committed credit model is explainable
    worker.prepare()  # again, as the processing task does: nothing is rebuilt
    assert worker.explainers is building


def test_faust_starts_the_tables_without_its_one_second_pause(tmp_path: Path) -> None:
    """Both tables are registered in the worker's constructor, so faust's pause for late
    table registrations only delayed every (re)start."""
    from engine.worker.app import RiskTableManager

    worker = unstarted_worker(tmp_path)
    assert isinstance(worker.app.tables, RiskTableManager)
    assert set(worker.app.tables) == {"prices-state", "transactions-state"}


def test_a_crashed_worker_does_not_commit_so_its_stop_cannot_hang(
    loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    """A crash marks the consumer thread crashed too; a commit is a call into that thread
    and would never return, so the crashed worker's stop (which commits) would hang."""
    worker = unstarted_worker(tmp_path)
    consumer = worker.consumer
    tp = PRICES_0

    async def commit_after_crash() -> bool:
        consumer._committed_offset[tp] = None
        consumer.ack({tp: 10})  # an acked checkpoint, not committed yet
        await worker.app.crash(RuntimeError("processing failed"))
        async with asyncio.timeout(5):
            return await consumer.commit()

    assert loop.run_until_complete(commit_after_crash()) is False
    assert worker.app.crashed


def test_the_livelock_check_skips_a_partition_whose_position_is_being_reset(
    loop: asyncio.AbstractEventLoop, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """After a leader change aiokafka resets a partition's position; faust's periodic
    livelock check read it in between and crashed the worker on aiokafka's assertion.
    The check's fetch side, which reads no position, still reports a partition that was
    never fetched."""
    worker = unstarted_worker(tmp_path)

    async def check() -> None:
        thread = worker.consumer._new_consumer_thread()
        consumer = thread._consumer = thread._create_consumer(asyncio.get_running_loop())
        # Only what faust's check reads of the fetcher, which exists once started.
        consumer._fetcher = SimpleNamespace(_subscriptions=consumer._subscription)
        thread.time_started = time.monotonic()  # set when the thread starts
        try:
            consumer._subscription.assign_from_user({PRICES_0})
            state = consumer._subscription.subscription.assignment.state_value(PRICES_0)
            state.timestamp = time.time() * 1000  # polled before; position now being reset
            assert not state.has_valid_position
            thread.verify_event_path(time.monotonic(), PRICES_0)
            assert "fetch request" not in caplog.text

            state.timestamp = None  # never fetched, in a thread started an hour ago
            thread.time_started = time.monotonic() - 3600
            thread.verify_event_path(time.monotonic(), PRICES_0)
            assert "has not sent fetch request" in caplog.text
        finally:
            consumer._fetcher = None
            await consumer.stop()

    loop.run_until_complete(check())


def test_only_partitions_held_in_an_earlier_generation_are_rewound_when_nothing_is_committed(
    loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    """A partition this consumer never held starts at its beginning anyway
    (``auto_offset_reset="earliest"``); one it held may have been fetched past records
    dropped at the revocation, so it is sought back. The seek waits for the fetch in
    flight, so a fresh start, a restart after ``kill -9`` included, skips it."""
    worker = unstarted_worker(tmp_path)
    consumer = worker.consumer
    prices_1, transactions_0 = TopicPartition("prices", 1), TopicPartition("transactions", 0)
    assigned = {PRICES_0, prices_1, transactions_0}
    consumer.assignment = lambda: assigned  # type: ignore[method-assign]
    consumer._committed_offset.update({PRICES_0: 40, prices_1: None, transactions_0: None})
    assert consumer.to_rewind() == []  # the first generation of a fresh process

    loop.run_until_complete(consumer.on_partitions_revoked({prices_1, PRICES_0}))
    # the next generation's seek reads the committed offsets back (faust's perform_seek)
    consumer._committed_offset.update({PRICES_0: 40, prices_1: None, transactions_0: None})
    assert consumer.to_rewind() == [prices_1]  # held before, nothing committed


def test_clearing_a_full_channel_lets_the_waiting_fetcher_put_instead_of_cancelling_it(
    loop: asyncio.AbstractEventLoop, worker: RiskWorker
) -> None:
    """A rebalance clears the channel while the fetcher may wait to put into it (the
    channel is full under load). The waiting put must complete: a cancelled fetcher
    during a rebalance crashes a faust worker (it has no supervisor to restart it)."""

    async def scenario() -> tuple[int, BaseException | None, list[int]]:
        channel = BatchChannel(worker.app, "prices", max_chunks=2)
        await channel.put(chunk(0, 3))
        await channel.put(chunk(3, 3))
        waiting = asyncio.ensure_future(channel.put(chunk(6, 3)))
        await asyncio.sleep(0.05)
        assert not waiting.done(), "the third put should wait for room"
        dropped = channel.clear()
        async with asyncio.timeout(5):
            await asyncio.wait([waiting])
        left = [offsets([channel.queue.get_nowait()]) for _ in range(channel.queue.qsize())]
        return dropped, waiting.exception(), [o for chunk_ in left for o in chunk_]

    dropped, error, left = loop.run_until_complete(scenario())
    assert dropped == 2
    assert error is None
    assert left == [6, 7, 8]  # the waiting chunk; take() drops it if its generation is old


def _processing_start_without_a_producer(
    loop: asyncio.AbstractEventLoop, worker: RiskWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run the processing task's start-up on an app whose producer never started: its first
    call to the broker (the dead-letter topics' partition counts) raises faust's NotReady."""
    from concurrent.futures import Future

    # Keep this process's GC settings.
    monkeypatch.setattr("engine.worker.app.tune_for_streaming", lambda: None)
    built: Future[Any] = Future()
    built.set_result(None)  # the explainers, as if built
    worker.explainers = built
    loop.run_until_complete(worker._run())


def test_a_stop_during_start_up_is_a_clean_stop_not_a_crash(
    loop: asyncio.AbstractEventLoop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM while the processing task is still starting stops the producer under it. Nothing
    was processed, so the worker must exit 0: a scale-in right after a scale-out did not
    (the fault suite's scale test, seen once in CI)."""
    monkeypatch.delenv("RISKSTREAM_REDIS_URL", raising=False)  # no Redis to wait for
    worker = unstarted_worker(tmp_path)
    worker.app._stopped.set()  # app.stop() has begun, as on SIGTERM
    _processing_start_without_a_producer(loop, worker, monkeypatch)
    assert not worker.app.crashed
    assert worker.stages == []


def test_the_same_failure_while_running_is_a_crash(
    loop: asyncio.AbstractEventLoop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RISKSTREAM_REDIS_URL", raising=False)
    worker = unstarted_worker(tmp_path)
    _processing_start_without_a_producer(loop, worker, monkeypatch)
    assert worker.app.crashed
    assert type(worker.app.crash_reason).__name__ == "NotReady"
