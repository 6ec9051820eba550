"""Credit benchmark: batched ONNX scoring, the credit stage, SHAP explanations and their cache.

Measurements (``riskstream bench credit``):

scoring, in-process, one core
    Taiwan reviews (``passes`` replays of the 30,000 rows, customers recurring) encoded as
    the messages a consumer receives, fed in micro-batches of ``batch`` through the
    transactions pipeline: JSON validation, customer profiles, and the credit stage
    (feature encoding, **one onnxruntime call per micro-batch**, PD / EL state, alerts,
    latest-state hashes; other transaction stages off). Reported per event for the ONNX
    call alone, the credit stage, and the whole pipeline, after a warm-up batch, in CPU
    time (a shared machine's other work does not inflate it), the whole also in wall time.
explanations, with a real Redis
    the PD alerts of the first ``customers`` alerting customers, each recurring ``repeats``
    times in a seeded shuffled order, explained one alert at a time through the
    :class:`~engine.explain.service.ExplanationService` as the worker does (cache read,
    SHAP in the thread pool on a miss, cache and alert-record writes): latency from request
    to attributions attached, split into uncached (computed) and cached (hit), and the hit
    ratio of the replay (with a working cache, ``(repeats - 1) / repeats``). Latencies are
    wall clock: on a loaded machine the 99th percentile includes waiting for a core, so
    the machine's load average is reported too. Also SHAP alone for one row (no Redis).
worker, end to end (``--worker-reviews N``)
    N reviews pre-produced to Kafka, one ``riskstream worker`` with Redis: transactions per
    second from its first processed record (its Prometheus counter) until Redis shows every
    customer's final state (everything written, alerts and explanations included); then
    the same with credit scoring off, the baseline of the transactions path. Anomaly
    detection is off in both. Also the worker's alert count and SHAP cache hit ratio
    (from its metrics: a PD and an EL alert of one review share one computation).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.bench.e2e import fresh_services_dir
from engine.bench.result import BenchResult
from engine.boundary.records import RawRecord
from engine.boundary.timeutil import now_ms
from engine.config import Settings
from engine.gctune import tune_for_streaming

Progress = Callable[[str], None]


@dataclass
class CreditBenchResult(BenchResult):
    events: int
    batch: int
    onnx_us: float
    stage_us: float
    pipeline_us: float
    pipeline_wall_us: float
    customers: int
    repeats: int
    requests: int
    hit_ratio: float
    uncached_p50_ms: float
    uncached_p99_ms: float
    cached_p50_ms: float
    cached_p99_ms: float
    uncached_cpu_p50_ms: float
    uncached_cpu_p99_ms: float
    cached_cpu_p50_ms: float
    cached_cpu_p99_ms: float
    shap_only_p50_ms: float
    shap_only_p99_ms: float
    worker_reviews: int = 0
    worker_rate: float = float("nan")
    worker_rate_without_credit: float = float("nan")
    worker_cpu_us: float = float("nan")
    worker_cpu_us_without_credit: float = float("nan")
    worker_alerts: int = 0
    worker_hit_ratio: float = float("nan")
    load: list[float] = field(default_factory=list)
    """1-minute load average of the machine at the start and at the end."""

    def markdown(self) -> str:
        rows = [
            "| measurement | value |",
            "|---|---|",
            f"| input | {self.events:,} Taiwan credit reviews (customers recurring), micro-batches of {self.batch:,} |",
            f"| ONNX inference, one call per micro-batch (CPU) | {self.onnx_us:.2f} µs/event = {1e6 / self.onnx_us:,.0f} events/s |",
            f"| credit stage: encode, ONNX, PD/EL state, alerts, latest hashes (CPU) | {self.stage_us:.2f} µs/event = {1e6 / self.stage_us:,.0f} events/s |",
            f"| whole transactions pipeline: + JSON validation, profiles, state rows (CPU) | {self.pipeline_us:.2f} µs/event = **{1e6 / self.pipeline_us:,.0f} events/s** |",
            f"| the same, wall clock | {self.pipeline_wall_us:.2f} µs/event = {1e6 / self.pipeline_wall_us:,.0f} events/s |",
            f"| explanation replay | {self.requests:,} PD alerts: {self.customers:,} customers x {self.repeats} recurrences, shuffled |",
            f"| SHAP cache hit ratio of the replay | {self.hit_ratio:.1%} |",
            f"| explanation latency, uncached (cache read, SHAP in the pool, cache + alert record writes) | p50 {self.uncached_p50_ms:.3f} ms, **p99 {self.uncached_p99_ms:.3f} ms** |",
            f"| explanation latency, cached (one round trip: a script reads the entry and writes the alert record) | p50 {self.cached_p50_ms:.3f} ms, **p99 {self.cached_p99_ms:.3f} ms** |",
            f"| CPU time per explanation, uncached / cached (this process, SHAP thread included; waiting for a core excluded) | "
            f"p50 {self.uncached_cpu_p50_ms:.3f} / {self.cached_cpu_p50_ms:.3f} ms, p99 {self.uncached_cpu_p99_ms:.3f} / {self.cached_cpu_p99_ms:.3f} ms |",
            f"| SHAP alone, one row (TreeExplainer, LightGBM TreeSHAP) | p50 {self.shap_only_p50_ms:.3f} ms, p99 {self.shap_only_p99_ms:.3f} ms |",
        ]
        if self.worker_reviews:
            rows.append(
                f"| riskstream worker, end to end ({self.worker_reviews:,} reviews via Kafka, Redis), wall clock | "
                f"{self.worker_rate:,.0f} events/s ({self.worker_cpu_us:.1f} CPU µs/event = {1e6 / self.worker_cpu_us:,.0f} events per CPU second) |"
            )
            rows.append(
                f"| the same worker with credit scoring off (baseline) | {self.worker_rate_without_credit:,.0f} events/s "
                f"({self.worker_cpu_us_without_credit:.1f} CPU µs/event = {1e6 / self.worker_cpu_us_without_credit:,.0f} events per CPU second) |"
            )
            rows.append(
                f"| the worker's alerts and SHAP cache hit ratio | {self.worker_alerts:,} alerts, {self.worker_hit_ratio:.1%} |"
            )
        if self.load:
            rows.append(
                f"| machine load (1-min average, 2 cores), start / end | {self.load[0]:.2f} / {self.load[-1]:.2f} |"
            )
        return "\n".join(rows)


def _review_records(passes: int) -> list[RawRecord]:
    from producers.credit_reviews import taiwan_credit

    start = now_ms() - 30_000 * passes * 10
    return [
        t.to_record(i)
        for i, t in enumerate(taiwan_credit(start_ms=start, interval_ms=10, passes=passes))
    ]


@dataclass(frozen=True, slots=True)
class Scoring:
    """The in-process scoring run: CPU µs per event of each part, wall µs of the whole."""

    events: int
    onnx_us: float
    stage_us: float
    pipeline_us: float
    pipeline_wall_us: float
    alerts: list[Any]


def scoring(settings: Settings, *, passes: int, batch: int) -> Scoring:
    """Feed ``passes`` replays of the Taiwan reviews through the pipeline, credit stage only.

    The first micro-batch is a warm-up; the rest are timed in CPU time of this process
    (:func:`time.process_time`: everything runs on this thread, onnxruntime included), so
    other work on a shared machine does not inflate the figures; the whole run's wall time
    is reported beside it.
    """
    from engine.credit.stage import CreditStage
    from engine.pipeline import TransactionPipeline

    records = _review_records(passes)
    if len(records) <= batch:
        raise ValueError(f"{len(records):,} reviews leave nothing to time after a warm-up batch")
    warm, timed = records[:batch], records[batch:]
    batches = [timed[i : i + batch] for i in range(0, len(timed), batch)]
    # The credit stage alone: other transaction stages (anomaly detectors) are not timed here.
    stage = CreditStage.from_settings(settings)
    pipeline = TransactionPipeline(
        max_future_skew_ms=int(settings.validation.max_future_skew_s * 1000), stages=[stage]
    )
    model = stage.model
    cpu = time.process_time
    onnx_seconds = 0.0
    stage_seconds = 0.0
    predict, run = model.predict, stage.run

    def timed_predict(X: np.ndarray) -> np.ndarray:
        nonlocal onnx_seconds
        started = cpu()
        out = predict(X)
        onnx_seconds += cpu() - started
        return out

    def timed_run(data: Any) -> Any:
        nonlocal stage_seconds
        started = cpu()
        out = run(data)
        stage_seconds += cpu() - started
        return out

    tune_for_streaming()
    now = now_ms()
    alerts = list(pipeline.process(warm, now_ms=now).alerts)
    model.predict = timed_predict  # type: ignore[method-assign]
    stage.run = timed_run  # type: ignore[method-assign]
    started, wall = cpu(), time.perf_counter()
    for b in batches:
        alerts += pipeline.process(b, now_ms=now).alerts
    whole, whole_wall = cpu() - started, time.perf_counter() - wall
    n = len(timed)
    return Scoring(
        n,
        onnx_seconds / n * 1e6,
        stage_seconds / n * 1e6,
        whole / n * 1e6,
        whole_wall / n * 1e6,
        alerts,
    )


async def _explain_replay(
    redis_url: str, alerts: list[Any], settings: Settings
) -> tuple[np.ndarray, np.ndarray, float]:
    """Uncached and cached explanations, one alert at a time: ``(n, 2)`` arrays of wall-clock
    seconds and CPU seconds of this process (SHAP thread included), and the hit ratio."""
    import redis.asyncio as aioredis

    from engine.credit.stage import CreditStage
    from engine.explain.metrics import ExplainMetrics
    from engine.explain.service import ExplanationService

    metrics = ExplainMetrics()
    service = ExplanationService(
        aioredis.from_url(redis_url), metrics=metrics, ttl_s=settings.shap.cache_ttl_s
    )
    for model in CreditStage.from_settings(settings).explainable_models():
        service.register(model)
    latencies: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    try:
        for alert in alerts:
            before = metrics.misses
            started, cpu = time.perf_counter(), time.process_time()
            out = await service.enrich([alert])
            elapsed, used = time.perf_counter() - started, time.process_time() - cpu
            if out[0].attributions is None:
                raise RuntimeError(f"alert {alert.alert_id} came back without attributions")
            latencies[metrics.misses > before].append((elapsed, used))
    finally:
        await service.close()
    miss, hit = (np.array(latencies[k], dtype=np.float64).reshape(-1, 2) for k in (True, False))
    return miss, hit, metrics.ratio


def explanations(
    redis_url: str,
    alerts: list[Any],
    settings: Settings,
    *,
    customers: int,
    repeats: int,
    seed: int = 0,
) -> tuple[int, float, np.ndarray, np.ndarray]:
    """Replay ``customers`` alerting customers ``repeats`` times each: (requests, ratio, miss, hit)."""
    import dataclasses

    chosen: dict[str, Any] = {}
    for alert in alerts:
        if alert.kind == "credit_pd" and alert.subject not in chosen:
            chosen[alert.subject] = alert
        if len(chosen) == customers:
            break
    sequence = [
        dataclasses.replace(alert, alert_id=f"{alert.alert_id}-{k}")
        for k in range(repeats)
        for alert in chosen.values()
    ]
    order = np.random.default_rng(seed).permutation(len(sequence))
    replay = [sequence[i] for i in order]
    if len(chosen) < customers:
        raise ValueError(
            f"only {len(chosen):,} customers raised a PD alert; ask for at most that many"
        )
    miss, hit, ratio = asyncio.run(_explain_replay(redis_url, replay, settings))
    return len(replay), ratio, miss, hit


def shap_alone(alerts: list[Any], settings: Settings, rows: int = 500) -> np.ndarray:
    """Seconds of one single-row SHAP computation (TreeExplainer, LightGBM's TreeSHAP)."""
    from engine.credit.model import CreditModel

    explainer = CreditModel(settings.credit.model_dir or _default_dir()).explainer()
    vectors = [a.explain_input.vector for a in alerts[:rows]]
    explainer.explain(vectors[0])
    out = []
    for v in vectors:
        started = time.perf_counter()
        explainer.explain(v)
        out.append(time.perf_counter() - started)
    return np.array(out)


def _default_dir() -> Path:
    from engine.credit.model import DEFAULT_MODEL_DIR

    return DEFAULT_MODEL_DIR


_PROCESSED = re.compile(
    r'^riskstream_events_processed_total\{outcome="\w+",topic="transactions"\} ([0-9.e+]+)$', re.M
)


def _processed(metrics_url: str) -> int:
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        text = response.read().decode()
    return int(sum(float(v) for v in _PROCESSED.findall(text)))


@dataclass(frozen=True, slots=True)
class WorkerRun:
    rate: float
    """Events per second, wall clock, from the first processed record to the last written."""
    cpu_us: float
    """CPU microseconds of the worker process per event over the same span."""
    totals: dict[str, float]


def produce_reviews(bootstrap: str, reviews: int, partitions: int) -> list[tuple[bytes, bytes]]:
    """Create the topics and produce ``reviews`` Taiwan reviews (all acknowledged)."""
    import warnings

    from engine.kafka.topics import ensure_topics

    ensure_topics(Settings(kafka_bootstrap=bootstrap, partitions=partitions))
    passes = -(-reviews // 30_000)
    messages = []
    for r in _review_records(passes)[:reviews]:
        assert r.key is not None and r.value is not None
        messages.append((r.key, r.value))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import kafka
    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=1 << 20)
    for key, value in messages:
        producer.send("transactions", key=key, value=value)
    producer.flush(300)
    producer.close()
    return messages


def worker_rate(
    bootstrap: str,
    redis_url: str,
    messages: list[tuple[bytes, bytes]],
    workdir: Path,
    progress: Progress,
    *,
    partitions: int,
    credit: bool = True,
) -> WorkerRun:
    """Transactions per second of one fresh worker (own consumer group) over ``messages``.

    ``credit=False`` runs the same worker with credit scoring off (the baseline). Anomaly
    detection is off in both, so the difference is the credit stage and its explanations.
    Also returns the worker process's CPU time per event over the same span (all its
    threads: event loop, SHAP pool, metrics server) and totals from its metrics at the end.
    """
    from engine.faults.harness import WorkerProcess
    from engine.services.ports import free_port

    port = free_port()
    env = {
        "RISKSTREAM_KAFKA_BOOTSTRAP": bootstrap,
        "RISKSTREAM_REDIS_URL": redis_url,
        "RISKSTREAM_PARTITIONS": str(partitions),
        "RISKSTREAM_APP_ID": f"bench-credit-{'on' if credit else 'off'}",
        "RISKSTREAM_CREDIT_ENABLED": str(credit).lower(),
        "RISKSTREAM_ANOMALY_ENABLED": "false",
        "RISKSTREAM_METRICS_PORT": str(port),
        "RISKSTREAM_DATA_DIR": str(workdir / f"worker-data-{credit}"),
    }
    worker = WorkerProcess(env, workdir / f"worker-credit-{credit}.log")
    progress(f"riskstream worker, credit scoring {'on' if credit else 'off'}")
    worker.start()
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + 900
        first_time, first_count, first_cpu = None, 0, 0.0
        while True:
            count = _processed(url)
            if first_time is None and count > 0:
                first_time, first_count, first_cpu = time.perf_counter(), count, _cpu(worker)
            if count >= len(messages):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the worker processed {count:,} of {len(messages):,} reviews")
            time.sleep(0.1)  # every poll renders the worker's metrics, on its CPU
        # Processed is not written: the writer may be up to two micro-batches behind. The
        # run ends when Redis shows every customer's final review count.
        _wait_written(redis_url, messages, deadline)
        assert first_time is not None
        elapsed = time.perf_counter() - first_time
        events = len(messages) - first_count
        cpu_us = (_cpu(worker) - first_cpu) / events * 1e6
        return WorkerRun(events / elapsed, cpu_us, _totals(url))
    finally:
        worker.stop()


def _cpu(worker: Any) -> float:
    """CPU seconds (user + system, every thread) the worker process has used so far."""
    assert worker.proc is not None
    fields = Path(f"/proc/{worker.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_written(redis_url: str, messages: list[tuple[bytes, bytes]], deadline: float) -> None:
    from collections import Counter

    import redis

    expected = Counter(key.decode() for key, _ in messages)
    keys = list(expected)
    client = redis.Redis.from_url(redis_url)
    try:
        while keys:
            with client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hget(f"riskstream:customer:{key}", "count")
                counts = pipe.execute()
            keys = [k for k, c in zip(keys, counts, strict=True) if int(c or 0) < expected[k]]
            if keys and time.monotonic() > deadline:
                raise TimeoutError(f"{len(keys):,} customers never reached Redis")
            if keys:
                time.sleep(0.02)
    finally:
        client.close()


_TOTALS = re.compile(
    r"^(riskstream_batch_duration_seconds_sum|riskstream_credit_scored_total|"
    r"riskstream_alerts_written_total|riskstream_shap_cache_requests_total|"
    r"riskstream_credit_inference_seconds_sum)(\{[^}]*\})? ([0-9.e+]+)$",
    re.M,
)


def _totals(metrics_url: str) -> dict[str, float]:
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        text = response.read().decode()
    out: dict[str, float] = {}
    for name, labels, value in _TOTALS.findall(text):
        key = name + (labels or "")
        out[key] = out.get(key, 0.0) + float(value)
    return out


def _percentile(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if values.size else float("nan")


def run(
    *,
    passes: int = 4,
    batch: int = 20_000,
    customers: int = 1000,
    repeats: int = 5,
    worker_reviews: int = 0,
    workdir: Path,
    redis_url: str | None = None,
    progress: Progress = print,
) -> CreditBenchResult:
    """Run the measurements; services are started under ``workdir`` and stopped at the end.

    ``redis_url``: run the explanation replay in this (empty) Redis instead of starting
    one; only without the worker run, which flushes Redis between its two workers.
    """
    from engine.services.testing import ServiceHub

    if redis_url is not None and worker_reviews:
        raise ValueError("the worker run starts its own Redis: leave redis_url unset")
    settings = Settings()
    load = [os.getloadavg()[0]]
    progress(f"scoring {passes * 30_000:,} reviews in-process")
    scored = scoring(settings, passes=passes, batch=batch)
    alerts = scored.alerts
    progress(
        f"  whole pipeline {1e6 / scored.pipeline_us:,.0f} events/s, "
        f"credit stage {1e6 / scored.stage_us:,.0f} events/s (CPU time)"
    )
    progress("SHAP alone")
    alone = shap_alone(alerts, settings) * 1000
    rate = baseline = cpu_us = baseline_cpu_us = worker_hit_ratio = float("nan")
    worker_alerts = 0
    with ServiceHub(fresh_services_dir(workdir), "native") as hub:
        if redis_url is None:
            progress("starting Redis")
            redis_service = hub.redis()
            redis_url = redis_service.url
        progress(f"explanation replay: {customers:,} customers x {repeats}")
        requests, ratio, miss, hit = explanations(
            redis_url, alerts, settings, customers=customers, repeats=repeats
        )
        if worker_reviews:
            progress(f"starting Kafka, producing {worker_reviews:,} reviews")
            broker = hub.kafka()
            messages = produce_reviews(broker.bootstrap, worker_reviews, partitions=8)
            for credit in (True, False):
                redis_service.flush()
                measured = worker_rate(
                    broker.bootstrap,
                    redis_service.url,
                    messages,
                    workdir,
                    progress,
                    partitions=8,
                    credit=credit,
                )
                totals = measured.totals
                progress(
                    f"  {measured.rate:,.0f} events/s, {measured.cpu_us:.1f} CPU µs/event; {totals}"
                )
                if credit:
                    rate, cpu_us = measured.rate, measured.cpu_us
                    worker_alerts = int(totals.get("riskstream_alerts_written_total", 0))
                    hits = totals.get('riskstream_shap_cache_requests_total{result="hit"}', 0.0)
                    misses = totals.get('riskstream_shap_cache_requests_total{result="miss"}', 0.0)
                    if hits + misses:
                        worker_hit_ratio = hits / (hits + misses)
                else:
                    baseline, baseline_cpu_us = measured.rate, measured.cpu_us
    load.append(os.getloadavg()[0])
    (miss_ms, miss_cpu_ms), (hit_ms, hit_cpu_ms) = (miss * 1000).T, (hit * 1000).T
    return CreditBenchResult(
        events=scored.events,
        batch=batch,
        onnx_us=scored.onnx_us,
        stage_us=scored.stage_us,
        pipeline_us=scored.pipeline_us,
        pipeline_wall_us=scored.pipeline_wall_us,
        customers=customers,
        repeats=repeats,
        requests=requests,
        hit_ratio=ratio,
        uncached_p50_ms=_percentile(miss_ms, 50),
        uncached_p99_ms=_percentile(miss_ms, 99),
        cached_p50_ms=_percentile(hit_ms, 50),
        cached_p99_ms=_percentile(hit_ms, 99),
        uncached_cpu_p50_ms=_percentile(miss_cpu_ms, 50),
        uncached_cpu_p99_ms=_percentile(miss_cpu_ms, 99),
        cached_cpu_p50_ms=_percentile(hit_cpu_ms, 50),
        cached_cpu_p99_ms=_percentile(hit_cpu_ms, 99),
        shap_only_p50_ms=_percentile(alone, 50),
        shap_only_p99_ms=_percentile(alone, 99),
        worker_reviews=worker_reviews,
        worker_rate=rate,
        worker_rate_without_credit=baseline,
        worker_cpu_us=cpu_us,
        worker_cpu_us_without_credit=baseline_cpu_us,
        worker_alerts=worker_alerts,
        worker_hit_ratio=worker_hit_ratio,
        load=load,
    )
