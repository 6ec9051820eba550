"""Side by side, one run, one report: the ceiling, the obvious alternative, riskstream.

On one broker, one Redis and one pre-produced ``prices`` topic (synthetic ticks):

raw consume
    an aiokafka ``getmany`` loop that does nothing (the worker's GC settings): the ceiling;
riskstream's consumer path, no work; the same plus decoding
    :mod:`engine.bench.transport`: the worker's faust app, consumer and micro-batching
    with nothing behind them, then with decoding (the worker's first stage): how much of
    the ceiling is left before any risk work starts;
naive Faust
    :mod:`engine.bench.naive_faust`, a Faust agent doing EWMA and normal VaR/ES one event
    at a time, state in a Faust table, latest risk and breach alerts to Redis (it does
    less than riskstream);
peers
    Quix Streams and bytewax (:mod:`engine.bench.peers`) doing the naive agent's work as
    their documentation recommends, each in its own process over the whole topic; their
    breach alert ids must equal the rule's on the produced ticks and riskstream's own
    (one worker, ``ewma``/``ewma-normal``), or the run fails;
riskstream, 1 worker and 2 workers
    ``riskstream worker`` processes (a fresh consumer group each time), the whole pipeline
    (validation, sequencing, dead letters, backtests, alerts, Redis, ``risk.updates``, state
    changelog) with the naive agent's models by default (``ewma``, ``ewma-normal``): with
    GARCH/GJR/HAR refits every 20 returns, sustained rates are bounded by the fitter;
latency
    produce-to-Redis p50/p99 at fixed rates, after a warm-up reported apart, for the
    naive agent (a second instance that starts at the end of the topic, so no backlog)
    and for one riskstream worker
    (:func:`engine.bench.e2e.measure_latency`: fresh symbols, a paced producer in its own
    process, Redis keyspace notifications); rates above 80% of the naive agent's
    throughput are skipped for it; and the floor under both, the same paced ticks to a
    no-op aiokafka consumer (:func:`engine.bench.e2e.measure_raw_latency`);
memory per symbol
    Python heap growth (``tracemalloc``) of the pipeline's state with ``--memory-symbols``
    symbols (10,000 by default) warmed up, per symbol, and the size of a symbol's
    persisted state row.

Throughputs are records per second from the first record processed to the last.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.bench.e2e import (
    LatencyRun,
    Progress,
    fresh_services_dir,
    measure_latency,
    measure_raw_latency,
    processed_count,
    produce_all,
    raw_consume_rate,
    synthetic_messages,
)
from engine.bench.peers import runner as peer_runner
from engine.bench.peers.runner import PeerName
from engine.bench.peers.work import reference_alert_ids
from engine.bench.result import BenchResult
from engine.bench.transport import stage_rates
from engine.config import Settings
from engine.faults.harness import WorkerProcess, wait_until
from engine.gctune import tune_for_streaming
from engine.kafka.topics import ensure_topics
from engine.services.ports import free_port


@dataclass
class Latency:
    rate: float
    samples: int
    p50_ms: float
    p99_ms: float
    warmup_p99_ms: float


@dataclass
class PeerRow:
    """A peer's throughput over the whole topic and its breach alerts."""

    product: str
    label: str
    rate: float
    alerts: int


