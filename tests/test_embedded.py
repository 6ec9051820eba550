"""The embedded runner: the bundled data through the pipeline, with files out and no services."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from engine.config import Settings
from engine.offline.embedded import EmbeddedRunner, tick_records
from engine.pipeline import PricePipeline
from producers.sources import bundled_prices, frame_to_ticks


@pytest.fixture(scope="module")
def bundled() -> list:
    return list(tick_records(frame_to_ticks(bundled_prices())))


def test_embedded_run_equals_one_batch_of_the_pipeline(tmp_path: Path, bundled: list) -> None:
    report = asyncio.run(EmbeddedRunner(Settings(), tmp_path, batch_size=997).run(bundled))
    reference = PricePipeline.from_settings(Settings()).process(bundled, now_ms=2_000_000_000_000)
    assert report.received == len(bundled) == 10_062
    assert report.accepted == reference.accepted
    alerts = [orjson.loads(line) for line in (tmp_path / "alerts.jsonl").read_bytes().splitlines()]
    # the same alerts; within a micro-batch the book's come before the stages' (anomalies),
    # so batch boundaries change their interleaving, not the set
    assert sorted(a["alert_id"] for a in alerts) == sorted(a.alert_id for a in reference.alerts)
    assert report.alerts == len(alerts) > 0
    final = {s.symbol: s for s in reference.snapshots}
    for symbol, summary in report.symbols.items():
        assert summary.sigma == final[symbol].sigma
        assert summary.var == final[symbol].var


def test_violation_rates_are_plausible_for_ewma_normal(tmp_path: Path, bundled: list) -> None:
    report = asyncio.run(EmbeddedRunner(Settings(), tmp_path).run(bundled))
    for level, low, high in [(0.95, 0.04, 0.075), (0.99, 0.008, 0.03)]:
        _, tested, rate = report.violation_rate(level)
        assert tested > 9_000
        assert low < rate < high


def test_pacing_follows_the_requested_rate(tmp_path: Path, bundled: list) -> None:
    # Pacing, not models: the default refits (every 20 returns, in-process here) and the
    # anomaly stage's first trading-calendar load take more than the 0.3 s of the pace.
    settings = Settings(vol_models=("ewma",), var_method="ewma-normal", anomaly_enabled=False)
    report = asyncio.run(EmbeddedRunner(settings, tmp_path, rate=2000).run(bundled[:600]))
    assert 0.25 < report.seconds < 1.0  # 600 ticks at 2000/s is 0.3 s
