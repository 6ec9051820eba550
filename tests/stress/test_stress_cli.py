"""``riskstream stress``: the DESIGN.md contract of ``stress run`` and ``stress reverse``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.core.portfolio import PortfolioBook
from engine.errors import InputError
from engine.stress.library import load_library
from producers.sources import read_price_csv

runner = CliRunner()


@pytest.fixture(scope="module")
def prices(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SPX and two correlated stocks, 300 daily closes, wide format."""
    rng = np.random.default_rng(5)
    shocks = rng.normal(0, 0.01, (300, 3)) @ np.array([[1, 0.8, 0.3], [0, 0.6, 0.2], [0, 0, 1]])
    closes = np.array([3000.0, 50.0, 20.0]) * np.exp(np.cumsum(shocks, axis=0))
    days = pd.date_range("2021-01-01", periods=300, freq="D").strftime("%Y-%m-%d")
    path = tmp_path_factory.mktemp("stress") / "prices.csv"
    frame = pd.DataFrame(closes, columns=["SPX", "AAA", "BBB"]).assign(timestamp=days)
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def positions(tmp_path: Path) -> Path:
    path = tmp_path / "positions.csv"
    path.write_text(
        "portfolio,symbol,quantity\nmain,SPX,10\nmain,AAA,-300\nmain,BBB,1000\nsolo,AAA,50\n"
    )
    return path


def last_prices(path: Path) -> dict[str, float]:
    return pd.read_csv(path).iloc[-1].drop("timestamp").astype(float).to_dict()


def invoke(*args: str) -> pd.DataFrame | None:
    result = runner.invoke(app, ["stress", *args])
    assert result.exit_code == 0, result.output
    return None


def test_run_writes_portfolio_scenario_pnl_for_every_approved_scenario(prices, positions, tmp_path):
    out = tmp_path / "run.csv"
    invoke("run", "--prices", str(prices), "--positions", str(positions), "--out", str(out))
    table = pd.read_csv(out)
    assert list(table.columns) == ["portfolio", "scenario", "pnl"]
    cells = [c for s in load_library().runnable() for c in s.cells()]
    assert set(table["scenario"]) == set(cells)
    assert len(table) == 2 * len(cells) and sorted(set(table["portfolio"])) == ["main", "solo"]
    assert "hypo-equity-crash-15" not in set(table["scenario"])  # retired


def test_adhoc_pnl_is_quantity_times_price_times_move_when_every_held_symbol_is_shocked(
    prices, positions, tmp_path
):
    out = tmp_path / "run.csv"
    invoke(
        "run", "--prices", str(prices), "--positions", str(positions), "--out", str(out),
        "--shock", "SPX=-0.10", "--shock", "AAA=-0.25,BBB=0.05",
    )  # fmt: skip
    table = pd.read_csv(out).set_index(["portfolio", "scenario"])["pnl"]
    p = last_prices(prices)
    main = 10 * p["SPX"] * -0.10 + -300 * p["AAA"] * -0.25 + 1000 * p["BBB"] * 0.05
    assert table["main", "adhoc"] == pytest.approx(main, abs=1e-9)
    assert table["solo", "adhoc"] == pytest.approx(50 * p["AAA"] * -0.25, abs=1e-9)


def test_a_grid_cell_is_the_spot_move_times_the_book_value(prices, positions, tmp_path):
    out = tmp_path / "run.csv"
    invoke("run", "--prices", str(prices), "--positions", str(positions), "--out", str(out))
    table = pd.read_csv(out).set_index(["portfolio", "scenario"])["pnl"]
    p = last_prices(prices)
    value = 10 * p["SPX"] - 300 * p["AAA"] + 1000 * p["BBB"]
    assert table["main", "grid-spot-vol:spot-0.20:vol+0.10"] == pytest.approx(
        -0.2 * value, abs=1e-9
    )


def test_detail_flags_every_proxied_move_and_sums_to_the_pnl(prices, positions, tmp_path):
    out, detail = tmp_path / "run.csv", tmp_path / "detail.csv"
    invoke(
        "run", "--prices", str(prices), "--positions", str(positions), "--out", str(out),
        "--detail", str(detail),
    )  # fmt: skip
    rows = pd.read_csv(detail)
    lehman = rows[(rows["scenario"] == "hist-2008-lehman") & (rows["portfolio"] == "main")]
    sources = lehman.set_index("symbol")["source"].to_dict()
    assert sources == {"SPX": "direct", "AAA": "beta", "BBB": "beta"}
    covid = rows[rows["scenario"] == "hist-2020-covid"]  # calibrated on the Dow, absent here
    assert set(covid["source"]) == {"unit-beta"}
    summed = rows.groupby(["portfolio", "scenario"])["pnl"].sum()
    table = pd.read_csv(out).set_index(["portfolio", "scenario"])["pnl"]
    np.testing.assert_allclose(summed.loc[table.index], table, rtol=1e-12, atol=1e-9)


def test_report_draws_bars_heatmap_and_contributions(prices, positions, tmp_path):
    report = tmp_path / "report"
    invoke(
        "run", "--prices", str(prices), "--positions", str(positions),
        "--out", str(tmp_path / "run.csv"), "--report", str(report),
    )  # fmt: skip
    for name in ("pnl_by_scenario.png", "spot_vol_grid-spot-vol.png", "contributions.png"):
        assert (report / name).stat().st_size > 10_000
    assert "worst scenario" in (report / "report.md").read_text()