@dataclass
class CompareResult(BenchResult):
    ticks: int
    symbols: int
    partitions: int
    raw_rate: float
    naive_rate: float
    worker_rate: float
    workers2_rate: float
    transport_rate: float = float("nan")
    decode_rate: float = float("nan")
    naive_latency: list[Latency] = field(default_factory=list)
    worker_latency: list[Latency] = field(default_factory=list)
    raw_latency: list[Latency] = field(default_factory=list)
    latency_warmup_seconds: float = 0.0
    memory_symbols: int = 0
    heap_bytes_per_symbol: float = 0.0
    row_bytes_per_symbol: float = 0.0
    peers: list[PeerRow] = field(default_factory=list)
    alerts: int = 0
    """Breach alerts of the rule on the produced ticks."""
    alerts_checked: list[str] = field(default_factory=list)
    """The rows that raised exactly those alerts (the run fails otherwise)."""
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        r = self
        lines = [
            f"Input: {r.ticks:,} synthetic ticks, {r.symbols:,} symbols, {r.partitions} partitions.",
            "",
            "| consumer | records/s | vs naive Faust | vs raw consume |",
            "|---|---|---|---|",
            f"| raw aiokafka consume (ceiling) | {r.raw_rate:,.0f} | {r.raw_rate / r.naive_rate:.1f}x | 100% |",
            f"| riskstream's consumer path, no work | {r.transport_rate:,.0f} | {r.transport_rate / r.naive_rate:.1f}x | {r.transport_rate / r.raw_rate:.1%} |",
            f"| the same plus decoding | {r.decode_rate:,.0f} | {r.decode_rate / r.naive_rate:.1f}x | {r.decode_rate / r.raw_rate:.1%} |",
            f"| naive Faust agent, per event | {r.naive_rate:,.0f} | 1.0x | {r.naive_rate / r.raw_rate:.1%} |",
            *(
                f"| {p.label} | {p.rate:,.0f} | {p.rate / r.naive_rate:.1f}x | {p.rate / r.raw_rate:.1%} |"
                for p in r.peers
            ),
            f"| riskstream, 1 worker | {r.worker_rate:,.0f} | {r.worker_rate / r.naive_rate:.1f}x | {r.worker_rate / r.raw_rate:.1%} |",
            f"| riskstream, 2 workers | {r.workers2_rate:,.0f} | {r.workers2_rate / r.naive_rate:.1f}x | {r.workers2_rate / r.raw_rate:.1%} |",
            "",
            f"| produce-to-Redis latency (after {r.latency_warmup_seconds:.0f} s of warm-up) "
            "| rate (ticks/s) | samples | p50 ms | p99 ms | p99 ms during the warm-up |",
            "|---|---|---|---|---|---|",
        ]
        for name, rows in (
            ("raw aiokafka consume (floor)", r.raw_latency),
            ("naive Faust", r.naive_latency),
            ("riskstream", r.worker_latency),
        ):
            for lat in rows:
                lines.append(
                    f"| {name} | {lat.rate:,.0f} | {lat.samples:,} | {lat.p50_ms:.1f} "
                    f"| {lat.p99_ms:.1f} | {lat.warmup_p99_ms:.1f} |"
                )
        if r.alerts_checked:
            lines += [
                "",
                f"Breach alerts over the {r.ticks:,} ticks: {r.alerts:,}, the same ids from "
                f"{', '.join(r.alerts_checked)} and from the rule in-process.",
            ]
        lines += [
            "",
            f"Memory at {r.memory_symbols:,} symbols: {r.heap_bytes_per_symbol:,.0f} bytes of Python heap "
            f"per symbol (all models' state), persisted state row {r.row_bytes_per_symbol:,.0f} bytes per symbol.",
        ]
        lines.append(
            f"- A worker at 50% of the raw rate has {2e6 / r.raw_rate:.2f} µs per record for everything; "
            f"the consumer path and decoding take {1e6 / r.decode_rate:.2f} µs."
        )
        lines += [f"- {note}" for note in r.notes]
        return "\n".join(lines)


def _latency(run: LatencyRun) -> Latency:
    return Latency(
        run.rate,
        int(run.steady.size),
        run.percentile_ms(50),
        run.percentile_ms(99),
        run.percentile_ms(99, warm_up=True) if run.warming.size else float("nan"),
    )


