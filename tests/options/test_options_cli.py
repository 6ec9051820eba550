"""``riskstream options price``: DESIGN.md's "Options" contract, row by row and column by column."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.cli import main
from engine.options.black import black_scholes_merton

INSTRUMENTS = """instrument,underlying,strike,expiry,right,style
SPX-C100,SPX,100,2024-03-20,call,european
SPX-P95,SPX,95,2024-03-18,put,european
SPX-P105A,SPX,105,2024-06-21,put,american
NDX-C90,NDX,90,2024-06-21,call,european
"""

MARKET = """timestamp,underlying,spot,rate,dividend_yield,vol
2024-03-15T00:00:00Z,SPX,100,0.05,0.01,0.2
2024-03-15T00:00:00Z,NDX,95,0.04,0.02,0.3
2024-03-17T12:00:00Z,SPX,101,0.05,0.01,0.21
2024-03-18T00:00:00Z,SPX,101.5,0.05,0.01,0.22
2024-03-21T00:00:00Z,SPX,102,0.05,0.01,0.2
2024-06-21T00:00:00Z,NDX,97,0.04,0.02,0.3
"""

COLUMNS = ["timestamp", "instrument", "price", "delta", "gamma", "vega", "theta", "rho"]


def run(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys) -> tuple[int, str]:
    """Run the console script's entry point in-process: (exit status, stderr)."""
    monkeypatch.setattr(sys, "argv", ["riskstream", *args])
    with pytest.raises(SystemExit) as stop:
        main()
    return int(stop.value.code or 0), capsys.readouterr().err


def files(tmp_path: Path, instruments: str = INSTRUMENTS, market: str = MARKET) -> list[str]:
    (tmp_path / "instruments.csv").write_text(instruments)
    (tmp_path / "market.csv").write_text(market)
    return [
        "options", "price",
        "--instruments", str(tmp_path / "instruments.csv"),
        "--market", str(tmp_path / "market.csv"),
        "--out", str(tmp_path / "out.csv"),
    ]  # fmt: skip


def test_one_row_per_market_row_of_the_underlying_strictly_before_expiry(
    tmp_path, monkeypatch, capsys
) -> None:
    status, _ = run(files(tmp_path), monkeypatch, capsys)
    assert status == 0
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns) == COLUMNS
    assert list(zip(out["timestamp"], out["instrument"], strict=True)) == [
        ("2024-03-15T00:00:00Z", "SPX-C100"),
        ("2024-03-15T00:00:00Z", "SPX-P95"),
        ("2024-03-15T00:00:00Z", "SPX-P105A"),
        ("2024-03-15T00:00:00Z", "NDX-C90"),
        ("2024-03-17T12:00:00Z", "SPX-C100"),
        ("2024-03-17T12:00:00Z", "SPX-P95"),
        ("2024-03-17T12:00:00Z", "SPX-P105A"),
        # 2024-03-18T00:00Z is SPX-P95's expiry instant: excluded
        ("2024-03-18T00:00:00Z", "SPX-C100"),
        ("2024-03-18T00:00:00Z", "SPX-P105A"),
        ("2024-03-21T00:00:00Z", "SPX-P105A"),
        # NDX-C90 at its expiry instant (2024-06-21T00:00Z): excluded
    ]


def test_european_rows_equal_quantlib_and_intraday_time_is_act365_from_the_timestamp(
    tmp_path, monkeypatch, capsys, quantlib, case
) -> None:
    run(files(tmp_path), monkeypatch, capsys)
    out = pd.read_csv(tmp_path / "out.csv").set_index(["timestamp", "instrument"])
    # Whole days to expiry: QuantLib's AnalyticEuropeanEngine, all six numbers, to 1e-10.
    reference = quantlib("bsm").greeks([case(100.0, 100.0, 5, 0.05, 0.01, 0.2, True)])
    row = out.loc[("2024-03-15T00:00:00Z", "SPX-C100")]
    for name in COLUMNS[2:]:
        assert row[name] == pytest.approx(reference[name][0], rel=1e-10, abs=1e-10), name
    # 2.5 days (60 hours) before 2024-03-20T00:00Z.
    g = black_scholes_merton(101.0, 100.0, 2.5 / 365, 0.05, 0.01, 0.21, True)
    row = out.loc[("2024-03-17T12:00:00Z", "SPX-C100")]
    np.testing.assert_allclose(
        row[COLUMNS[2:]].to_numpy(dtype=float),
        [float(getattr(g, n)) for n in COLUMNS[2:]],
        rtol=1e-15,
    )


def test_american_rows_are_worth_at_least_the_european_price(tmp_path, monkeypatch, capsys) -> None:
    run(files(tmp_path), monkeypatch, capsys)
    out = pd.read_csv(tmp_path / "out.csv").set_index(["timestamp", "instrument"])
    american = out.loc[("2024-03-15T00:00:00Z", "SPX-P105A"), "price"]
    european = float(black_scholes_merton(100.0, 105.0, 98 / 365, 0.05, 0.01, 0.2, False).price)
    assert american > european


def test_an_underlying_without_options_or_market_rows_just_has_no_rows(
    tmp_path, monkeypatch, capsys
) -> None:
    market = MARKET + "2024-03-15T00:00:00Z,RUT,2000,0.05,0.0,0.25\n"
    instruments = INSTRUMENTS + "DAX-C,DAX,15000,2024-06-21,call,european\n"
    status, _ = run(files(tmp_path, instruments, market), monkeypatch, capsys)
    assert status == 0 and len(pd.read_csv(tmp_path / "out.csv")) == 10


