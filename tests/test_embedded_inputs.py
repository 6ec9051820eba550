"""``riskstream run`` on a user's own prices and transactions: files and JSON Lines on stdin."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from engine.boundary.records import Reason
from engine.config import Settings
from engine.errors import InputError
from engine.offline.embedded import EmbeddedRunner
from engine.offline.embedded_inputs import jsonl_records, price_records, transaction_records
from engine.pipeline import PricePipeline, TransactionPipeline

SETTINGS = Settings(vol_models=("ewma",), var_method="ewma-normal", credit_enabled=False)


def cli(*args: str, stdin: bytes = b"", cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", "run", "--fast", "--no-live", *args],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        timeout=300,
        env={
            "PATH": "/usr/bin:/bin",
            "RISKSTREAM_VOL_MODELS": "ewma",
            "RISKSTREAM_VAR_METHOD": "ewma-normal",
        },
    )


def test_json_lines_are_keyed_like_a_producer_and_bad_lines_keep_their_bytes() -> None:
    lines = [b'{"symbol": "A", "ts": 1, "price": 2.0}\n', b"\n", b"oops\n", b"[1]\n"]
    records = list(jsonl_records(lines, "symbol"))
    assert [(r.key, r.offset) for r in records] == [(b"A", 0), (None, 1), (None, 2)]
    assert records[1].value == b"oops"


def test_a_price_csv_runs_through_the_same_pipeline_as_the_worker(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("timestamp,A,B\n2024-01-02,100,50\n2024-01-03,101,\n2024-01-04,99,51\n")
    records, total = price_records(str(path))
    records = list(records)
    assert total == 5 == len(records)
    report = asyncio.run(EmbeddedRunner(SETTINGS, tmp_path / "out", rate=None).run(records))
    reference = PricePipeline.from_settings(SETTINGS).process(records, now_ms=2_000_000_000_000)
    assert report.accepted == reference.accepted == 5
    assert report.symbols["B"].price == 51.0


def test_transactions_are_scored_and_bad_rows_become_dead_letters(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text(
        "tx_id,ts,customer_id,amount,channel\n"
        "t1,2024-01-02T10:00:00Z,c1,10.5,web\n"
        "t2,1704190000000,c1,-3,web\n"  # a negative amount
        "t3,2024-01-02T11:00:00Z,c2,7,\n"
    )
    records, total = transaction_records(str(path))
    records = list(records)
    assert total == 3
    runner = EmbeddedRunner(SETTINGS, tmp_path / "out", rate=None)
    report = asyncio.run(runner.run(records, topic="transactions"))
    reference = TransactionPipeline.from_settings(SETTINGS).process(
        records, now_ms=2_000_000_000_000
    )
    assert report.topic == "transactions"
    assert (report.received, report.accepted) == (3, reference.accepted) == (3, 2)
    assert report.dead_letters == {Reason.NEGATIVE_AMOUNT.value: 1}
    (letter,) = (tmp_path / "out" / "dead_letters.jsonl").read_bytes().splitlines()
    assert orjson.loads(letter)["topic"] == "transactions"


def test_a_transaction_file_without_the_contract_columns_is_refused_before_any_work(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("id,amount\n1,2\n")
    with pytest.raises(InputError, match=r"missing column\(s\) tx_id, ts, customer_id"):
        transaction_records(str(path))


def test_json_lines_on_stdin_through_the_cli(tmp_path: Path) -> None:
    ticks = [
        {"symbol": "BBB", "ts": 1_700_000_000_000 + i * 60_000, "price": 10 + i} for i in range(5)
    ]
    stdin = b"".join(orjson.dumps(t) + b"\n" for t in ticks) + b"not json\n"
    proc = cli("--prices", "-", stdin=stdin, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    out = proc.stdout.decode()
    assert "5 / 5" not in out and "6 / 5" in out  # received / accepted
    assert "malformed_json: 1" in out
    letters = (tmp_path / "riskstream-out" / "dead_letters.jsonl").read_bytes().splitlines()
    assert [orjson.loads(x)["reason"] for x in letters] == ["malformed_json"]


def test_both_inputs_on_stdin_is_a_clear_error(tmp_path: Path) -> None:
    proc = cli("--prices", "-", "--transactions", "-", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.decode().strip() == (
        "riskstream: error: --prices and --transactions cannot both read standard input"
    )


def test_a_header_only_price_file_is_an_error_not_an_empty_run(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("timestamp,symbol,price\n")
    proc = cli("--prices", "p.csv", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.decode().count("\n") == 1 and "p.csv" in proc.stderr.decode()
