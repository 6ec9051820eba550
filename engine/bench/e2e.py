"""End-to-end benchmark: price ticks through real Kafka, one worker, real Redis.

Three measurements in one run, on one broker and one pre-produced topic:

raw consume rate (the ceiling)
    an aiokafka consumer reads every record of ``prices`` with ``getmany`` and does
    nothing with them; records per second from the first record to the last. Measured
    twice: with Python's default garbage-collector settings, and with the worker's
    (:mod:`engine.gctune`), which doubles it; the second is the fair ceiling, because the
    worker runs with those settings.
the worker's consumer path without the work
    :mod:`engine.bench.transport`: the worker's faust app, consumer and micro-batching
    taking the same records with nothing behind them (``transport``), then with the
    worker's first stage, decoding, added (``decode``); where the gap to raw goes.
worker throughput
    a ``riskstream worker`` process (its own consumer group) processes the same records
    with the full pipeline of its configuration (the default one unless the environment
    says otherwise: validation, sequencing, EWMA, GARCH/GJR and HAR with their fits in
    the fit pool, VaR/ES, the champion, backtest counters, alerts, Redis,
    ``risk.updates``, state changelog); records per second from its first processed
    record to its last, read from its Prometheus counter (startup excluded). The
    synthetic ticks are ``tick_interval_ms`` apart per symbol: at an intraday interval
    (e.g. an hour) they span many trading sessions, so every symbol is fitted and
    refitted on the session schedule during the run; the fits the pool ran, timed out
    and made the stream wait for are read from ``riskstream_fits`` and reported.
produce-to-Redis latency
    with the worker caught up, a separate process produces ticks of fresh symbols at a
    fixed rate; a tick has *reached Redis* when the symbol's ``riskstream:risk:<symbol>``
    hash shows it (``n_ticks`` covers it), observed through Redis keyspace
    notifications. The latency is observation time minus the time just before
    ``producer.send``, on the shared monotonic clock. It includes the producer's linger,
    Kafka, the micro-batch wait, processing and the Redis write.
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.bench.transport import stage_rates
from engine.config import Settings
from engine.errors import InputError
from engine.faults.harness import WorkerProcess
from engine.gctune import tune_for_streaming
from engine.kafka.topics import PRICES, ensure_topics
from engine.services.ports import free_port

Progress = Callable[[str], None]


@dataclass
class E2EResult:
    ticks: int
    symbols: int
    partitions: int
    produce_rate: float
    raw_consume_rate: float
    raw_consume_rate_default_gc: float
    worker_rate: float
    latency_rate: float
    latency_seconds: float
    latency_samples: int
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    latency_warmup_seconds: float = 0.0
    latency_warmup_p99_ms: float = float("nan")
    tick_interval_ms: int = 1000
    fits: dict[str, int] = field(default_factory=dict)
    latency_fits: dict[str, int] = field(default_factory=dict)
    raw_latency_p50_ms: float = float("nan")
    raw_latency_p99_ms: float = float("nan")
    transport_rate: float = float("nan")
    decode_rate: float = float("nan")
    latency_stages: dict[str, float] = field(default_factory=dict)
    """Means over the latency run (warm-up included) from the worker's own histograms, ms:
    per stage of ``riskstream_event_latency_seconds`` (fetched, processed, written) and
    ``batch`` (``riskstream_batch_duration_seconds``); ``batches``: their count."""
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
                f"| input | {self.ticks:,} synthetic ticks, {self.symbols:,} symbols, {self.partitions} partitions, "
                f"{self.tick_interval_ms:,} ms between a symbol's ticks |",
                f"| model fits during the throughput run | {_fits(self.fits)} |",
                f"| model fits by the end of the latency run | {_fits(self.latency_fits)} |",
                f"| produce rate (kafka-python, informational) | {self.produce_rate:,.0f} ticks/s |",
                f"| raw aiokafka consume rate, default GC | {self.raw_consume_rate_default_gc:,.0f} records/s |",
                f"| raw aiokafka consume rate, worker's GC settings (ceiling) | {self.raw_consume_rate:,.0f} records/s |",
                f"| the worker's consumer path, no work (faust, micro-batches, acks) | {self.transport_rate:,.0f} records/s "
                f"({self.transport_rate / self.raw_consume_rate:.1%} of raw) |",
                f"| the same plus decoding (the worker's first stage) | {self.decode_rate:,.0f} records/s "
                f"({self.decode_rate / self.raw_consume_rate:.1%} of raw) |",
                f"| a worker at 50% of raw has, per record | {2e6 / self.raw_consume_rate:.2f} µs for everything; "
                f"the consumer path and decoding take {1e6 / self.decode_rate:.2f} µs |",
                f"| riskstream worker, end to end | {self.worker_rate:,.0f} ticks/s |",
                f"| worker / raw consume (ceiling) | {self.worker_share_of_raw:.1%} |",
                f"| worker / raw consume, default GC | {self.worker_rate / self.raw_consume_rate_default_gc:.1%} |",
                f"| produce-to-Redis latency at {self.latency_rate:,.0f} ticks/s | "
                f"p50 {self.latency_p50_ms:.1f} ms, p99 {self.latency_p99_ms:.1f} ms, max {self.latency_max_ms:.1f} ms "
                f"({self.latency_samples:,} ticks over {self.latency_seconds:.0f} s, after "
                f"{self.latency_warmup_seconds:.0f} s of warm-up) |",
                f"| the same, during the warm-up | p99 {self.latency_warmup_p99_ms:.1f} ms |",
                f"| the floor: produce to a no-op aiokafka consumer, same rate and warm-up | "
                f"p50 {self.raw_latency_p50_ms:.1f} ms, p99 {self.raw_latency_p99_ms:.1f} ms |",
                f"| where the latency run's time went (worker's histograms, means) | {_stages(self.latency_stages)} |",
            ]
        )


def _stages(means: dict[str, float]) -> str:
    if not means:
        return "not reported"
    parts = [
        f"{stage} {means[stage]:.1f} ms"
        for stage in ("fetched", "processed", "written")
        if stage in means
    ]
    if "batch" in means:
        parts.append(
            f"a micro-batch processed and written in {means['batch']:.1f} ms "
            f"({means.get('batches', 0):,.0f} batches)"
        )
    return "; ".join(parts)


@dataclass(frozen=True)
class LatencyRun:
    """Produce-to-Redis latencies (seconds) of one paced run: steady state and warm-up."""

    rate: float
    seconds: float
    warmup_s: float
    steady: np.ndarray
    warming: np.ndarray

    def percentile_ms(self, q: float, *, warm_up: bool = False) -> float:
        values = self.warming if warm_up else self.steady
        return float(np.percentile(values, q) * 1000.0)


def fresh_services_dir(workdir: Path) -> Path:
    """``workdir/services``, emptied: a broker started on a previous run's storage would
    serve that run's topics too (wrong counts, and latency ticks that seem to arrive
    before they were sent)."""
    import shutil

    services = workdir / "services"
    shutil.rmtree(services, ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    return services


def _kafka() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import kafka
    return kafka


def _fits(counts: dict[str, int]) -> str:
    if not counts:
        return "not reported"
    return ", ".join(
        f"{counts.get(k, 0):,} {k}" for k in ("submitted", "done", "timeout", "waited", "deferred")
    )


def synthetic_messages(
    ticks: int, symbols: int, seed: int = 1, interval_ms: int = 1000
) -> list[tuple[bytes, bytes]]:
    """Pre-encoded ``(key, value)`` pairs, so encoding is not part of any timing; a symbol's
    ticks are ``interval_ms`` apart, the last one now."""
    from producers.synthetic import SyntheticPrices

    return [
        (t.key, t.to_json())
        for t in SyntheticPrices(symbols, ticks=ticks, interval_ms=interval_ms, seed=seed)
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


#: The one metric the rate is read from: a scrape restricted to it (prometheus_client's
#: ``name[]`` filter) costs the worker almost nothing, where a whole scrape (every
#: per-symbol gauge and histogram, ~65 KB at 100 symbols) held its GIL for milliseconds,
#: twenty times a second, out of the time being measured.
_PROCESSED_QUERY = "?name[]=riskstream_events_processed_total"


def processed_count(metrics_url: str) -> int:
    """Price records the worker has processed (accepted + rejected + replayed)."""
    with urllib.request.urlopen(metrics_url + _PROCESSED_QUERY, timeout=5) as response:
        text = response.read().decode()
    return int(sum(float(v) for v in _PROCESSED.findall(text)))


_FITS = re.compile(r'^riskstream_fits\{outcome="(\w+)"\} ([0-9.e+]+)$', re.M)


def fit_counts(metrics_url: str) -> dict[str, int]:
    """The worker's fit pool counts (``riskstream_fits``: submitted, done, timeout, waited, deferred)."""
    with urllib.request.urlopen(metrics_url + "?name[]=riskstream_fits", timeout=5) as response:
        text = response.read().decode()
    return {outcome: int(float(value)) for outcome, value in _FITS.findall(text)}


