"""The worker's fetcher does not long-poll a quiet partition while another one's records wait.

aiokafka keeps one fetch in flight per broker and, once fetched records of a partition
have waited 100 ms to be consumed, fetches the broker's *other* partitions without it.
If those are quiet, the broker holds that fetch for ``fetch_max_wait_ms``, and the busy
partition, drained meanwhile, cannot be fetched until it returns. These tests recreate
that against a real broker: one partition with a backlog, one with nothing, and a slow
consumer of the first.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from engine.worker.batching import BUSY_FETCH_WAIT_MS, BusyAwareFetcher, use_busy_aware_fetcher

LONG_POLL_MS = 1500  # faust's fetch.max.wait.ms, the worker's default


async def _backlog(bootstrap: str, busy: str, quiet: str, records: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, 1, 1) for t in (busy, quiet)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for i in range(records):
            await producer.send(busy, b"x" * 200, key=str(i).encode())
        await producer.flush()
    finally:
        await producer.stop()


async def _refetch_gap(bootstrap: str, busy_aware: bool, consuming_busy: bool = True) -> float:
    """Seconds from draining the busy partition's fetched records to its next records."""
    busy, quiet = f"busy-{uuid.uuid4().hex[:8]}", f"quiet-{uuid.uuid4().hex[:8]}"
    await _backlog(bootstrap, busy, quiet, records=500)
    busy_tp, quiet_tp = TopicPartition(busy, 0), TopicPartition(quiet, 0)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=LONG_POLL_MS,
        max_partition_fetch_bytes=4096,  # a fetch brings about 15 records, not all 500
    )
    await consumer.start()
    try:
        if busy_aware:
            # consuming_busy=False: as during faust's table recovery, the busy partition's
            # records wait for something else, not for this consumer
            use_busy_aware_fetcher(consumer, None if consuming_busy else busy_tp.__ne__)
            assert isinstance(consumer._fetcher, BusyAwareFetcher)
        consumer.assign([busy_tp, quiet_tp])
        await consumer.seek_to_beginning(busy_tp, quiet_tp)
        first = await consumer.getmany(busy_tp, timeout_ms=10_000, max_records=1)
        assert len(first.get(busy_tp, [])) == 1
        # The worker is busy: the other fetched records wait past aiokafka's 100 ms, so
        # it fetches the quiet partition alone.
        await asyncio.sleep(0.3)
        rest = await consumer.getmany(busy_tp, timeout_ms=0, max_records=10_000)
        assert rest.get(busy_tp), "the first fetch brought more than one record"
        started = time.monotonic()
        again = await consumer.getmany(busy_tp, timeout_ms=10_000, max_records=1)
        gap = time.monotonic() - started
        assert again.get(busy_tp), "the backlog was fetched again"
        return gap
    finally:
        await consumer.stop()


@pytest.mark.timeout(120)
def test_a_drained_busy_partition_is_fetched_again_at_once_not_after_a_quiet_long_poll(
    kafka_bootstrap: str,
) -> None:
    plain = asyncio.run(_refetch_gap(kafka_bootstrap, busy_aware=False))
    aware = asyncio.run(_refetch_gap(kafka_bootstrap, busy_aware=True))
    # aiokafka's own fetcher: the busy partition waits for the quiet one's long poll
    assert plain > 0.5 * LONG_POLL_MS / 1000
    # the worker's: at most the short wait, plus a fetch round trip
    assert aware < 0.25, f"{aware:.3f} s (short wait {BUSY_FETCH_WAIT_MS} ms)"


@pytest.mark.timeout(120)
def test_records_that_are_not_being_consumed_keep_the_long_poll(kafka_bootstrap: str) -> None:
    """While faust recovers tables it leaves the stream partitions out of what it consumes:
    their fetched records do not make the changelogs' fetches short."""
    gap = asyncio.run(_refetch_gap(kafka_bootstrap, busy_aware=True, consuming_busy=False))
    assert gap > 0.5 * LONG_POLL_MS / 1000
