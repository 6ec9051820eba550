"""`riskstream deep compare`, machine-learned VaR and `riskstream bench deep` on small inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.deep.model import DEFAULT_DIR, DeepVolModel
from models.deep.data import load_series

SMALL = {
    "RISKSTREAM_VAR_WINDOW": "200",
    "RISKSTREAM_VAR_MIN_OBS": "100",
    "RISKSTREAM_GARCH_WINDOW": "250",
    "RISKSTREAM_HAR_WINDOW": "250",
    "RISKSTREAM_REFIT_FIRST": "250",
    "RISKSTREAM_REFIT_EVERY": "125",
}


@pytest.fixture(scope="module")
def prices(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from producers.sources import sp500_realized

    frame = sp500_realized()
    frame = frame[(frame["timestamp"] >= "2012-06-01") & (frame["timestamp"] < "2015-09-01")]
    path = tmp_path_factory.mktemp("compare") / "spx.csv"
    frame.assign(timestamp=frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(
        path, index=False
    )
    return path


def test_compare_writes_the_table_the_verdict_and_learned_var(tiny, prices, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, out = tiny
    report = tmp_path / "report"
    result = CliRunner().invoke(
        app,
        [
            "deep",
            "compare",
            "--prices",
            str(prices),
            "--report",
            str(report),
            "--models",
            "ewma,garch,har,lstm,transformer,combo",
            "--start",
            "2015-01-01",
            "--end",
            "2015-08-31",
            "--quiet",
        ],
        env={**SMALL, "RISKSTREAM_DEEP_MODEL_DIR": str(out)},
    )
    assert result.exit_code == 0, result.output
    assert "Lowest QLIKE" in result.output and "Level check" in result.output
    vol = pd.read_csv(report / "comparison_vol.csv")
    assert set(vol["model"]) == {"ewma", "garch", "har", "lstm", "transformer", "combo"}
    assert vol["n"].nunique() == 1  # paired sample
    assert vol.loc[vol["model"] == "garch", "dm_p_vs_garch"].isna().all()
    assert vol.loc[vol["model"] != "garch", "dm_p_vs_garch"].between(0, 1).all()
    var = pd.read_csv(report / "comparison_var.csv")
    for method in ("lgbm-quantile", "river-quantile", "lstm-fhs", "combo-mix", "hs"):
        row = var[var["method"] == method]
        assert len(row) == 1, method
        assert 0.0 <= float(row["rate_95"].iloc[0]) <= 0.3
    text = (report / "report.md").read_text()
    assert "## Model comparison" in text and "lgbm-quantile" in text


def test_compare_refuses_prices_without_realized_variance(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    days = pd.date_range("2020-01-01", periods=50, freq="D")
    pd.DataFrame(
        {"timestamp": days.strftime("%Y-%m-%d"), "symbol": "A", "price": np.linspace(1, 2, 50)}
    ).to_csv(path, index=False)
    result = CliRunner().invoke(
        app,
        [
            "deep",
            "compare",
            "--prices",
            str(path),
            "--report",
            str(tmp_path / "r"),
            "--models",
            "ewma,garch",
            "--quiet",
        ],
    )
    assert result.exit_code != 0
    assert "realized variance" in str(result.exception)


def test_bench_deep_reports_batched_and_single_costs(tiny, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, out = tiny
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "deep",
            "--symbols",
            "50",
            "--batches",
            "3",
            "--model-dir",
            str(out),
            "--out",
            str(tmp_path / "b.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "b.json").read_text())
    assert [r["model"] for r in rows] == ["lstm", "transformer"]
    assert all(0 < r["inference_us_per_tick"] <= r["batched_us_per_tick"] for r in rows)


@pytest.mark.parametrize("name", ["lstm", "transformer"])
def test_committed_models_load_and_describe_their_training(name: str) -> None:
    model = DeepVolModel(DEFAULT_DIR / name)
    card = json.loads((DEFAULT_DIR / name / "card.json").read_text())
    assert card["training"]["data"]["sha256"] == load_series().sha256
    assert card["training"]["test_period"] == ["2015-01-01", "2018-04-30"]
    assert card["command"] == "riskstream deep train --out onnx/deep"
    assert card["onnx"]["external_data"] is False
    assert not (DEFAULT_DIR / name / "model.onnx.data").exists()
    assert card["metrics"]["test"]["qlike"] < card["metrics"]["test_garch_feature"]["qlike"]
    windows = np.zeros((3, model.window, 4)) + np.asarray(model.card.mean)
    assert np.isfinite(model.predict_log_var(windows)).all()


def test_backtest_report_can_include_learned_var(prices, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    report = tmp_path / "bt"
    result = CliRunner().invoke(
        app,
        [
            "backtest",
            "--prices",
            str(prices),
            "--report",
            str(report),
            "--start",
            "2015-01-01",
            "--learned-var",
            "--quiet",
        ],
        env={**SMALL, "RISKSTREAM_VOL_MODELS": "ewma,har", "RISKSTREAM_VAR_METHOD": "har-fhs"},
    )
    assert result.exit_code == 0, result.output
    var = pd.read_csv(report / "var_backtest.csv")
    assert {"lgbm-quantile", "river-quantile"} <= set(var["method"])
    assert "river-quantile" in (report / "report.md").read_text()