_SUMS = re.compile(
    r"^riskstream_(event_latency|batch_duration)_seconds_(sum|count)\{([^}]*)\} ([0-9.e+]+)$", re.M
)


def latency_sums(metrics_url: str) -> dict[str, tuple[float, float]]:
    """``(sum, count)`` of the worker's prices latency histograms: per event-latency stage
    (``fetched``, ``processed``, ``written``) and ``batch`` (batch duration)."""
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        text = response.read().decode()
    out: dict[str, list[float]] = {}
    for family, kind, labels, value in _SUMS.findall(text):
        if 'topic="prices"' not in labels:
            continue
        stage = re.search(r'stage="(\w+)"', labels)
        name = "batch" if family == "batch_duration" else (stage.group(1) if stage else "")
        out.setdefault(name, [0.0, 0.0])[kind == "count"] = float(value)
    return {name: (v[0], v[1]) for name, v in out.items()}


def stage_means(
    before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]
) -> dict[str, float]:
    """Mean milliseconds per stage between two :func:`latency_sums` (and ``batches``)."""
    means: dict[str, float] = {}
    for name, (total, count) in after.items():
        t0, c0 = before.get(name, (0.0, 0.0))
        if count > c0:
            means[name] = 1000.0 * (total - t0) / (count - c0)
            if name == "batch":
                means["batches"] = count - c0
    return means


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
                raise InputError("the run was too short to time; raise --ticks")
            return (count - first_count) / (now - first_time)
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"worker processed {count:,} of {expected:,} records in {timeout:.0f}s"
            )
        time.sleep(0.05)


