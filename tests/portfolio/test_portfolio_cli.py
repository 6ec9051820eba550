"""``riskstream portfolio var`` and the positions boundary (files and ``positions`` messages)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from typer.testing import CliRunner

from engine.boundary.records import RawRecord, Reason
from engine.cli import app
from engine.errors import InputError
from engine.portfolio.positions import START_MS, Position, decode_positions, read_positions

runner = CliRunner()


@pytest.fixture(scope="module")
def prices(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three correlated symbols, 300 daily closes, wide format."""
    rng = np.random.default_rng(11)
    shocks = rng.normal(0, 0.01, (300, 3)) @ np.array([[1, 0.5, 0.2], [0, 1, 0.4], [0, 0, 1]])
    prices = 100 * np.exp(np.cumsum(shocks, axis=0))
    days = pd.date_range("2021-01-01", periods=300, freq="D").strftime("%Y-%m-%d")
    path = tmp_path_factory.mktemp("pf") / "prices.csv"
    pd.DataFrame(prices, columns=["AAA", "BBB", "CCC"]).assign(timestamp=days).to_csv(
        path, index=False
    )
    return path


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_portfolio_var_writes_totals_and_components_that_sum_to_them(prices, tmp_path):
    positions = _write(
        tmp_path / "pos.csv",
        "portfolio,symbol,quantity,timestamp\nbook,AAA,10,\nbook,BBB,-4,\nbook,CCC,7,2021-06-01\n",
    )
    out, parts, plot = tmp_path / "var.csv", tmp_path / "parts.csv", tmp_path / "plot.png"
    bt = tmp_path / "backtest.csv"
    result = runner.invoke(
        app,
        [
            "portfolio", "var", "--prices", str(prices), "--positions", str(positions),
            "--out", str(out), "--components", str(parts), "--plot", str(plot),
            "--backtest", str(bt),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    totals, comps = pd.read_csv(out), pd.read_csv(parts)
    assert list(totals.columns) == ["timestamp", "portfolio", "level", "value", "var", "es", "pnl"]
    assert sorted(totals["level"].unique()) == [0.95, 0.975, 0.99]
    assert len(totals) == 3 * (300 - 20)  # ready after 20 grid returns, one row per close
    summed = comps.groupby(["timestamp", "level"])["component_var"].sum()
    joined = totals.set_index(["timestamp", "level"])["var"]
    np.testing.assert_allclose(summed.loc[joined.index], joined, rtol=1e-10)
    # CCC is held from 2021-06-01 on only
    held = comps.groupby("timestamp")["symbol"].apply(lambda s: "CCC" in set(s))
    assert not held[held.index < "2021-06-01"].any() and held[held.index >= "2021-06-01"].all()
    assert totals["pnl"].iloc[:-3].notna().all() and totals["pnl"].iloc[-3:].isna().all()
    assert plot.stat().st_size > 10_000
    table = pd.read_csv(bt)
    assert len(table) == 3 and (table["forecasts"] == 300 - 20 - 1).all()
    hits = -totals["pnl"] > totals["var"]
    assert table.set_index("level")["violations"].to_dict() == {
        level: int(hits[totals["level"] == level].sum()) for level in (0.95, 0.975, 0.99)
    }


def test_bad_positions_get_one_clear_line_and_exit_status_2(prices, tmp_path):
    cases = {
        "portfolio,symbol\nbook,AAA\n": "missing column(s) quantity",
        "portfolio,symbol,quantity\nbook,AAA,lots\n": "row 1",
        "portfolio,symbol,quantity\nbook,ZZZ,1\n": "no prices",
    }
    for text, message in cases.items():
        path = _write(tmp_path / "pos.csv", text)
        result = runner.invoke(
            app,
            ["portfolio", "var", "--prices", str(prices), "--positions", str(path),
             "--out", str(tmp_path / "o.csv")],
        )  # fmt: skip
        assert isinstance(result.exception, InputError) and message in str(result.exception)


def test_option_positions_are_left_out_of_the_linear_book_as_the_service_does(prices, tmp_path):
    instruments = _write(
        tmp_path / "inst.csv",
        "instrument,kind,currency,calendar,underlying,strike,expiry,right,style,multiplier\n"
        "AAA,equity,USD,XNYS,,,,,,\nBBB,equity,USD,XNYS,,,,,,\n"
        "AAA-C,option,USD,XNYS,AAA,100,2022-06-17,call,european,100\n",
    )
    runs = {}
    for name, extra in (("linear", ""), ("with-option", "book,AAA-C,5,\n")):
        positions = _write(
            tmp_path / f"{name}.csv",
            f"portfolio,symbol,quantity,timestamp\nbook,AAA,10,\nbook,BBB,-4,\n{extra}",
        )
        out = tmp_path / f"{name}-var.csv"
        result = runner.invoke(
            app,
            ["portfolio", "var", "--prices", str(prices), "--positions", str(positions),
             "--instruments", str(instruments), "--out", str(out)],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        runs[name] = (pd.read_csv(out), result.output)
    # the same numbers: the option is valued by the Greeks, not the linear book
    pd.testing.assert_frame_equal(runs["linear"][0], runs["with-option"][0])
    assert "left out 1 option position(s) (AAA-C)" in runs["with-option"][1]
    assert "left out" not in runs["linear"][1]


def test_positions_files_in_json_and_csv_read_alike(tmp_path):
    as_json = _write(tmp_path / "p.json", '{"book": {"AAA": 10, "BBB": -4.5}}')
    as_csv = _write(tmp_path / "p.csv", "portfolio,symbol,quantity\nbook,AAA,10\nbook,BBB,-4.5\n")
    expected = [Position("book", "AAA", 10.0, START_MS), Position("book", "BBB", -4.5, START_MS)]
    assert read_positions(as_json) == read_positions(as_csv) == expected
    with pytest.raises(InputError, match="not a number"):
        read_positions(_write(tmp_path / "bad.json", '{"book": {"AAA": "ten"}}'))


def test_positions_messages_are_validated_and_refusals_carry_a_reason():
    good = {"portfolio": "book", "symbol": "AAA", "quantity": -3, "ts": 1_600_000_000_000}
    records = [
        RawRecord(b"book", orjson.dumps(good), 0, 0),
        RawRecord(b"book", b"{not json", 0, 1),
        RawRecord(b"book", orjson.dumps({**good, "quantity": None}), 0, 2),
        RawRecord(b"other", orjson.dumps(good), 0, 3),
        RawRecord(b"book", orjson.dumps({**good, "ts": 4_000_000_000_000}), 0, 4),
    ]
    accepted, dead = decode_positions(records, now_ms=1_700_000_000_000, max_future_skew_ms=0)
    assert accepted == [Position("book", "AAA", -3.0, 1_600_000_000_000)]
    assert [(d.offset, d.reason) for d in dead] == [
        (1, Reason.MALFORMED_JSON),
        (2, Reason.MISSING_FIELD),
        (3, Reason.KEY_MISMATCH),
        (4, Reason.FUTURE_TIMESTAMP),
    ]
    assert all(d.dlq_topic == "positions.dlq" for d in dead)
