"""The latency benchmark's own measuring: every paced tick is matched and timed once."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.bench.e2e import measure_raw_latency
from engine.config import Settings
from engine.kafka.topics import ensure_topics

pytestmark = pytest.mark.integration


def test_the_raw_consumer_floor_times_every_paced_tick(
    fresh_kafka: Callable[..., Any], tmp_path: Path
) -> None:
    broker = fresh_kafka()
    ensure_topics(Settings(kafka_bootstrap=broker.bootstrap, partitions=4))
    run = measure_raw_latency(
        broker.bootstrap, partitions=4, rate=200, seconds=3, warmup_s=1, symbols=7, workdir=tmp_path
    )
    assert run.steady.size + run.warming.size == 800
    assert 550 <= run.steady.size <= 650  # sent after the first second
    values = np.concatenate([run.steady, run.warming])
    assert np.isfinite(values).all()
    assert (values > 0).all()  # never seen before it was sent
    assert run.percentile_ms(99) < 1000
    saved = np.load(tmp_path / "latency-seconds-RAW.npy")  # every tick's, in send order
    assert np.array_equal(np.sort(saved), np.sort(values))


def test_the_paced_producer_sends_each_tick_at_or_just_after_its_due_time(
    fresh_kafka: Callable[..., Any], tmp_path: Path
) -> None:
    """Ticks leave in small groups (one wake-up a millisecond), never early, on average at
    the asked rate; the send times it saves are what latencies are measured from."""
    broker = fresh_kafka()
    ensure_topics(Settings(kafka_bootstrap=broker.bootstrap, partitions=2))
    rate, seconds = 2000.0, 2.0
    start_at = time.monotonic() + 6.0  # after the child has imported and connected
    out = tmp_path / "sent.npy"
    subprocess.run(
        [
            sys.executable, "-m", "engine.bench.paced_producer",
            "--bootstrap", broker.bootstrap, "--rate", str(rate), "--seconds", str(seconds),
            "--symbols", "5", "--start-at", repr(start_at), "--out", str(out),
        ],
        check=True,
        timeout=120,
    )  # fmt: skip
    sent = np.load(out)
    due = start_at + np.arange(int(rate * seconds)) / rate
    assert sent.size == 4000
    assert (sent >= due).all()  # never before its time
    assert (np.diff(sent) >= 0).all()  # in order
    late_ms = (sent - due) * 1000
    assert np.median(late_ms) < 5  # one wake-up a millisecond, on a loaded CI machine too
    assert sent[-1] - sent[0] == pytest.approx(seconds, abs=0.1)


def test_the_worker_rate_is_read_from_one_counter_not_a_whole_scrape() -> None:
    """The throughput poll (20 Hz) asks the worker's endpoint for the processed counter
    only: the count is the sum over the price outcomes, and the per-symbol gauges, whose
    exposition held the worker's GIL for milliseconds per poll, are not rendered."""
    from engine.bench.e2e import _PROCESSED_QUERY, processed_count
    from engine.metrics import Metrics, _SymbolGauges, serve
    from engine.services.ports import free_port

    metrics = Metrics()
    for i in range(100):
        _SymbolGauges(metrics, f"S{i:03d}").var(0.99).set(0.02)
    metrics.events_processed.labels("prices", "accepted").inc(1000)
    metrics.events_processed.labels("prices", "rejected").inc(7)
    metrics.events_processed.labels("transactions", "accepted").inc(50)
    port = free_port()
    serve(metrics, "127.0.0.1", port)
    url = f"http://127.0.0.1:{port}/metrics"

    assert processed_count(url) == 1007
    with urllib.request.urlopen(url + _PROCESSED_QUERY, timeout=5) as response:
        restricted = response.read().decode()
    with urllib.request.urlopen(url, timeout=5) as response:
        whole = response.read().decode()
    assert "riskstream_symbol_var" in whole
    assert "riskstream_symbol_var" not in restricted
    assert len(restricted) < len(whole) / 20


