"""The returns-only deep model (``lstm_r``): closes in, sigma out; trained on squared returns."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from engine.bench.breadth.data import load_series
from engine.bench.breadth.sources import SOURCES
from engine.bench.breadth.split import half
from engine.cli import app
from engine.core.volatility.deep import ReturnsDeepVolatility
from engine.core.volatility.deep_features import FEATURES, RETURNS_FEATURES, FeatureParams
from engine.core.volatility.registry import vol_model, vol_model_names
from engine.deep.card import DeepCard
from engine.deep.model import model_dir
from models.deep.breadth_dev import series_samples
from models.deep.data import load_series as load_sp500
from models.deep.data import make_samples, squared_returns
from models.deep.train import train
from tests.deep.conftest import TINY


def test_lstm_r_is_registered_and_needs_returns_only() -> None:
    assert "lstm_r" in vol_model_names(needs=("returns",))
    assert vol_model("lstm_r") is ReturnsDeepVolatility


def test_the_committed_model_is_the_returns_only_variant_trained_on_the_development_half() -> None:
    card = DeepCard.load(model_dir("lstm-returns"))
    assert tuple(card.inputs) == RETURNS_FEATURES
    trained_on = card.extra["training"]["series"]
    assert len(trained_on) > 30 and all(half(name) == "development" for name in trained_on)


def test_development_samples_pair_each_window_with_the_next_squared_return() -> None:
    closes = pd.Series(
        100 * np.exp(np.cumsum(np.r_[0.0, np.tile([0.01, -0.02, 0.0], 40)])),
        index=pd.bdate_range("2020-01-01", periods=121),
    )
    params = FeatureParams(0.94, 1e-6, 0.1, 0.85, 1e-4, window=5, burn=5)
    samples = series_samples(closes, params)
    returns = np.diff(np.log(closes.to_numpy()))
    assert (
        len(samples) == len(returns) - params.ready_after
    )  # ready after 10 returns, last has no target
    # the last window ends at the second-to-last return; its target is the last return squared
    assert samples.y[-1] == pytest.approx(np.log(max(returns[-1] ** 2, 1e-12)))
    assert samples.X[-1, -1, 0] == pytest.approx(100 * returns[-2])
    assert samples.dates[-1] == closes.index[-1]


def test_vol_forecast_from_closes_alone(tmp_path: Path) -> None:
    series, _ = load_series([s for s in SOURCES if s.name == "arch.data"], "SP500.arch")
    prices = tmp_path / "closes.csv"
    series[0].to_price_csv(prices, max_obs=300)
    assert "rv" not in pd.read_csv(prices).columns
    out = tmp_path / "vol.csv"
    args = ["vol", "forecast", "--prices", str(prices), "--out", str(out), "--quiet"]
    result = CliRunner().invoke(app, [*args, "--model", "lstm_r"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert len(table) == 300 and (table["model"] == "lstm_r").all()
    sigma = table["sigma"].to_numpy()
    warm = DeepCard.load(model_dir("lstm-returns")).features
    # the first forecast follows the window's warm-up: ready_after returns, the first row has none
    assert np.isnan(sigma[: warm.ready_after]).all()
    assert np.isfinite(sigma[warm.ready_after :]).all() and (sigma[warm.ready_after :] > 0).all()


def test_a_model_trained_on_realized_variance_is_refused() -> None:
    card = SimpleNamespace(
        features=FeatureParams(0.94, 1e-6, 0.1, 0.85, 1e-4), version="rv-1", inputs=FEATURES
    )
    with pytest.raises(ValueError, match="trained on"):
        ReturnsDeepVolatility("lstm_r", SimpleNamespace(card=card))  # type: ignore[arg-type]


def test_training_targets_are_next_squared_returns_never_rv() -> None:
    series = load_sp500()
    params = FeatureParams(0.94, 1e-6, 0.1, 0.85, 1e-4, window=5, burn=5)
    view = squared_returns(series)
    samples = make_samples(view, params)
    day = series.dates.get_loc(samples.dates[-1])
    assert samples.y[-1] == pytest.approx(np.log(max(series.returns[day] ** 2, 1e-12)))
    assert not np.allclose(view.rv, series.rv, equal_nan=True)


def test_returns_training_exports_lstm_returns(tmp_path: Path) -> None:
    options = replace(TINY, models=("lstm",), target="returns", plots=False)
    result = train(options, tmp_path, echo=lambda line: None)
    card = DeepCard.load(tmp_path / "lstm-returns")
    assert tuple(card.inputs) == RETURNS_FEATURES and card.name == "lstm-returns"
    assert not (tmp_path / "lstm").exists()
    assert (tmp_path / "lstm-returns" / "training_report.md").is_file()
    assert np.isfinite(result.test["lstm"]["qlike"])
