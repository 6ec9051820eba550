"""The champion in the pipeline: the hash names the live method, switches alert, streaming = offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from engine.boundary.records import RawRecord
from engine.boundary.schemas import PriceTick
from engine.boundary.timeutil import parse_ts
from engine.cli import app
from engine.config import Settings
from engine.metrics import Metrics
from engine.pipeline import PricePipeline

NOW = 1_700_000_000_000
#: Short windows so that candidates are judged, and switch, within a few hundred rows.
SMALL = {
    "warmup": 5,
    "var_window": 200,
    "var_min_obs": 100,
    "garch_window": 200,
    "refit_first": 150,
    "refit_every": 100,
    "champion_window": 50,
    "champion_patience": 5,
    "champion_margin": 0.0,
    "anomaly_enabled": False,
}


def prices(n: int = 420, seed: int = 11) -> np.ndarray:
    """Student-t(3) returns with a tripling of volatility half-way."""
    rng = np.random.default_rng(seed)
    sigma = np.where(np.arange(n) < n // 2, 0.01, 0.03)
    return 100.0 * np.exp(np.cumsum(sigma * rng.standard_t(3, n) / np.sqrt(3.0)))


def rows(symbols: tuple[str, ...] = ("AAA", "BBB")) -> list[tuple[int, str, float]]:
    """``(ts, symbol, price)`` in arrival order: one daily close per symbol and day."""
    series = {s: prices(seed=11 + k) for k, s in enumerate(symbols)}
    start = 1_500_000_000_000
    n = len(series[symbols[0]])
    return [(start + i * 86_400_000, s, float(series[s][i])) for i in range(n) for s in symbols]


def records() -> list[RawRecord]:
    return [PriceTick(s, ts, p).to_record(i) for i, (ts, s, p) in enumerate(rows())]


def pipeline() -> PricePipeline:
    return PricePipeline.from_settings(Settings(**SMALL))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def streamed() -> tuple[PricePipeline, list]:  # type: ignore[type-arg]
    """The records in micro-batches of 64: every outcome."""
    p, recs = pipeline(), records()
    return p, [p.process(recs[i : i + 64], now_ms=NOW) for i in range(0, len(recs), 64)]


def test_the_default_method_is_the_champion_and_the_hash_says_what_is_live(streamed) -> None:  # type: ignore[no-untyped-def]
    p, outcomes = streamed
    assert p.book.model_name == "champion"
    fields = outcomes[-1].snapshots[0].fields()
    assert fields["model"] == "champion"
    assert fields["live_method"] in Settings().risk.champion_methods
    assert fields["live_reason"].split(":")[0] in ("initial", "lower_loss", "red_zone")
    doc = outcomes[-1].snapshots[0].to_json()
    assert doc["live_method"] == fields["live_method"]


def test_a_switch_is_a_model_switch_alert_and_a_metric(streamed) -> None:  # type: ignore[no-untyped-def]
    _, outcomes = streamed
    alerts = [a for o in outcomes for a in o.alerts if a.kind == "model_switch"]
    switches = [s for o in outcomes for s in o.step.switches]
    assert alerts and len(alerts) == len(switches)
    for alert, switch in zip(alerts, switches, strict=True):
        assert alert.model == switch.live and alert.details["previous"] == switch.previous
        assert alert.details["reason"] == switch.reason
        assert alert.severity == ("critical" if switch.reason == "red_zone" else "info")
    metrics = Metrics(CollectorRegistry())
    for outcome in outcomes:
        metrics.record_prices(outcome)
    counted = sum(
        sample.value
        for metric in metrics.registry.collect()
        if metric.name == "riskstream_model_switches"
        for sample in metric.samples
        if sample.name.endswith("_total")
    )
    assert counted == len(switches)


def test_model_switch_alerts_are_the_same_across_batchings(streamed) -> None:  # type: ignore[no-untyped-def]
    """Ids (rule, subject, triggering tick) and contents: the scores as they stood at the switch."""
    _, outcomes = streamed
    expected = [a.fields() for o in outcomes for a in o.alerts if a.kind == "model_switch"]
    recs = records()
    for size in (len(recs), 17):
        p = pipeline()
        got = [
            a.fields()
            for i in range(0, len(recs), size)
            for a in p.process(recs[i : i + size], now_ms=NOW).alerts
            if a.kind == "model_switch"
        ]
        assert got == expected
    assert len({f["alert_id"] for f in expected}) == len(expected)


def test_var_forecast_default_equals_the_streamed_numbers(streamed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Every snapshot the stream published equals the CLI's default-method row (exactly)."""
    _, outcomes = streamed
    frame = pd.DataFrame(rows(), columns=["ts", "symbol", "price"])
    frame["timestamp"] = pd.to_datetime(frame["ts"], unit="ms", utc=True)
    csv = tmp_path / "prices.csv"
    frame.assign(timestamp=frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))[
        ["timestamp", "symbol", "price"]
    ].to_csv(csv, index=False)
    out = tmp_path / "var.csv"
    env = {
        f"RISKSTREAM_{k.upper()}": str(v).lower() if isinstance(v, bool) else str(v)
        for k, v in SMALL.items()
    }
    result = CliRunner().invoke(
        app, ["var", "forecast", "--prices", str(csv), "--out", str(out), "--quiet"], env=env
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert set(table["method"]) == {"champion"}
    table["ts"] = [parse_ts(t) for t in table["timestamp"]]
    offline = table.set_index(["symbol", "ts", "level"])["var"]
    compared = 0
    for outcome in outcomes:
        for snap in outcome.snapshots:
            for level, value in snap.var.items():
                want = offline.loc[(snap.symbol, snap.ts, level)]
                assert (np.isnan(value) and np.isnan(want)) or value == want
                compared += int(not np.isnan(value))
    assert compared > 20
