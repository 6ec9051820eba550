"""The offline commands as a new user meets them: options checked before any work, empty
files refused, and every refusal one line on stderr (``riskstream: error: ...``), exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from .test_risk_cli import SMALL

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``riskstream ARGS`` in a subprocess with the short windows of the offline tests."""
    env = {**os.environ, **SMALL, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=env,
    )


def refused(proc: subprocess.CompletedProcess[str], message: str) -> bool:
    """Exit 2 and exactly ``riskstream: error: MESSAGE`` on stderr, one line."""
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"riskstream: error: {message}\n"
    return True


@pytest.fixture(scope="module")
def prices(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One symbol, 300 daily prices from 2020-01-01 (last row 2020-10-26)."""
    rng = np.random.default_rng(3)
    days = pd.date_range("2020-01-01", periods=300, freq="D", tz="UTC")
    price = 100.0 * np.exp(np.cumsum(0.01 * rng.standard_normal(300)))
    path = tmp_path_factory.mktemp("edges") / "prices.csv"
    pd.DataFrame(
        {"timestamp": days.strftime("%Y-%m-%dT%H:%M:%SZ"), "symbol": "AAA", "price": price}
    ).to_csv(path, index=False)
    return path


COVERS = "prices.csv covers 2020-01-01 to 2020-10-26 (300 rows)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--start", "yesterday"],
            "--start 'yesterday': expected a day as YYYY-MM-DD, e.g. 2003-01-02",
        ),
        (
            ["--end", "2020-13-01"],
            "--end '2020-13-01': expected a day as YYYY-MM-DD, e.g. 2003-01-02",
        ),
        (
            ["--start", "2020-06-01", "--end", "2020-05-01"],
            "--end 2020-05-01 is before --start 2020-06-01",
        ),
        (["--rolling", "5"], "--rolling 5: the rolling windows need at least 20 observations"),
        (["--start", "2030-01-01"], f"--start 2030-01-01 is after the last row: {COVERS}"),
        (["--end", "2019-12-31"], f"--end 2019-12-31 is before the first row: {COVERS}"),
    ],
)
def test_backtest_options_are_checked_before_any_forecast(
    prices: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "prices.csv").write_bytes(prices.read_bytes())
    proc = cli(
        "backtest", "--prices", "prices.csv", "--report", "rep", "--quiet", *args, cwd=tmp_path
    )
    assert refused(proc, message)
    assert not (tmp_path / "rep").exists()


def test_backtest_report_that_is_a_file_is_refused_before_any_forecast(
    prices: Path, tmp_path: Path
) -> None:
    (tmp_path / "rep").write_text("not a directory")
    proc = cli("backtest", "--prices", str(prices), "--report", "rep", "--quiet", cwd=tmp_path)
    assert refused(proc, "--report rep: exists and is not a directory")


def test_a_period_before_the_first_forecast_says_where_forecasts_can_be_judged(
    prices: Path, tmp_path: Path
) -> None:
    (tmp_path / "prices.csv").write_bytes(prices.read_bytes())
    proc = cli(
        "backtest",
        "--prices",
        "prices.csv",
        "--report",
        "rep",
        "--quiet",
        "--start",
        "2020-01-01",
        "--end",
        "2020-01-20",
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    head = f"riskstream: error: no VaR forecast to judge from 2020-01-01 to 2020-01-20: {COVERS}; "
    assert proc.stderr.startswith(head) and proc.stderr.count("\n") == 1
    assert "forecasts can be judged from 2020-" in proc.stderr
    assert "too few rows" not in proc.stderr


HEADER_ONLY = "{name}: no price rows (the file has a header only)"


@pytest.mark.parametrize(
    "args",
    [
        ["var", "forecast", "--prices", "empty.csv", "--out", "o.csv", "--quiet"],
        ["vol", "forecast", "--prices", "empty.csv", "--out", "o.csv", "--quiet"],
        ["backtest", "--prices", "empty.csv", "--report", "rep", "--quiet"],
    ],
)
def test_a_header_only_price_file_is_an_error_not_zero_rows(
    tmp_path: Path, args: list[str]
) -> None:
    (tmp_path / "empty.csv").write_text("timestamp,symbol,price\n")
    proc = cli(*args, cwd=tmp_path)
    assert refused(proc, HEADER_ONLY.format(name="empty.csv"))
    assert not (tmp_path / "o.csv").exists() and not (tmp_path / "rep").exists()


def test_a_header_only_series_is_an_error_for_anomaly_score(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("timestamp,value\n")
    proc = cli("anomaly", "score", "--input", "empty.csv", "--out", "o.csv", cwd=tmp_path)
    assert refused(proc, "empty.csv: no rows to score (the file has a header only)")
    assert not (tmp_path / "o.csv").exists()


def test_anomaly_score_shows_a_bad_cell_as_written(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("timestamp,value\n2024-01-01,1\n2024-01-02,abc\n")
    proc = cli("anomaly", "score", "--input", "bad.csv", "--out", "o.csv", cwd=tmp_path)
    assert refused(proc, "bad.csv: column 'value' has 'abc' in row 2, expected a number")


def test_portfolio_var_refuses_empty_files_and_a_bad_start(prices: Path, tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("timestamp,symbol,price\n")
    (tmp_path / "none.csv").write_text("portfolio,symbol,quantity\n")
    (tmp_path / "pos.csv").write_text("portfolio,symbol,quantity\nP,AAA,10\n")
    base = ["portfolio", "var", "--out", "o.csv"]
    proc = cli(*base, "--prices", "empty.csv", "--positions", "pos.csv", cwd=tmp_path)
    assert refused(proc, "pos.csv: no prices in empty.csv for AAA")
    proc = cli(*base, "--prices", str(prices), "--positions", "none.csv", cwd=tmp_path)
    assert refused(proc, "none.csv: no positions")
    proc = cli(
        *base,
        "--prices",
        str(prices),
        "--positions",
        "pos.csv",
        "--start",
        "yesterday",
        cwd=tmp_path,
    )
    assert refused(proc, "--start 'yesterday': expected a day as YYYY-MM-DD, e.g. 2003-01-02")
    assert not (tmp_path / "o.csv").exists()