def test_reverse_moves_lose_exactly_the_amount_along_the_engines_covariance(
    prices, positions, tmp_path
):
    out = tmp_path / "reverse.csv"
    invoke(
        "reverse", "--prices", str(prices), "--positions", str(positions),
        "--loss", "2500", "--out", str(out),
    )  # fmt: skip
    table = pd.read_csv(out)
    assert list(table.columns) == ["portfolio", "symbol", "move"]
    p = last_prices(prices)
    quantity = {
        ("main", "SPX"): 10,
        ("main", "AAA"): -300,
        ("main", "BBB"): 1000,
        ("solo", "AAA"): 50,
    }
    for name, rows in table.groupby("portfolio"):
        pnl = sum(
            quantity[name, s] * p[s] * m for s, m in zip(rows["symbol"], rows["move"], strict=True)
        )
        assert pnl == pytest.approx(-2500.0, abs=1e-6)
    # the direction is C w, C the engine's own EWMA covariance of the same prices
    frame = read_price_csv(prices)
    book = PortfolioBook(interval_ms=86_400_000)
    ts = frame["timestamp"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    book.on_ticks(frame["symbol"], ts, frame["price"].to_numpy())
    book.flush()
    order = [book.index[s] for s in ("AAA", "BBB", "SPX")]
    cov = book.cov.matrix()[np.ix_(order, order)]
    w = np.array([-300 * p["AAA"], 1000 * p["BBB"], 10 * p["SPX"]])
    expected = -2500.0 * cov @ w / (w @ cov @ w)
    main = table[table["portfolio"] == "main"].set_index("symbol")["move"]
    np.testing.assert_allclose(main[["AAA", "BBB", "SPX"]].to_numpy(), expected, rtol=1e-9)


def test_svar_reports_the_stress_window_and_scaled_figures(prices, positions, tmp_path):
    out = tmp_path / "svar.csv"
    invoke(
        "svar", "--prices", str(prices), "--positions", str(positions), "--out", str(out),
        "--window", "100",
    )  # fmt: skip
    table = pd.read_csv(out)
    assert list(table["portfolio"]) == ["main", "solo"]
    assert (table["var"] > 0).all() and (table["es"] >= table["var"] * 0.5).all()
    np.testing.assert_allclose(table["var"], table["var_1d"] * np.sqrt(10))


def test_list_and_show_describe_the_library():
    listed = runner.invoke(app, ["stress", "list"])
    assert (
        listed.exit_code == 0 and "hist-2008-lehman" in listed.output and "retired" in listed.output
    )
    shown = runner.invoke(app, ["stress", "show", "hist-2008-lehman"])
    assert shown.exit_code == 0
    assert "close 2008-09-12 to close 2008-10-10" in shown.output and "arch:sp500" in shown.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shock", "SPX"], "--shock SPX: expected SYMBOL=MOVE"),
        (["--shock", "SPX=down"], "--shock SPX=down: expected SYMBOL=MOVE"),
        (["--shock", "SPX=-1.5"], "makes the price zero or negative"),
        (["--shock", "SPX=-0.1,SPX=-0.2"], "--shock SPX: shocked twice"),
        (["--shock", "NOPE=-0.1"], "--shock: no prices"),
        (["--propagation", "magic"], "--propagation magic: choose from none, beta, correlation"),
        (["--scenarios", "/nonexistent"], "scenario path not found"),
        (["--interval", "soon"], "expected a positive duration"),
    ],
)
def test_bad_run_options_are_input_errors(prices, positions, tmp_path, args, message):
    result = runner.invoke(
        app,
        ["stress", "run", "--prices", str(prices), "--positions", str(positions),
         "--out", str(tmp_path / "o.csv"), *args],
    )  # fmt: skip
    assert isinstance(result.exception, InputError), result.output
    assert message in str(result.exception)
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize(
    ("positions_text", "loss", "message"),
    [
        ("portfolio,symbol,quantity\n", "100", "no positions"),
        ("", "100", "the file is empty"),
        ("portfolio,symbol,quantity\nmain,ZZZ,1\n", "100", "no prices"),
        ("portfolio,symbol,quantity\nmain,AAA,0\n", "100", "every position is closed"),
        (
            "portfolio,symbol,quantity\nmain,AAA,1\n",
            "-5",
            "--loss -5.0: expected a positive amount",
        ),
    ],
)
def test_bad_reverse_input_is_one_line_and_exit_status_2(
    prices, tmp_path, positions_text, loss, message
):
    path = tmp_path / "positions.csv"
    path.write_text(positions_text)
    result = runner.invoke(
        app,
        ["stress", "reverse", "--prices", str(prices), "--positions", str(path),
         "--loss", loss, "--out", str(tmp_path / "o.csv")],
    )  # fmt: skip
    assert isinstance(result.exception, InputError), result.output
    assert message in str(result.exception)


def test_the_console_script_exits_2_with_one_line_and_no_python_repr(prices, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", "stress", "run", "--prices", str(prices),
         "--positions", str(empty), "--out", str(tmp_path / "o.csv"), "--shock", "SPX=x"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("riskstream: error: --shock SPX=x: expected SYMBOL=MOVE")
    assert "Traceback" not in proc.stderr and "[" not in proc.stderr


@pytest.mark.parametrize(
    ("text", "message"), [("", "the file is empty"), ("timestamp,SPX\n", "no prices")]
)
def test_an_empty_price_file_is_an_input_error(positions, tmp_path, text, message):
    empty = tmp_path / "prices.csv"
    empty.write_text(text)
    result = runner.invoke(
        app,
        ["stress", "run", "--prices", str(empty), "--positions", str(positions),
         "--out", str(tmp_path / "o.csv")],
    )  # fmt: skip
    assert isinstance(result.exception, InputError), result.output
    assert message in str(result.exception)