class PacedRun:
    """The paced producer process of a latency measurement (``engine.bench.paced_producer``).

    Sends ``rate * (warmup_s + seconds)`` ticks: tick ``i`` goes to symbol
    ``<prefix>{i % symbols:04d}``, due at ``start_at + i / rate`` on the monotonic clock
    every process of the machine shares (sent up to about 1 ms after it). :meth:`result`
    reads the actual send times back once the producer is done and splits the latencies
    at ``start_at + warmup_s``. Both arrays stay in ``workdir``: ``latency-sent-<prefix>.npy``
    (send times, monotonic seconds) and ``latency-seconds-<prefix>.npy`` (each tick's latency).
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        rate: float,
        seconds: float,
        warmup_s: float,
        symbols: int,
        prefix: str,
        workdir: Path,
        lead_s: float = 3.0,
    ) -> None:
        import subprocess
        import sys

        self.rate, self.seconds, self.warmup_s = rate, seconds, warmup_s
        self.total = int(rate * (warmup_s + seconds))
        self.symbols = symbols
        self.start_at = time.monotonic() + lead_s
        #: When to give up waiting for the last tick.
        self.deadline = self.start_at + warmup_s + seconds + 60
        self._out = workdir / f"latency-sent-{prefix}.npy"
        self._child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "engine.bench.paced_producer",
                "--bootstrap",
                bootstrap,
                "--rate",
                str(rate),
                "--seconds",
                str(warmup_s + seconds),
                "--symbols",
                str(symbols),
                "--start-at",
                repr(self.start_at),
                "--out",
                str(self._out),
                "--prefix",
                prefix,
            ]
        )

    def result(self, observed: dict[int, list[tuple[int, float]]]) -> LatencyRun:
        """Per tick: the first time its symbol was seen with ``count >= k`` (``k``: the tick's
        rank within its symbol) minus its send time; steady state and warm-up apart.

        ``observed`` maps a symbol number to its ``(count, seen at)`` points, in time order.
        """
        if self._child.wait(60) != 0:
            raise RuntimeError(
                f"the paced producer failed with exit status {self._child.returncode}"
            )
        sent = np.load(self._out)
        latencies = np.full(self.total, np.nan)
        for j, points in observed.items():
            counts = np.array([n for n, _ in points])
            times = np.array([t for _, t in points])
            ticks = np.arange(j, self.total, self.symbols)  # this symbol's ticks, in order
            first_seen = np.searchsorted(counts, np.arange(1, ticks.size + 1))
            latencies[ticks] = times[first_seen] - sent[ticks]
        # Kept beside the send times for a closer look (e.g. when the slowest ticks were sent).
        np.save(self._out.with_name(self._out.name.replace("-sent-", "-seconds-")), latencies)
        steady = sent >= self.start_at + self.warmup_s
        return LatencyRun(
            self.rate, self.seconds, self.warmup_s, latencies[steady], latencies[~steady]
        )


def measure_latency(
    bootstrap: str,
    redis_url: str,
    *,
    rate: float,
    seconds: float,
    symbols: int = 100,
    warmup_s: float = 15.0,
    workdir: Path,
    prefix: str = "LAT",
) -> LatencyRun:
    """Produce fresh symbols at ``rate`` ticks/s for ``warmup_s + seconds``; per-tick
    produce-to-Redis latencies (s) of the ticks sent in the last ``seconds`` (steady state)
    and, separately, of those sent during the warm-up.

    The warm-up is reported, not hidden: on this machine the first 10-15 s of a new load
    pattern run slower (p99 about 3x the steady state, the same with fresh symbols after
    a warm phase, so it is the processes warming up, e.g. the broker's JIT, not the
    symbols' state).

    The paced producer runs in its own process (:class:`PacedRun`), so neither it nor this
    observer waits on the other's share of the GIL. The ``k``-th tick of a symbol is in
    Redis once the symbol's ``n_ticks`` reaches ``k``, which Redis keyspace notifications
    announce. Symbols are ``<prefix>0000`` ...: a second measurement on the same topic
    needs a new prefix.
    """
    import redis

    client = redis.Redis.from_url(redis_url)
    client.config_set("notify-keyspace-events", "Kh")
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.psubscribe(f"__keyspace@0__:riskstream:risk:{prefix}*")
    reader = redis.Redis.from_url(redis_url)
    run = PacedRun(
        bootstrap,
        rate=rate,
        seconds=seconds,
        warmup_s=warmup_s,
        symbols=symbols,
        prefix=prefix,
        workdir=workdir,
    )
    observed: dict[int, list[tuple[int, float]]] = defaultdict(list)  # symbol -> [(n_ticks, at)]
    seen = dict.fromkeys(range(symbols), 0)
    while sum(seen.values()) < run.total:
        if time.monotonic() > run.deadline:
            raise TimeoutError(
                f"only {sum(seen.values()):,} of {run.total:,} latency ticks reached Redis"
            )
        message = pubsub.get_message(timeout=0.1)
        if message is None:
            continue
        # Drain every pending notification, then read the notified symbols in one pipelined
        # round trip: an HGET per notification would fall behind and time the observer.
        notified = set()
        while message is not None:
            notified.add(int(message["channel"].decode().rsplit(prefix, 1)[1]))
            message = pubsub.get_message(timeout=0)
        now = time.monotonic()
        order = sorted(notified)
        with reader.pipeline(transaction=False) as pipe:
            for j in order:
                pipe.hget(f"riskstream:risk:{prefix}{j:04d}", "n_ticks")
            counts = pipe.execute()
        for j, n in zip(order, counts, strict=True):
            n = int(n or 0)
            if n > seen[j]:
                observed[j].append((n, now))
                seen[j] = n
    pubsub.close()
    client.close()
    reader.close()
    return run.result(observed)


def measure_raw_latency(
    bootstrap: str,
    *,
    partitions: int,
    rate: float,
    seconds: float,
    symbols: int = 100,
    warmup_s: float = 15.0,
    workdir: Path,
    prefix: str = "RAW",
) -> LatencyRun:
    """The floor under :func:`measure_latency`: the same paced ticks, produce to a no-op
    aiokafka consumer's ``getmany`` (no processing, no Redis), same warm-up split."""
    return asyncio.run(
        _raw_latency(bootstrap, partitions, rate, seconds, symbols, warmup_s, workdir, prefix)
    )


async def _raw_latency(
    bootstrap: str,
    partitions: int,
    rate: float,
    seconds: float,
    symbols: int,
    warmup_s: float,
    workdir: Path,
    prefix: str,
) -> LatencyRun:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        tps = [TopicPartition(PRICES, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)
        run = PacedRun(
            bootstrap,
            rate=rate,
            seconds=seconds,
            warmup_s=warmup_s,
            symbols=symbols,
            prefix=prefix,
            workdir=workdir,
        )
        head = prefix.encode()
        observed: dict[int, list[tuple[int, float]]] = defaultdict(list)
        seen = dict.fromkeys(range(symbols), 0)
        received = 0
        while received < run.total:
            if time.monotonic() > run.deadline:
                raise TimeoutError(f"only {received:,} of {run.total:,} latency ticks consumed")
            batches = await consumer.getmany(timeout_ms=100)
            now = time.monotonic()
            for records in batches.values():
                for record in records:
                    if record.key is None or not record.key.startswith(head):
                        continue
                    j = int(record.key[len(head) :])
                    seen[j] += 1
                    observed[j].append((seen[j], now))
                    received += 1
    finally:
        await consumer.stop()
    return run.result(observed)


def run(
    *,
    ticks: int = 1_000_000,
    symbols: int = 1000,
    partitions: int = 8,
    latency_rate: float = 5000.0,
    latency_seconds: float = 20.0,
    latency_warmup_seconds: float = 15.0,
    tick_interval_ms: int = 1000,
    workdir: Path,
    progress: Progress = print,
) -> E2EResult:
    """Start Kafka and Redis, run the three measurements, stop everything."""
    from engine.services.testing import ServiceHub

    with ServiceHub(fresh_services_dir(workdir), "native") as hub:
        progress("starting Kafka and Redis")
        broker = hub.kafka()
        redis_service = hub.redis()
        settings = Settings(kafka_bootstrap=broker.bootstrap, partitions=partitions)
        ensure_topics(settings)
        progress(
            f"generating {ticks:,} synthetic ticks for {symbols:,} symbols, "
            f"{tick_interval_ms:,} ms apart"
        )
        messages = synthetic_messages(ticks, symbols, interval_ms=tick_interval_ms)
        progress("producing")
        produce_rate = produce_all(broker.bootstrap, messages)
        del messages
        progress("raw aiokafka consume, default garbage-collector settings")
        raw_default = raw_consume_rate(broker.bootstrap, partitions, ticks)
        progress(f"  {raw_default:,.0f} records/s")
        progress("raw aiokafka consume, the worker's garbage-collector settings")
        tune_for_streaming()  # process-wide from here on, as in the worker
        raw = raw_consume_rate(broker.bootstrap, partitions, ticks)
        progress(f"  {raw:,.0f} records/s")
        stages = stage_rates(
            broker.bootstrap,
            partitions=partitions,
            expected=ticks,
            workdir=workdir,
            progress=progress,
        )
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
            metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
            rate = worker_rate(metrics_url, ticks, timeout=600)
            fits = fit_counts(metrics_url)
            progress(f"  {rate:,.0f} ticks/s; fits: {_fits(fits)}")
            progress(
                f"latency at {latency_rate:,.0f} ticks/s for {latency_seconds:.0f}s "
                f"after {latency_warmup_seconds:.0f}s of warm-up"
            )
            sums_before = latency_sums(metrics_url)
            run_ = measure_latency(
                broker.bootstrap,
                redis_service.url,
                rate=latency_rate,
                seconds=latency_seconds,
                warmup_s=latency_warmup_seconds,
                workdir=workdir,
            )
            latency_fits = fit_counts(metrics_url)
            stages_run = stage_means(sums_before, latency_sums(metrics_url))
        finally:
            worker.stop()
        progress("the floor: the same paced ticks to a no-op aiokafka consumer (worker stopped)")
        floor = measure_raw_latency(
            broker.bootstrap,
            partitions=partitions,
            rate=latency_rate,
            seconds=latency_seconds,
            warmup_s=latency_warmup_seconds,
            workdir=workdir,
        )
    ms = run_.steady * 1000.0
    return E2EResult(
        ticks=ticks,
        symbols=symbols,
        partitions=partitions,
        produce_rate=produce_rate,
        raw_consume_rate=raw,
        raw_consume_rate_default_gc=raw_default,
        transport_rate=stages["transport"],
        decode_rate=stages["decode"],
        worker_rate=rate,
        latency_rate=latency_rate,
        latency_seconds=latency_seconds,
        latency_samples=int(ms.size),
        latency_p50_ms=float(np.percentile(ms, 50)),
        latency_p99_ms=float(np.percentile(ms, 99)),
        latency_max_ms=float(ms.max()),
        latency_warmup_seconds=latency_warmup_seconds,
        tick_interval_ms=tick_interval_ms,
        fits=fits,
        latency_fits=latency_fits,
        latency_stages=stages_run,
        raw_latency_p50_ms=floor.percentile_ms(50),
        raw_latency_p99_ms=floor.percentile_ms(99),
        latency_warmup_p99_ms=run_.percentile_ms(99, warm_up=True)
        if run_.warming.size
        else float("nan"),
    )
