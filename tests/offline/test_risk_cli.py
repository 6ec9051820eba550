"""The offline risk commands, as DESIGN.md's "Offline CLI" contract specifies them.

``riskstream var forecast`` writes ``timestamp,symbol,method,level,var,es``; ``riskstream vol
forecast`` writes ``timestamp,symbol,model,sigma``; each row's numbers are the forecast made
with the data up to and including that row, for the symbol's next log return. Errors are
one line on stderr with exit status 2.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from engine.cli import app
from engine.config import Settings
from engine.core.spec import DEFAULT_METHOD
from engine.errors import InputError

#: Short windows so that every method is warm within a few hundred rows.
SMALL = {
    "RISKSTREAM_VAR_WINDOW": "200",
    "RISKSTREAM_VAR_MIN_OBS": "100",
    "RISKSTREAM_GARCH_WINDOW": "200",
    "RISKSTREAM_HAR_WINDOW": "200",
    "RISKSTREAM_REFIT_FIRST": "150",
    "RISKSTREAM_REFIT_EVERY": "100",
}
runner = CliRunner()


def invoke(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    result = runner.invoke(
        app, [*args, "--quiet"] if args[0] != "data" else list(args), env={**SMALL, **(env or {})}
    )
    return result


@pytest.fixture(scope="module")
def prices(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two symbols, 400 daily prices each, Student-t(4) returns with a volatility regime change."""
    rng = np.random.default_rng(7)
    days = pd.date_range("2020-01-01", periods=400, freq="D", tz="UTC")
    rows = []
    for symbol, scale in (("AAA", 0.01), ("BBB", 0.02)):
        sigma = np.where(np.arange(400) < 250, scale, 2.5 * scale)
        returns = sigma * rng.standard_t(4, 400) / np.sqrt(2.0)
        price = 100.0 * np.exp(np.cumsum(returns))
        rows.append(pd.DataFrame({"timestamp": days, "symbol": symbol, "price": price}))
    frame = pd.concat(rows).sort_values("timestamp", kind="stable")
    path = tmp_path_factory.mktemp("prices") / "prices.csv"
    frame.assign(timestamp=frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(
        path, index=False
    )
    return path


def test_the_recommended_method_is_the_settings_default() -> None:
    assert Settings().risk.var_method == DEFAULT_METHOD


def test_var_forecast_writes_the_contract_columns_one_row_per_input_row_and_level(
    prices: Path, tmp_path: Path
) -> None:
    out = tmp_path / "var.csv"
    result = invoke(
        "var", "forecast", "--prices", str(prices), "--out", str(out), "--levels", "0.99,0.95"
    )
    assert result.exit_code == 0, result.output
    assert out.read_text().splitlines()[0] == "timestamp,symbol,method,level,var,es"
    table = pd.read_csv(out)
    assert len(table) == 800 * 2
    assert set(table["method"]) == {DEFAULT_METHOD}
    assert table["level"].tolist()[:4] == [0.95, 0.99, 0.95, 0.99]  # each row's levels, ascending
    warm = table.dropna()
    assert len(warm) > 0.5 * len(table)
    assert (warm["var"] > 0).all() and (warm["es"] >= warm["var"]).all()
    at99 = warm[warm["level"] == 0.99].set_index(["timestamp", "symbol"])["var"]
    at95 = warm[warm["level"] == 0.95].set_index(["timestamp", "symbol"])["var"]
    assert (at99 > at95.loc[at99.index]).all()


def test_ewma_normal_var_is_the_ewma_sigma_times_the_normal_quantile(
    prices: Path, tmp_path: Path
) -> None:
    assert (
        invoke(
            "vol",
            "forecast",
            "--prices",
            str(prices),
            "--out",
            str(tmp_path / "vol.csv"),
            "--model",
            "ewma",
        ).exit_code
        == 0
    )
    assert (
        invoke(
            "var",
            "forecast",
            "--prices",
            str(prices),
            "--out",
            str(tmp_path / "var.csv"),
            "--method",
            "ewma-normal",
            "--levels",
            "0.99",
        ).exit_code
        == 0
    )
    vol = pd.read_csv(tmp_path / "vol.csv")
    var = pd.read_csv(tmp_path / "var.csv")
    assert vol.columns.tolist() == ["timestamp", "symbol", "model", "sigma"]
    assert (vol["model"] == "ewma").all()
    np.testing.assert_allclose(var["var"], vol["sigma"] * stats.norm.ppf(0.99), rtol=1e-9)
    es = vol["sigma"] * stats.norm.pdf(stats.norm.ppf(0.99)) / 0.01
    np.testing.assert_allclose(var["es"], es, rtol=1e-6)


def test_historical_simulation_is_the_empirical_quantile_of_the_last_window_returns(
    prices: Path, tmp_path: Path
) -> None:
    assert (
        invoke(
            "var",
            "forecast",
            "--prices",
            str(prices),
            "--out",
            str(tmp_path / "hs.csv"),
            "--method",
            "hs",
            "--levels",
            "0.95",
        ).exit_code
        == 0
    )
    table = pd.read_csv(tmp_path / "hs.csv")
    frame = pd.read_csv(prices)
    for symbol in ("AAA", "BBB"):
        price = frame.loc[frame["symbol"] == symbol, "price"].to_numpy()
        returns = np.diff(np.log(price))
        var = table.loc[table["symbol"] == symbol, "var"].to_numpy()
        # row i (0-based) has i returns behind it; the window is the last 200 of them
        for i in (100, 101, 250, 399):
            window = returns[max(0, i - 200) : i]
            assert var[i] == pytest.approx(-np.quantile(window, 0.05), rel=1e-9)
        assert np.isnan(var[99])  # fewer than RISKSTREAM_VAR_MIN_OBS returns


def test_forecasts_use_no_future_rows(prices: Path, tmp_path: Path) -> None:
    """Cutting the file after row k leaves every forecast up to row k unchanged."""
    frame = pd.read_csv(prices)
    head = tmp_path / "head.csv"
    frame.iloc[:600].to_csv(head, index=False)
    for path, out in ((prices, "full.csv"), (head, "head.csv")):
        result = invoke("var", "forecast", "--prices", str(path), "--out", str(tmp_path / out))
        assert result.exit_code == 0, result.output
    full, cut = pd.read_csv(tmp_path / "full.csv"), pd.read_csv(tmp_path / "head.csv")
    pd.testing.assert_frame_equal(full.iloc[: len(cut)], cut)
    assert cut["var"].notna().sum() > 300


def test_wide_files_give_the_same_forecasts_as_long_ones(prices: Path, tmp_path: Path) -> None:
    wide = (
        pd.read_csv(prices).pivot(index="timestamp", columns="symbol", values="price").reset_index()
    )
    wide.to_csv(tmp_path / "wide.csv", index=False)
    for path, out in ((prices, "long_vol.csv"), (tmp_path / "wide.csv", "wide_vol.csv")):
        assert (
            invoke(
                "vol",
                "forecast",
                "--prices",
                str(path),
                "--out",
                str(tmp_path / out),
                "--model",
                "gjr",
            ).exit_code
            == 0
        )
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "long_vol.csv"), pd.read_csv(tmp_path / "wide_vol.csv")
    )