def _start_naive(
    bootstrap: str,
    redis_url: str,
    partitions: int,
    workdir: Path,
    out: Path,
    expected: int,
    *,
    from_latest: bool = False,
) -> subprocess.Popen[bytes]:
    out.unlink(missing_ok=True)
    log = (workdir / f"{out.stem}.log").open("wb")
    argv = [
        sys.executable, "-m", "engine.bench.naive_faust",
        "--bootstrap", bootstrap, "--redis-url", redis_url,
        "--expected", str(expected), "--out", str(out),
        "--partitions", str(partitions), "--app-id", f"naive-{time.time_ns()}",
    ]  # fmt: skip
    if from_latest:
        argv.append("--from-latest")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    return proc


def workers_rate(urls: list[str], expected: int, timeout: float) -> float:
    """Combined rate of several workers (their counters summed), first record to last."""
    deadline = time.monotonic() + timeout
    first: tuple[float, int] | None = None
    while True:
        count = sum(processed_count(url) for url in urls)
        now = time.perf_counter()
        if first is None and count > 0:
            first = (now, count)
        if count >= expected and first is not None and now > first[0]:
            return (count - first[1]) / (now - first[0])
        if time.monotonic() > deadline:
            raise TimeoutError(f"workers processed {count:,} of {expected:,} in {timeout:.0f}s")
        time.sleep(0.05)


def check_alerts(label: str, got: frozenset[str] | set[str], rule: set[str]) -> None:
    """Raise :class:`RuntimeError` unless a row raised exactly the rule's breach alerts."""
    if got != rule:
        extra, missing = sorted(got - rule), sorted(rule - got)
        raise RuntimeError(
            f"{label} raised {len(got):,} breach alerts where the rule raises {len(rule):,}: "
            f"{len(extra):,} not the rule's (e.g. {extra[:3]}), {len(missing):,} missing "
            f"(e.g. {missing[:3]}); its log is in the workdir"
        )


def riskstream_alert_ids(redis_url: str, expected: int, settle_s: float = 5.0) -> set[str]:
    """riskstream's breach alert ids on the synthetic symbols, once they stop arriving.

    A worker counts a record as processed before its alerts reach Redis; this waits until
    ``expected`` are there or none arrived for ``settle_s``. The latency runs' symbols
    (``LAT...``) are left out.
    """
    ids: set[str] = set()
    changed = time.monotonic()
    while len(ids) < expected and time.monotonic() - changed < settle_s:
        now = set(peer_runner.alert_ids(redis_url, exclude_prefix="LAT"))
        if now != ids:
            ids, changed = now, time.monotonic()
        time.sleep(0.2)
    return ids


def memory_per_symbol(symbols: int, ticks_per_symbol: int = 30) -> tuple[float, float]:
    """``(heap bytes, persisted row bytes)`` per symbol of a price pipeline past warm-up
    (:func:`engine.bench.memory.run`, which first steps a few symbols past the first fits
    so that every column the feed fills is allocated)."""
    from engine.bench.memory import run as run_memory

    result = run_memory(symbols=symbols, ticks=ticks_per_symbol)
    return result.heap_bytes_per_symbol, result.row_bytes_per_symbol