def replace_line(text: str, line: int, new: str) -> str:
    lines = text.splitlines()
    lines[line - 1] = new
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("instruments", "market", "message"),
    [
        ("", MARKET, "instruments.csv: the instruments file is empty"),
        (
            "instrument,underlying,strike,expiry,right,style\n",
            MARKET,
            "instruments.csv: the instruments file has a header but no rows",
        ),
        (
            INSTRUMENTS,
            "timestamp,underlying,spot,rate,dividend_yield,vol\n",
            "market.csv: the market file has a header but no rows",
        ),
        (
            "instrument,underlying,strike,expiry,right\nA,SPX,1,2024-01-01,call\n",
            MARKET,
            "missing column(s) style; the instruments file needs instrument,underlying,strike,expiry,right,style",
        ),
        (
            INSTRUMENTS,
            "timestamp,underlying,spot,rate,vol\n",
            "market.csv: missing column(s) dividend_yield",
        ),
        (
            replace_line(INSTRUMENTS, 3, "SPX-P95,SPX,-95,2024-03-18,put,european"),
            MARKET,
            "instruments.csv, row 3 (SPX-P95), column strike: strike '-95' must be a finite number > 0",
        ),
        (
            replace_line(INSTRUMENTS, 2, "SPX-C100,SPX,100,20/03/2024,call,european"),
            MARKET,
            "row 2 (SPX-C100), column expiry: expiry '20/03/2024' must be an ISO date like 2024-12-20",
        ),
        (
            replace_line(INSTRUMENTS, 4, "SPX-P105A,SPX,105,2024-06-21,Put,american"),
            MARKET,
            "row 4 (SPX-P105A), column right: right 'Put' is not one of call, put",
        ),
        (
            replace_line(INSTRUMENTS, 5, "NDX-C90,NDX,90,2024-06-21,call,bermudan"),
            MARKET,
            "row 5 (NDX-C90), column style: style 'bermudan' is not one of european, american",
        ),
        (
            replace_line(INSTRUMENTS, 5, "NDX-C90,,90,2024-06-21,call,european"),
            MARKET,
            "row 5 (NDX-C90), column underlying: the name is empty",
        ),
        (
            replace_line(INSTRUMENTS, 5, "SPX-C100,NDX,90,2024-06-21,call,european"),
            MARKET,
            "row 5, column instrument: 'SPX-C100' appears more than once",
        ),
        (
            INSTRUMENTS,
            replace_line(MARKET, 3, "yesterday,NDX,95,0.04,0.02,0.3"),
            "market.csv, row 3, column timestamp: 'yesterday' is not an ISO 8601 time",
        ),
        (
            INSTRUMENTS,
            replace_line(MARKET, 4, "2024-03-17T12:00:00Z,SPX,0,0.05,0.01,0.21"),
            "market.csv, row 4, column spot: '0' must be a finite number > 0",
        ),
        (
            INSTRUMENTS,
            replace_line(MARKET, 2, "2024-03-15T00:00:00Z,SPX,100,5%,0.01,0.2"),
            "market.csv, row 2, column rate: '5%' must be a finite number (decimal, 0.05 is 5%)",
        ),
        (
            INSTRUMENTS,
            replace_line(MARKET, 2, "2024-03-15T00:00:00Z,SPX,100,0.05,,0.2"),
            "market.csv, row 2, column dividend_yield: empty must be a finite number",
        ),
        (
            INSTRUMENTS,
            replace_line(MARKET, 7, "2024-06-21T00:00:00Z,NDX,97,0.04,0.02,-0.3"),
            "market.csv, row 7, column vol: '-0.3' must be a finite number > 0",
        ),
        (
            INSTRUMENTS,
            replace_line(MARKET, 2, "2024-03-15T00:00:00Z,SPX,100,-0.01,-0.02,0.2"),
            "market.csv, row 2: the American option SPX-P105A cannot be priced at rate -0.01 and dividend yield -0.02",
        ),
    ],
)
def test_bad_input_is_one_line_naming_row_and_column_with_exit_status_2(
    tmp_path, monkeypatch, capsys, instruments: str, market: str, message: str
) -> None:
    status, err = run(files(tmp_path, instruments, market), monkeypatch, capsys)
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("riskstream: error: "), err
    assert message in err
    assert "Traceback" not in err and "<" not in err
    assert not (tmp_path / "out.csv").exists()


def test_a_missing_file_is_named(tmp_path, monkeypatch, capsys) -> None:
    args = files(tmp_path)
    args[args.index("--market") + 1] = str(tmp_path / "nope.csv")
    status, err = run(args, monkeypatch, capsys)
    assert status == 2 and "nope.csv: no such market file" in err


def test_the_console_script_exits_2_with_one_line(tmp_path) -> None:
    args = files(
        tmp_path, market=replace_line(MARKET, 2, "2024-03-15T00:00:00Z,SPX,nan,0.05,0.01,0.2")
    )
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr == (
        f"riskstream: error: {tmp_path / 'market.csv'}, row 2, column spot: 'nan' must be a finite number > 0\n"
    )