def test_repeated_rows_are_reported_not_forecast(prices: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(prices)
    doubled = pd.concat([frame.iloc[:11], frame.iloc[10:11], frame.iloc[11:]])
    doubled.to_csv(tmp_path / "dup.csv", index=False)
    result = invoke(
        "vol",
        "forecast",
        "--prices",
        str(tmp_path / "dup.csv"),
        "--out",
        str(tmp_path / "v.csv"),
        "--model",
        "ewma",
    )
    assert result.exit_code == 0
    assert "1 rows not forecast" in result.output
    assert len(pd.read_csv(tmp_path / "v.csv")) == len(frame)


def test_backtest_writes_tables_and_plots(prices: Path, tmp_path: Path) -> None:
    report = tmp_path / "report"
    result = invoke("backtest", "--prices", str(prices), "--report", str(report), "--rolling", "50")
    assert result.exit_code == 0, result.output
    var = pd.read_csv(report / "var_backtest.csv")
    for column in (
        "method",
        "level",
        "violations",
        "rate",
        "kupiec_p",
        "christoffersen_p",
        "cc_p",
        "zone",
        "pinball",
    ):
        assert column in var.columns
    methods = Settings().risk_spec().methods
    har = {m for m in methods if m.startswith("har-")}  # no 'rv' column: HAR cannot forecast
    assert set(var["method"]) == set(methods) - har
    assert "No forecast in the period for: har-normal" in (report / "report.md").read_text()
    assert var["kupiec_p"].between(0, 1).all()
    es = pd.read_csv(report / "es_backtest.csv")
    assert {"z2", "z2_p"} <= set(es.columns)
    text = (report / "report.md").read_text()
    assert f"published method `{DEFAULT_METHOD}`" in text
    pngs = sorted(p.name for p in report.glob("*.png"))
    assert pngs and all((report / p).stat().st_size > 10_000 for p in pngs)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["var", "forecast", "--prices", "missing.csv", "--out", "o.csv"], "missing.csv"),
        (
            ["var", "forecast", "--prices", "{prices}", "--out", "o.csv", "--method", "magic"],
            "--method 'magic'",
        ),
        (
            ["var", "forecast", "--prices", "{prices}", "--out", "o.csv", "--levels", "95"],
            "--levels '95'",
        ),
        (
            ["vol", "forecast", "--prices", "{prices}", "--out", "o.csv", "--model", "sv"],
            "--model 'sv'",
        ),
        (["var", "forecast", "--prices", "{bad}", "--out", "o.csv"], "price"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(
    prices: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,symbol,price\n2020-01-01T00:00:00Z,AAA,-3\n")
    argv = [a.format(prices=prices, bad=bad) for a in args]
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", *argv, "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("riskstream: error:") and message in proc.stderr
    assert proc.stderr.strip().count("\n") == 0


@pytest.mark.parametrize("model", ["har", "lstm", "transformer"])
def test_a_model_that_needs_realized_variance_refuses_a_close_only_file(
    prices: Path, tmp_path: Path, model: str
) -> None:
    """No empty sigma column with exit 0: the error says why and what to use instead."""
    out = tmp_path / "vol.csv"
    result = invoke("vol", "forecast", "--prices", str(prices), "--out", str(out), "--model", model)
    assert isinstance(result.exception, InputError) and not out.exists()  # exit 2 in main()
    assert f"--model {model} forecasts from realized variance" in str(result.exception)
    assert "no 'rv' column" in str(result.exception)


def test_the_combination_without_realized_variance_averages_the_others_and_says_so(
    prices: Path, tmp_path: Path
) -> None:
    out = tmp_path / "vol.csv"
    result = invoke(
        "vol", "forecast", "--prices", str(prices), "--out", str(out), "--model", "combo"
    )
    assert result.exit_code == 0, result.output
    assert "combo averages ewma, garch, gjr, lstm_r without har, lstm, transformer" in result.output
    sigma = pd.read_csv(out)["sigma"]
    assert sigma.notna().mean() > 0.5


def test_var_forecast_of_avg_is_the_mean_of_its_parts_forecasts(
    prices: Path, tmp_path: Path
) -> None:
    """``--method avg`` runs the models of its parts only and writes the mean of their rows."""
    frames = {}
    for method in ("avg", "gjr-mix", "ewma-fhs"):
        out = tmp_path / f"{method}.csv"
        result = invoke("var", "forecast", "--prices", str(prices), "--out", str(out),
                        "--method", method)  # fmt: skip
        assert result.exit_code == 0, result.output
        frames[method] = pd.read_csv(out)
    avg, gjr, ewma = frames["avg"], frames["gjr-mix"], frames["ewma-fhs"]
    assert set(avg["method"]) == {"avg"}
    both = gjr["var"].notna() & ewma["var"].notna()
    assert both.sum() > 300
    for col in ("var", "es"):
        expected = (gjr.loc[both, col] + ewma.loc[both, col]) / 2
        np.testing.assert_allclose(avg.loc[both, col], expected, rtol=1e-9)
