"""``riskstream produce`` without a broker: JSON Lines output, determinism, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from engine.boundary.timeutil import now_ms
from engine.cli import app
from engine.config import Settings
from engine.errors import InputError
from engine.pipeline import PricePipeline
from producers.messages import read_jsonl

runner = CliRunner()
START = "2023-11-14T00:00:00Z"


def _lines(text: str) -> list[dict]:
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


def test_produce_has_help_everywhere() -> None:
    for path in (["produce"], ["produce", "prices"], ["produce", "transactions"]):
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, result.output
        assert "Usage" in result.output
    assert "--bad-fraction" in runner.invoke(app, ["produce", "prices", "--help"]).output


def test_synthetic_dry_run_is_byte_identical_for_a_seed() -> None:
    args = ["produce", "prices", "--dry-run", "--symbols", "4", "--ticks", "50"]
    args += ["--start", START, "--seed", "3", "--no-progress"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert first.stdout == runner.invoke(app, args).stdout
    assert first.stdout != runner.invoke(app, [*args[:-3], "4", "--no-progress"]).stdout
    docs = _lines(first.stdout)
    assert len(docs) == 50
    assert {d["key"] for d in docs} == {"SYN000", "SYN001", "SYN002", "SYN003"}
    assert all(orjson.loads(d["value"])["symbol"] == d["key"] for d in docs)
    assert orjson.loads(docs[0]["value"])["ts"] == "2023-11-14T00:00:00Z"
    assert "wrote 50 messages to prices" in first.stderr


def test_real_sources_and_limit() -> None:
    result = runner.invoke(
        app, ["produce", "prices", "--source", "sp500-1min", "--limit", "3", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    values = [orjson.loads(d["value"]) for d in _lines(result.stdout)]
    assert [v["ts"] for v in values] == [
        "2019-11-05T14:30:00Z",
        "2019-11-05T14:31:00Z",
        "2019-11-05T14:32:00Z",
    ]
    result = runner.invoke(
        app,
        [
            "produce",
            "transactions",
            "--source",
            "fraud-handbook",
            "--labels",
            "--limit",
            "2",
            "--dry-run",
        ],
    )
    assert result.exit_code == 0, result.output
    docs = _lines(result.stdout)
    assert [d["key"] for d in docs] == ["596", "4961"]
    assert orjson.loads(docs[0]["value"])["tx_fraud"] == 0


def test_csv_source(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text("timestamp,AAA,BBB\n2024-01-02,10,20\n2024-01-03,11,\n")
    result = runner.invoke(
        app, ["produce", "prices", "--source", "csv", "--file", str(path), "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert [d["key"] for d in _lines(result.stdout)] == ["AAA", "BBB", "AAA"]


def test_out_file_with_bad_records_is_labelled_for_the_engine(tmp_path: Path) -> None:
    out = tmp_path / "prices.jsonl"
    args = ["produce", "prices", "--ticks", "3000", "--symbols", "3", "--seed", "5"]
    result = runner.invoke(app, [*args, "--bad-fraction", "0.1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "wrote" in result.stderr and "injected bad records" in result.stderr
    messages = [m for _, m in read_jsonl(out)]
    records = [m.to_record(offset) for offset, m in enumerate(messages)]
    outcome = PricePipeline.from_settings(Settings()).process(records, now_ms=now_ms())
    dead = {d.offset: d.reason for d in outcome.dead_letters}
    assert dead == {i: m.expected for i, m in enumerate(messages) if m.expected is not None}
    assert outcome.accepted == 3000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["prices", "--source", "csv"], "needs --file"),
        (["prices", "--source", "sp500", "--symbols", "3"], "synthetic only"),
        (["prices", "--source", "nasdaq", "--file", "x.csv"], "--file applies"),
        (["prices", "--rate", "5", "--speed", "2"], "not both"),
        (["prices", "--rate", "0"], "positive"),
        (["prices", "--bad-fraction", "1"], "below 1"),
        (["prices", "--start", "tomorrow-ish"], "ISO 8601"),
        (["prices", "--symbols", "0"], "greater than or equal to 1"),
        (["prices", "--source", "nyse"], "nyse"),
        (["transactions", "--labels"], "--labels applies"),
        (["transactions", "--source", "fraud-handbook", "--count", "5"], "synthetic only"),
    ],
)
def test_bad_options_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["produce", *args, "--dry-run"], env={"COLUMNS": "240"})
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_bad_input_raises_input_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["produce", "prices", "--source", "csv", "--file", str(tmp_path / "no.csv"), "--dry-run"],
    )
    assert isinstance(result.exception, InputError)
    result = runner.invoke(app, ["produce", "prices", "--start", "2999-01-01", "--dry-run"])
    assert isinstance(result.exception, InputError) and "future" in str(result.exception)


def test_console_script_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "missing.csv"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "produce",
            "prices",
            "--source",
            "csv",
            "--file",
            str(missing),
            "--dry-run",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"riskstream: error: file not found: {missing}"
    assert proc.stdout == ""


def test_no_bootstrap_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RISKSTREAM_KAFKA_BOOTSTRAP", raising=False)
    result = runner.invoke(app, ["produce", "prices", "--ticks", "5"])
    assert "RISKSTREAM_KAFKA_BOOTSTRAP is not set" in str(result.exception)
