"""End-to-end benchmark: price ticks through real Kafka, one worker, real Redis.

Three measurements in one run, on one broker and one pre-produced topic:

raw consume rate (the ceiling)
    an aiokafka consumer reads every record of ``prices`` with ``getmany`` and does
    nothing with them; records per second from the first record to the last.
worker throughput
    a ``riskstream worker`` process (its own consumer group) processes the same records
    with the full pipeline (validation, sequencing, EWMA, VaR/ES, backtest counters,
    alerts, Redis, ``risk.updates``, state changelog); records per second from its first
    processed record to its last, read from its Prometheus counter (startup excluded).
produce-to-Redis latency
    with the worker caught up, ticks of fresh symbols are produced at a fixed rate; a
    tick has *reached Redis* when the symbol's ``riskstream:risk:<symbol>`` hash shows
    it (``n_ticks`` covers it), observed through Redis keyspace notifications. The
    latency is observation time minus the time just before ``producer.send``, on one
    clock. It includes the producer's linger, Kafka, the micro-batch wait, processing
    and the Redis write.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import urllib.request
import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.config import Settings
from engine.harness import WorkerProcess, wait_until
from engine.services.ports import free_port
from engine.topics import PRICES, ensure_topics

Progress = Callable[[str], None]


@dataclass
class E2EResult:
    ticks: int
    symbols: int
    partitions: int
    produce_rate: float
    raw_consume_rate: float
    worker_rate: float
    latency_rate: float
    latency_seconds: float
    latency_samples: int
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    notes: list[str] = field(default_factory=list)

    @property
    def worker_share_of_raw(self) -> float:
        return self.worker_rate / self.raw_consume_rate

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "worker_share_of_raw": self.worker_share_of_raw}

    def markdown(self) -> str:
        return "\n".join(
            [
                "| measurement | value |",
                "|---|---|",
                f"| input | {self.ticks:,} synthetic ticks, {self.symbols:,} symbols, {self.partitions} partitions |",
                f"| produce rate (kafka-python, informational) | {self.produce_rate:,.0f} ticks/s |",
                f"| raw aiokafka consume rate (ceiling) | {self.raw_consume_rate:,.0f} records/s |",
                f"| riskstream worker, end to end | {self.worker_rate:,.0f} ticks/s |",
                f"| worker / raw consume | {self.worker_share_of_raw:.1%} |",
                f"| produce-to-Redis latency at {self.latency_rate:,.0f} ticks/s | "
                f"p50 {self.latency_p50_ms:.1f} ms, p99 {self.latency_p99_ms:.1f} ms, max {self.latency_max_ms:.1f} ms "
                f"({self.latency_samples:,} ticks over {self.latency_seconds:.0f} s) |",
            ]
        )


def _kafka() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import kafka
    return kafka


def synthetic_messages(ticks: int, symbols: int, seed: int = 1) -> list[tuple[bytes, bytes]]:
    """Pre-encoded ``(key, value)`` pairs, so encoding is not part of any timing."""
    from producers.synthetic import SyntheticPrices

    return [
        (t.key, t.to_json())
        for t in SyntheticPrices(symbols, ticks=ticks, interval_ms=1000, seed=seed)
    ]


def produce_all(bootstrap: str, messages: list[tuple[bytes, bytes]]) -> float:
    """Produce as fast as possible; returns messages per second (all acknowledged)."""
    kafka = _kafka()
    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=1 << 20)
    started = time.perf_counter()
    send = producer.send
    for key, value in messages:
        send(PRICES, key=key, value=value)
    producer.flush(300)
    rate = len(messages) / (time.perf_counter() - started)
    producer.close()
    return rate


async def _raw_consume(bootstrap: str, partitions: int, expected: int) -> float:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        max_partition_fetch_bytes=4 << 20,
        fetch_max_bytes=64 << 20,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(PRICES, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        count = 0
        first: float | None = None
        while count < expected:
            batch = await consumer.getmany(timeout_ms=1000, max_records=20_000)
            now = time.perf_counter()
            for records in batch.values():
                if first is None and records:
                    first = now
                count += len(records)
        assert first is not None
        return count / (time.perf_counter() - first)
    finally:
        await consumer.stop()


def raw_consume_rate(bootstrap: str, partitions: int, expected: int) -> float:
    """Records per second an aiokafka ``getmany`` loop reads, doing nothing with them."""
    return asyncio.run(_raw_consume(bootstrap, partitions, expected))


_PROCESSED = re.compile(
    r'^riskstream_events_processed_total\{outcome="\w+",topic="prices"\} ([0-9.e+]+)$', re.M
)


def processed_count(metrics_url: str) -> int:
    """Price records the worker has processed (accepted + rejected + replayed)."""
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        text = response.read().decode()
    return int(sum(float(v) for v in _PROCESSED.findall(text)))


def worker_rate(metrics_url: str, expected: int, timeout: float) -> float:
    """Poll the worker's counter at 20 Hz: rate from its first processed record to the last."""
    deadline = time.monotonic() + timeout
    first_time, first_count = None, 0
    while True:
        count = processed_count(metrics_url)
        now = time.perf_counter()
        if first_time is None and count > 0:
            first_time, first_count = now, count
        if count >= expected:
            assert first_time is not None
            if now == first_time:  # everything landed in one poll interval
                raise RuntimeError("the run was too short to time; raise --ticks")
            return (count - first_count) / (now - first_time)
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"worker processed {count:,} of {expected:,} records in {timeout:.0f}s"
            )
        time.sleep(0.05)


