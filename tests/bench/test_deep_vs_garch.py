"""Deep vs GARCH(1,1) on the breadth daily series: the table, QLIKE and the Diebold-Mariano sign."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.bench.breadth.data import load_series
from engine.bench.breadth.deep_vs_garch import Config, qlike_loss, run, score, summary
from engine.bench.breadth.sources import SOURCES


def _garch_path(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Returns ``r_{t+1}`` of a GARCH(1,1) and their true conditional variances (decimal^2)."""
    rng = np.random.default_rng(seed)
    omega, alpha, beta = 2e-6, 0.1, 0.88
    h = np.empty(n)
    r = np.empty(n)
    h[0] = omega / (1 - alpha - beta)
    for t in range(n):
        r[t] = np.sqrt(h[t]) * rng.standard_normal()
        if t + 1 < n:
            h[t + 1] = omega + alpha * r[t] ** 2 + beta * h[t]
    return r, h


def test_the_true_variance_beats_a_constant_forecast_with_a_negative_statistic() -> None:
    r, h = _garch_path(3000, seed=3)
    constant = np.full_like(h, np.sqrt(np.mean(r**2)))
    row = score(r, {"garch": constant, "truth": np.sqrt(h)}, deep=("truth",))
    assert row["n"] == 3000
    assert row["qlike_truth"] < row["qlike_garch"]
    assert row["dm_truth"] < -2.0 and row["dm_p_truth"] < 0.05 and row["beats_truth"]
    swapped = score(r, {"garch": np.sqrt(h), "flat": constant}, deep=("flat",))
    assert swapped["dm_flat"] == pytest.approx(-row["dm_truth"])
    assert not swapped["beats_flat"]


def test_qlike_is_finite_on_a_zero_return_and_smallest_at_the_true_variance() -> None:
    assert np.isfinite(qlike_loss(np.array([0.0]), np.array([1e-4]))).all()
    grid = np.array([0.5e-4, 1e-4, 2e-4])
    expected = [qlike_loss(np.array([1e-4]), np.array([g]))[0] for g in grid]
    assert int(np.argmin(expected)) == 1  # E[r^2] = 1e-4: the loss is lowest at h = 1e-4


def test_only_rows_where_every_model_forecasts_are_paired() -> None:
    r = np.array([0.01, -0.02, 0.005, np.nan])
    garch = np.array([np.nan, 0.01, 0.01, 0.01])
    deep = np.array([0.01, 0.01, np.nan, 0.01])
    assert score(r, {"garch": garch, "d": deep}, deep=("d",))["n"] == 1


def test_two_short_real_series_through_the_cli(tmp_path: Path) -> None:
    arch = [s for s in SOURCES if s.name == "arch.data"]
    series, missing = load_series(arch, "*.arch")
    assert not missing, missing
    config = Config(out=tmp_path / "dvg.csv", deep=("lstm_r",), max_obs=500)
    table = run(config, series[:2], echo=lambda *a, **k: None)
    assert list(table.columns) == [
        "series", "class", "half", "start", "end", "prices", "n",
        "qlike_garch", "qlike_lstm_r", "dm_lstm_r", "dm_p_lstm_r", "beats_lstm_r", "seconds",
    ]  # fmt: skip
    assert len(table) == 2 and (table["prices"] == 500).all()
    assert (table["n"] > 100).all() and (table["n"] < 500).all()
    assert np.isfinite(table[["qlike_garch", "qlike_lstm_r", "dm_lstm_r"]].to_numpy()).all()
    assert (tmp_path / "dvg.csv").is_file()
    assert summary(table, ("lstm_r",))[0] == "2 of 2 series scored"
