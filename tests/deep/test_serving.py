"""Serving in the risk book: per-symbol windows, one batched call, VaR methods on top."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.core import PriceRiskBook, RiskSpec
from engine.core.volatility.deep import DeepVolatility
from engine.offline.runs import run_prices
from engine.pipeline import load_deep
from models.deep.data import make_samples
from producers.sources import sp500_realized

MODELS = ("ewma", "lstm", "transformer", "combo")


@pytest.fixture(scope="module")
def spx() -> pd.DataFrame:
    """S&P 500 with realized variance, 2012 to 2015 (RV-less days included as they come)."""
    frame = sp500_realized()
    stamps = frame["timestamp"]
    return frame[(stamps >= "2012-01-01") & (stamps < "2015-07-01")].reset_index(drop=True)


def spec_for(out: Path, models: tuple[str, ...] = MODELS) -> RiskSpec:
    return RiskSpec(
        vol_models=models, method="lstm-fhs", deep_model_dir=str(out), window=100, min_obs=50
    )


def test_stream_forecasts_equal_the_training_windows(tiny, spx) -> None:  # type: ignore[no-untyped-def]
    result, out = tiny
    run = run_prices(spx, spec_for(out), chunk=97)
    for kind in ("lstm", "transformer"):
        fitted = result.final[kind]
        # the same feature recursion started at the first row of the file
        from engine.core.volatility.deep_features import series_windows

        r = np.log(spx["price"].to_numpy())
        r = np.concatenate([[np.nan], np.diff(r)])
        windows, ready = series_windows(r, spx["rv"].to_numpy(), fitted.params)
        expected = np.sqrt(np.exp(fitted.log_var(windows[ready])))
        np.testing.assert_allclose(run.sigma[kind][ready], expected, rtol=2e-5)
        assert np.isnan(run.sigma[kind][: fitted.params.ready_after]).all()


def test_batch_size_and_symbol_interleaving_do_not_change_forecasts(tiny, spx) -> None:  # type: ignore[no-untyped-def]
    _, out = tiny
    spec = spec_for(out)
    one = run_prices(spx, spec, chunk=1)
    two_symbols = pd.concat([spx, spx.assign(symbol="SPX2")]).sort_values(
        "timestamp", kind="stable"
    )
    both = run_prices(two_symbols.reset_index(drop=True), spec, chunk=500)
    for symbol in ("SPX", "SPX2"):
        mine = (both.frame["symbol"] == symbol).to_numpy()
        for v in ("lstm", "transformer", "combo"):
            np.testing.assert_allclose(both.sigma[v][mine], one.sigma[v], rtol=1e-6)
    j = both.method_index("transformer-fhs")
    assert np.isfinite(both.var[-1, j]).all()


def test_one_inference_call_per_micro_batch(tiny, spx) -> None:  # type: ignore[no-untyped-def]
    _, out = tiny
    book = PriceRiskBook(spec_for(out, ("lstm", "ewma")), predictors=load_deep)
    model = book.vols["lstm"]
    assert isinstance(model, DeepVolatility)
    calls = []
    predict = model.predictor.predict_log_var
    model.predictor = type(
        "Counting",
        (),
        {"card": model.card, "predict_log_var": lambda self, w: calls.append(len(w)) or predict(w)},
    )()
    from engine.offline.runs import columns_from_frame

    for start in range(0, 600, 200):
        book.step(columns_from_frame(spx.iloc[start : start + 200], start))
    assert len(calls) == 3


def test_state_round_trip_continues_identically(tiny, spx) -> None:  # type: ignore[no-untyped-def]
    from engine.offline.runs import columns_from_frame

    _, out = tiny
    spec = spec_for(out, ("lstm", "ewma"))
    a, b = PriceRiskBook(spec, predictors=load_deep), PriceRiskBook(spec, predictors=load_deep)
    first, rest = columns_from_frame(spx.iloc[:300], 0), columns_from_frame(spx.iloc[300:400], 300)
    a.step(first)
    b.step(first)
    lstm_a, lstm_b = a.vols["lstm"], b.vols["lstm"]
    saved = lstm_a.export(0)
    lstm_b.reset(0)
    lstm_b.restore(0, saved)
    np.testing.assert_array_equal(a.step(rest).sigma["lstm"], b.step(rest).sigma["lstm"])


def test_vol_forecast_cli_serves_the_deep_models(tiny, spx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, out = tiny
    prices = tmp_path / "spx.csv"
    spx.assign(timestamp=spx["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(
        prices, index=False
    )
    runner = CliRunner()
    env = {"RISKSTREAM_DEEP_MODEL_DIR": str(out)}
    for model in ("lstm", "transformer"):
        result = runner.invoke(
            app,
            [
                "vol",
                "forecast",
                "--prices",
                str(prices),
                "--out",
                str(tmp_path / "v.csv"),
                "--model",
                model,
                "--quiet",
            ],
            env=env,
        )
        assert result.exit_code == 0, result.output
        table = pd.read_csv(tmp_path / "v.csv")
        assert (table["model"] == model).all() and table["sigma"].notna().sum() > 500
    result = runner.invoke(
        app,
        [
            "var",
            "forecast",
            "--prices",
            str(prices),
            "--out",
            str(tmp_path / "var.csv"),
            "--method",
            "transformer-fhs",
            "--quiet",
        ],
        env={**env, "RISKSTREAM_VAR_WINDOW": "100", "RISKSTREAM_VAR_MIN_OBS": "50"},
    )
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "var.csv")["var"].notna().sum() > 100
    missing = runner.invoke(
        app,
        [
            "vol",
            "forecast",
            "--prices",
            str(prices),
            "--out",
            str(tmp_path / "v.csv"),
            "--model",
            "lstm",
            "--quiet",
        ],
        env={"RISKSTREAM_DEEP_MODEL_DIR": str(tmp_path / "nowhere")},
    )
    assert missing.exit_code != 0
    assert "not a deep model directory" in str(missing.exception) + missing.output


def test_training_samples_are_the_streams_windows(tiny) -> None:  # type: ignore[no-untyped-def]
    result, _ = tiny
    fitted = result.final["lstm"]
    samples = make_samples(result.series, fitted.params)
    assert samples.X.shape[1:] == (22, 4)
    assert (np.diff(samples.dates.values) > np.timedelta64(0)).all()