def measure_latency(
    bootstrap: str,
    redis_url: str,
    *,
    rate: float,
    seconds: float,
    symbols: int = 100,
    warmup_s: float = 2.0,
) -> np.ndarray:
    """Produce fresh symbols at ``rate`` ticks/s; return per-tick produce-to-Redis latencies (s)."""
    import redis

    kafka = _kafka()
    client = redis.Redis.from_url(redis_url)
    client.config_set("notify-keyspace-events", "Kh")
    names = [f"LAT{i:04d}" for i in range(symbols)]
    sent: dict[str, list[float]] = {name: [] for name in names}
    seen: dict[str, int] = defaultdict(int)
    samples: list[tuple[float, float]] = []  # (sent at, latency), seconds
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.psubscribe("__keyspace@0__:riskstream:risk:LAT*")
    stop = threading.Event()

    def observe() -> None:
        # Drain every pending notification, then read all notified symbols in one
        # pipelined round trip: one HGET per notification would fall behind the stream
        # and measure the observer instead of the engine.
        reader = redis.Redis.from_url(redis_url)
        while not stop.is_set():
            message = pubsub.get_message(timeout=0.1)
            if message is None:
                continue
            notified = set()
            while message is not None:
                notified.add(message["channel"].decode().rsplit(":", 1)[1])
                message = pubsub.get_message(timeout=0)
            now = time.perf_counter()
            names = sorted(notified)
            with reader.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.hget(f"riskstream:risk:{name}", "n_ticks")
                counts = pipe.execute()
            for name, n in zip(names, counts, strict=True):
                times = sent[name]
                n = int(n or 0)
                for k in range(seen[name], min(n, len(times))):
                    samples.append((times[k], now - times[k]))
                seen[name] = max(seen[name], n)
        reader.close()

    observer = threading.Thread(target=observe, daemon=True)
    observer.start()
    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, linger_ms=1)
    rng = np.random.default_rng(0)
    total = int(rate * seconds)
    start = time.perf_counter()
    prices = dict.fromkeys(names, 100.0)
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0.0005:
            time.sleep(delay)
        name = names[i % symbols]
        prices[name] *= float(np.exp(rng.normal(0, 0.001)))
        value = b'{"symbol":"%s","ts":%d,"price":%.6f}' % (
            name.encode(),
            time.time_ns() // 1_000_000,
            prices[name],
        )
        sent[name].append(time.perf_counter())
        producer.send(PRICES, key=name.encode(), value=value)
    producer.flush(60)
    wait_until(lambda: sum(seen.values()) >= total, 60, "every latency tick to reach Redis")
    stop.set()
    observer.join(5)
    producer.close()
    pubsub.close()
    client.close()
    # Ticks sent in the first ``warmup_s`` seconds are not counted.
    return np.asarray([latency for sent_at, latency in samples if sent_at >= start + warmup_s])


def run(
    *,
    ticks: int = 1_000_000,
    symbols: int = 1000,
    partitions: int = 8,
    latency_rate: float = 5000.0,
    latency_seconds: float = 20.0,
    workdir: Path,
    progress: Progress = print,
) -> E2EResult:
    """Start Kafka and Redis, run the three measurements, stop everything."""
    from engine.services.testing import ServiceHub

    workdir.mkdir(parents=True, exist_ok=True)
    with ServiceHub(workdir / "services", "native") as hub:
        progress("starting Kafka and Redis")
        broker = hub.kafka()
        redis_service = hub.redis()
        settings = Settings(kafka_bootstrap=broker.bootstrap, partitions=partitions)
        ensure_topics(settings)
        progress(f"generating {ticks:,} synthetic ticks for {symbols:,} symbols")
        messages = synthetic_messages(ticks, symbols)
        progress("producing")
        produce_rate = produce_all(broker.bootstrap, messages)
        del messages
        progress("raw aiokafka consume")
        raw = raw_consume_rate(broker.bootstrap, partitions, ticks)
        progress(f"  {raw:,.0f} records/s")
        metrics_port = free_port()
        env = {
            "RISKSTREAM_KAFKA_BOOTSTRAP": broker.bootstrap,
            "RISKSTREAM_REDIS_URL": redis_service.url,
            "RISKSTREAM_PARTITIONS": str(partitions),
            "RISKSTREAM_APP_ID": "bench",
            "RISKSTREAM_METRICS_PORT": str(metrics_port),
            "RISKSTREAM_DATA_DIR": str(workdir / "worker-data"),
        }
        worker = WorkerProcess(env, workdir / "worker.log")
        progress("riskstream worker")
        worker.start()
        try:
            rate = worker_rate(f"http://127.0.0.1:{metrics_port}/metrics", ticks, timeout=600)
            progress(f"  {rate:,.0f} ticks/s")
            progress(f"latency at {latency_rate:,.0f} ticks/s for {latency_seconds:.0f}s")
            lat = measure_latency(
                broker.bootstrap, redis_service.url, rate=latency_rate, seconds=latency_seconds
            )
        finally:
            worker.stop()
    ms = lat * 1000.0
    return E2EResult(
        ticks=ticks,
        symbols=symbols,
        partitions=partitions,
        produce_rate=produce_rate,
        raw_consume_rate=raw,
        worker_rate=rate,
        latency_rate=latency_rate,
        latency_seconds=latency_seconds,
        latency_samples=int(ms.size),
        latency_p50_ms=float(np.percentile(ms, 50)),
        latency_p99_ms=float(np.percentile(ms, 99)),
        latency_max_ms=float(ms.max()),
    )