def run(
    *,
    ticks: int = 500_000,
    symbols: int = 1000,
    partitions: int = 8,
    latency_rates: tuple[float, ...] = (1000.0, 5000.0),
    latency_seconds: float = 15.0,
    latency_warmup_seconds: float = 15.0,
    memory_symbols: int = 10_000,
    naive_ticks: int = 50_000,
    vol_models: str = "ewma",
    var_method: str = "ewma-normal",
    peers: tuple[PeerName, ...] = ("quix", "bytewax"),
    workdir: Path,
    progress: Progress = print,
) -> CompareResult:
    """Start Kafka and Redis, measure everything in the module docstring, stop everything.

    Raises :class:`engine.errors.InputError` before starting anything when a framework of
    ``peers`` is not installed, and :class:`RuntimeError` when a row's breach alerts differ
    from the rule's.
    """
    from engine.services.testing import ServiceHub

    peer_runner.check_installed(list(peers))
    check_riskstream = vol_models == "ewma" and var_method == "ewma-normal"

    prefixes = iter(f"LAT{letter}" for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    with ServiceHub(fresh_services_dir(workdir), "native") as hub:
        progress("starting Kafka and Redis")
        # A new consumer group waits 3 s for more members before its first assignment, so
        # two workers started together share the partitions from the first record on.
        broker = hub.kafka(properties={"group.initial.rebalance.delay.ms": 3000})
        redis_service = hub.redis()
        to_redis = functools.partial(measure_latency, redis_url=redis_service.url)

        def timed(label: str, measure: Callable[..., LatencyRun], rate: float) -> Latency:
            """One paced latency run at ``rate`` on fresh symbols, with progress lines."""
            progress(f"  {label}: latency at {rate:,.0f} ticks/s")
            result = _latency(
                measure(
                    broker.bootstrap,
                    rate=rate,
                    seconds=latency_seconds,
                    warmup_s=latency_warmup_seconds,
                    workdir=workdir,
                    prefix=next(prefixes),
                )
            )
            progress(f"    p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms")
            return result

        ensure_topics(Settings(kafka_bootstrap=broker.bootstrap, partitions=partitions))
        progress(f"producing {ticks:,} synthetic ticks for {symbols:,} symbols")
        messages = synthetic_messages(ticks, symbols)
        produce_all(broker.bootstrap, messages)
        rule_ids = reference_alert_ids(json.loads(value) for _, value in messages)
        del messages
        progress(f"  the rule raises {len(rule_ids):,} breach alerts on them")

        progress("raw aiokafka consume (the worker's GC settings)")
        tune_for_streaming()
        raw = raw_consume_rate(broker.bootstrap, partitions, ticks)
        progress(f"  {raw:,.0f} records/s")
        stages = stage_rates(
            broker.bootstrap,
            partitions=partitions,
            expected=ticks,
            workdir=workdir,
            progress=progress,
        )

        progress(f"naive Faust agent (its first {min(naive_ticks, ticks):,} records)")
        naive_latency: list[Latency] = []
        notes: list[str] = []
        out = workdir / "naive.json"
        naive = _start_naive(
            broker.bootstrap, redis_service.url, partitions, workdir, out, min(naive_ticks, ticks)
        )
        try:
            wait_until(lambda: out.exists() or naive.poll() is not None, 3600, "the naive agent")
            if not out.exists():
                raise RuntimeError(f"the naive agent exited {naive.returncode}; see naive.log")
            naive_rate = float(json.loads(out.read_text())["rate"])
            progress(f"  {naive_rate:,.0f} records/s")
        finally:
            naive.terminate()
            naive.wait(60)
        peer_rows, checked = [], []
        for name in peers:
            redis_service.flush()
            progress(f"{peer_runner.NAMES[name]} over all {ticks:,} records")
            peer = peer_runner.run(
                name,
                bootstrap=broker.bootstrap,
                redis_url=redis_service.url,
                expected=ticks,
                workdir=workdir / "peers",
                partitions=partitions,
            )
            check_alerts(peer.label, peer.alert_ids, rule_ids)
            peer_rows.append(PeerRow(peer.product, peer.label, peer.rate, len(peer.alert_ids)))
            checked.append(peer.product)
            progress(f"  {peer.rate:,.0f} records/s, {len(peer.alert_ids):,} alerts (the rule's)")
        redis_service.flush()
        # Latency: a new naive group starting at the end of the topic (no backlog).
        naive = _start_naive(
            broker.bootstrap,
            redis_service.url,
            partitions,
            workdir,
            workdir / "naive-lat.json",
            10**12,
            from_latest=True,
        )
        try:
            time.sleep(8)  # joined and assigned before the paced producer starts
            for rate in latency_rates:
                if rate > 0.8 * naive_rate:
                    note = f"naive Faust: no latency at {rate:,.0f} ticks/s, above 80% of its throughput (it falls behind without bound)"
                    notes.append(note)
                    progress(f"  {note}")
                    continue
                naive_latency.append(timed("naive Faust", to_redis, rate))
        finally:
            naive.terminate()
            naive.wait(60)
        redis_service.flush()
        total = ticks + int(
            sum(lat.rate for lat in naive_latency) * (latency_warmup_seconds + latency_seconds)
        )

        def start_workers(n: int, app_id: str) -> tuple[list[WorkerProcess], list[str]]:
            workers, urls = [], []
            for i in range(n):
                port = free_port()
                env = {
                    "RISKSTREAM_KAFKA_BOOTSTRAP": broker.bootstrap,
                    "RISKSTREAM_REDIS_URL": redis_service.url,
                    "RISKSTREAM_PARTITIONS": str(partitions),
                    "RISKSTREAM_APP_ID": app_id,
                    "RISKSTREAM_VOL_MODELS": vol_models,
                    "RISKSTREAM_VAR_METHOD": var_method,
                    "RISKSTREAM_METRICS_PORT": str(port),
                    "RISKSTREAM_DATA_DIR": str(workdir / f"{app_id}-{i}"),
                }
                worker = WorkerProcess(env, workdir / f"{app_id}-{i}.log", name=f"{app_id}-{i}")
                workers.append(worker)
                urls.append(f"http://127.0.0.1:{port}/metrics")
            # Started together (see the broker's initial rebalance delay): one assignment.
            threads = [threading.Thread(target=w.start) for w in workers]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if not all(w.running for w in workers):
                raise RuntimeError("a worker did not start; see its log in the workdir")
            return workers, urls

        progress("riskstream, 1 worker")
        workers, urls = start_workers(1, "bench-1")
        worker_latency: list[Latency] = []
        try:
            worker_rate = workers_rate(urls, total, timeout=1800)
            progress(f"  {worker_rate:,.0f} records/s")
            if check_riskstream:
                ids = riskstream_alert_ids(redis_service.url, len(rule_ids))
                check_alerts("riskstream, 1 worker", ids, rule_ids)
                checked.append("riskstream (1 worker)")
                progress(f"  {len(ids):,} breach alerts on the synthetic symbols (the rule's)")
            redis_service.flush()
            for rate in latency_rates:
                worker_latency.append(timed("riskstream", to_redis, rate))
        finally:
            for worker in workers:
                worker.stop()
        total += int(sum(latency_rates) * (latency_warmup_seconds + latency_seconds))
        redis_service.flush()
        progress("riskstream, 2 workers")
        workers, urls = start_workers(2, "bench-2")
        try:
            workers2 = workers_rate(urls, total, timeout=1800)
            progress(f"  {workers2:,.0f} records/s")
        finally:
            for worker in workers:
                worker.stop()
        to_consumer = functools.partial(measure_raw_latency, partitions=partitions)
        raw_latency = [timed("raw aiokafka consume (floor)", to_consumer, r) for r in latency_rates]

    progress(f"memory per symbol at {memory_symbols:,} symbols")
    heap, row = memory_per_symbol(memory_symbols)
    notes.append(
        f"riskstream workers ran RISKSTREAM_VOL_MODELS={vol_models}, RISKSTREAM_VAR_METHOD={var_method} "
        "(the naive agent's work: EWMA and normal VaR/ES); the memory figure is the default full model set"
    )
    return CompareResult(
        ticks=ticks,
        symbols=symbols,
        partitions=partitions,
        raw_rate=raw,
        naive_rate=naive_rate,
        worker_rate=worker_rate,
        workers2_rate=workers2,
        transport_rate=stages["transport"],
        decode_rate=stages["decode"],
        naive_latency=naive_latency,
        worker_latency=worker_latency,
        raw_latency=raw_latency,
        latency_warmup_seconds=latency_warmup_seconds,
        memory_symbols=memory_symbols,
        heap_bytes_per_symbol=heap,
        row_bytes_per_symbol=row,
        peers=peer_rows,
        alerts=len(rule_ids),
        alerts_checked=checked,
        notes=notes,
    )