def test_the_consumer_path_benchmark_takes_every_record_acks_it_and_stops_itself(
    fresh_kafka: Callable[..., Any], tmp_path: Path
) -> None:
    """Both stages of ``engine.bench.transport`` read the whole topic through the worker's
    consumer path, commit it on their graceful stop, and report a rate; the decode stage
    refuses to time input the worker would not accept."""
    import orjson

    from engine.bench.e2e import produce_all, synthetic_messages
    from engine.bench.transport import STAGES, transport_rate
    from engine.faults.harness import committed_lag, produce
    from engine.kafka.topics import PRICES

    broker = fresh_kafka()
    ensure_topics(Settings(kafka_bootstrap=broker.bootstrap, partitions=4))
    produce_all(broker.bootstrap, synthetic_messages(30_000, 50))
    for stage in STAGES:
        workdir = tmp_path / stage
        workdir.mkdir()
        rate = transport_rate(
            broker.bootstrap, partitions=4, expected=30_000, workdir=workdir, stage=stage
        )
        (result,) = workdir.glob(f"bench-{stage}-*.json")
        report = orjson.loads(result.read_bytes())
        assert report["count"] == 30_000
        assert rate == report["rate"] > 0
        assert committed_lag(broker.bootstrap, result.stem, PRICES) == 0

    produce(broker.bootstrap, PRICES, [(b"AAA", b'{"symbol": "AAA", "price": -1}')])
    with pytest.raises(RuntimeError, match="the decode benchmark exited"):
        transport_rate(
            broker.bootstrap, partitions=4, expected=30_001, workdir=tmp_path, stage="decode"
        )


def test_both_reports_state_the_budget_of_a_worker_at_half_the_raw_rate() -> None:
    """Twice the raw per-record time is all a worker at 50% of raw may spend; the reports
    set it beside what the consumer path and decoding measured, from their own figures."""
    from engine.bench.compare import CompareResult
    from engine.bench.e2e import E2EResult

    e2e = E2EResult(
        ticks=1000, symbols=10, partitions=2, produce_rate=1.0, raw_consume_rate=1_000_000.0,
        raw_consume_rate_default_gc=500_000.0, worker_rate=100_000.0, latency_rate=5000.0,
        latency_seconds=30.0, latency_samples=10, latency_p50_ms=1.0, latency_p99_ms=2.0,
        latency_max_ms=3.0, transport_rate=800_000.0, decode_rate=400_000.0,
    )  # fmt: skip
    assert "| 2.00 µs for everything; the consumer path and decoding take 2.50 µs |" in (
        e2e.markdown()
    )
    compare = CompareResult(
        ticks=1000, symbols=10, partitions=2, raw_rate=1_250_000.0, naive_rate=2000.0,
        worker_rate=100_000.0, workers2_rate=200_000.0, transport_rate=900_000.0,
        decode_rate=500_000.0,
    )  # fmt: skip
    assert "has 1.60 µs per record for everything; the consumer path and decoding take 2.00 µs" in (
        compare.markdown()
    )


def test_the_e2e_report_counts_the_fits_of_its_runs_and_states_the_tick_interval() -> None:
    from engine.bench.e2e import E2EResult

    e2e = E2EResult(
        ticks=420_000, symbols=1000, partitions=8, produce_rate=1.0, raw_consume_rate=1e6,
        raw_consume_rate_default_gc=5e5, worker_rate=1e5, latency_rate=5000.0,
        latency_seconds=20.0, latency_samples=10, latency_p50_ms=1.0, latency_p99_ms=2.0,
        latency_max_ms=3.0, transport_rate=8e5, decode_rate=4e5, tick_interval_ms=14_400_000,
        fits={"submitted": 4000, "done": 219, "timeout": 0, "waited": 0, "deferred": 3781},
    )  # fmt: skip
    report = e2e.markdown()
    assert (
        "| model fits during the throughput run | 4,000 submitted, 219 done, 0 timeout, 0 waited, "
        "3,781 deferred |" in report
    )
    assert "| model fits by the end of the latency run | not reported |" in report
    assert "14,400,000 ms between a symbol's ticks" in report
