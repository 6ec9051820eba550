"""The metrics of engine/metrics.py on an embedded run (no services): values, hooks, format."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections import namedtuple
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from engine.alerts import Alert
from engine.config import Settings
from engine.metrics import Metrics, TimedStage, models_of
from engine.offline.embedded import EmbeddedRunner, tick_records
from engine.pipeline import TransactionPipeline
from producers.sources import bundled_prices, frame_to_ticks

SETTINGS = Settings(vol_models=("ewma",), var_method="ewma-normal", backtest_window=100)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> EmbeddedRunner:
    runner = EmbeddedRunner(SETTINGS, tmp_path_factory.mktemp("out"))
    ticks = list(frame_to_ticks(bundled_prices()))[:3000]
    asyncio.run(runner.run(tick_records(ticks)))
    return runner


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_per_symbol_risk_equals_the_last_snapshot(run: EmbeddedRunner) -> None:
    book = run.pipeline.book
    for symbol in ("SPX", "NASDAQ"):
        slot = book.index.keys.index(symbol)
        assert slot >= 0
        sigma = value(run.metrics, "riskstream_symbol_volatility", symbol=symbol)
        var99 = value(run.metrics, "riskstream_symbol_var", symbol=symbol, level="99")
        es = value(run.metrics, "riskstream_symbol_es", symbol=symbol, level="975")
        assert sigma is not None and 0 < sigma < 0.2
        assert var99 is not None and var99 > sigma  # the 99% normal quantile is 2.33 sigma
        assert es is not None and es > 0


def test_backtest_zones_count_every_symbol(run: EmbeddedRunner) -> None:
    book = run.pipeline.book
    zones = book.rolling.zones(__import__("numpy").arange(len(book)), "ewma-normal")
    for level, held in zones.items():
        label = f"{level * 100:g}"
        for zone in ("green", "amber", "red"):
            assert value(
                run.metrics, "riskstream_backtest_zone_symbols", method="ewma-normal", level=label,
                zone=zone,
            ) == held.count(zone)  # fmt: skip
        codes = {"green": 0, "amber": 1, "red": 2}
        worst = max((codes[z] for z in held if z), default=-1)
        assert (
            value(run.metrics, "riskstream_backtest_worst_zone", method="ewma-normal", level=label)
            == worst
        )


def test_counters_and_models(run: EmbeddedRunner) -> None:
    m = run.metrics
    assert value(m, "riskstream_events_in_total", topic="prices") == 3000
    assert value(m, "riskstream_symbols") == 2
    assert value(m, "riskstream_model_info", kind="volatility", model="ewma",
                 version=run.pipeline.book.vols["ewma"].model_version) == 1  # fmt: skip
    # Known label combinations exist from the start (rate() sees 0, not nothing).
    assert value(m, "riskstream_dead_letters_total", topic="prices", reason="late") == 0
    assert value(m, "riskstream_var_breaches_total", method="hs", level="95") is not None
    stages = [s.name for s in run.pipeline.stages]
    for name in stages:
        assert isinstance(run.pipeline.stages[stages.index(name)], TimedStage)
        assert value(m, "riskstream_model_inference_seconds_count", model=name) >= 1


def test_symbol_gauges_are_bounded(tmp_path: Path) -> None:
    runner = EmbeddedRunner(SETTINGS, tmp_path, metrics=Metrics(max_symbols=1))
    asyncio.run(runner.run(tick_records(list(frame_to_ticks(bundled_prices()))[:200])))
    text = generate_latest(runner.metrics.registry).decode()
    shown = {line.split('symbol="')[1].split('"')[0] for line in text.splitlines()
             if line.startswith("riskstream_symbol_volatility{")}  # fmt: skip
    assert len(shown) == 1


def test_anomaly_alerts_are_counted_per_detector() -> None:
    metrics = Metrics()
    Outcome = namedtuple("Outcome", "received accepted replayed dead_letters alerts")
    alert = Alert("a1", "anomaly", "c1", 0, "warning", 0.99, 0.9, "anomaly_iforest", "v1", {})
    metrics.record_transactions(Outcome(1, 1, 0, [], [alert]))  # type: ignore[arg-type]
    assert value(metrics, "riskstream_anomaly_alerts_total", topic="transactions",
                 detector="iforest") == 1  # fmt: skip
    assert value(metrics, "riskstream_alerts_total", kind="anomaly", severity="warning") == 1


def test_stages_declare_their_models() -> None:
    class Deep:
        name = "deep"

        def model_versions(self) -> list[tuple[str, str, str]]:
            return [("volatility", "lstm", "abc123")]

        def components(self) -> tuple[()]:
            return ()

        def run(self, data: object) -> object:
            raise AssertionError

    pipeline = TransactionPipeline(stages=[Deep()])
    assert list(models_of(pipeline)) == [("volatility", "lstm", "abc123")]


def test_forgetting_partitions_drops_their_series(run: EmbeddedRunner) -> None:
    metrics = Metrics()
    TP = namedtuple("TP", "topic partition")
    metrics.record_lag("prices", 3, 12)
    metrics.forget_partitions([TP("prices", 3)])
    assert value(metrics, "riskstream_consumer_lag_records", topic="prices", partition="3") is None


def test_exposition_passes_promtool(run: EmbeddedRunner) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: install prometheus (deploy/services.sh install)"
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=generate_latest(run.metrics.registry),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_embedded_run_serves_metrics_on_request(tmp_path: Path) -> None:
    """``riskstream run --metrics`` serves /metrics on the configured port while it runs."""
    import os
    import sys
    import time
    import urllib.request

    from engine.services.ports import free_port

    port = free_port()
    env = {**os.environ, "RISKSTREAM_METRICS_PORT": str(port), "RISKSTREAM_VOL_MODELS": "ewma",
           "RISKSTREAM_VAR_METHOD": "ewma-normal"}  # fmt: skip
    command = ["run", "--metrics", "--rate", "500", "--no-live", "--out", str(tmp_path)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", *command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        seen = 0.0
        while time.monotonic() < deadline and seen == 0:
            time.sleep(0.5)
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    text = r.read().decode()
            except OSError:
                continue
            for line in text.splitlines():
                if line.startswith('riskstream_events_in_total{topic="prices"}'):
                    seen = float(line.split()[-1])
        assert seen > 0
    finally:
        proc.terminate()
        proc.wait(30)
        if proc.stderr:
            proc.stderr.close()
