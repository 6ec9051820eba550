"""Streaming equals batch: the worker's online numbers are the offline CLI's, to the last bit.

One price file goes two ways: through ``riskstream var forecast`` / ``vol forecast``
(CSV in, CSV out, no services), and through Kafka into a real worker, which publishes
each symbol's latest risk after every micro-batch on ``risk.updates``. Every update the
worker published must equal the offline row for the same symbol and timestamp, for
every published number: VaR 95% and 99%, ES 97.5% and the volatility (GJR-GARCH-t,
refitted with arch in a process pool by the worker, in-process by the CLI).
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pandas as pd
import pytest
from typer.testing import CliRunner

from engine.boundary.schemas import PriceTick
from engine.boundary.timeutil import parse_ts
from engine.cli import app
from engine.core.spec import DEFAULT_METHOD
from engine.faults.harness import WorkerProcess, produce, read_topic, wait_until

from ..helpers.forecast_table import forecast_table

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]


def offline(prices: Path, tmp_path: Path) -> pd.DataFrame:
    """The offline CLI's forecasts, one row per (timestamp, symbol): var/es columns per level, sigma."""
    runner = CliRunner()
    var_csv, vol_csv = tmp_path / "var.csv", tmp_path / "vol.csv"
    levels = "0.95,0.975,0.99"  # the worker's VaR levels and its ES level
    for args in (
        ["var", "forecast", "--prices", str(prices), "--out", str(var_csv), "--levels", levels],
        ["vol", "forecast", "--prices", str(prices), "--out", str(vol_csv), "--model", "gjr"],
    ):
        result = runner.invoke(app, [*args, "--quiet"])
        assert result.exit_code == 0, result.output
    var = pd.read_csv(var_csv)
    assert set(var["method"]) == {DEFAULT_METHOD}
    return forecast_table(var, pd.read_csv(vol_csv))


def test_every_published_update_equals_the_offline_cli(fresh_kafka, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    prices = tmp_path / "bundled.csv"
    result = CliRunner().invoke(app, ["data", "export", "bundled", "--out", str(prices)])
    assert result.exit_code == 0, result.output
    expected = offline(prices, tmp_path)

    frame = pd.read_csv(prices)
    records = [
        (symbol.encode(), PriceTick(symbol, parse_ts(ts), float(price)).to_json())
        for ts, symbol, price in frame[["timestamp", "symbol", "price"]].itertuples(index=False)
    ]
    broker = fresh_kafka()
    env = {
        "RISKSTREAM_KAFKA_BOOTSTRAP": broker.bootstrap,
        "RISKSTREAM_PARTITIONS": "2",
        "RISKSTREAM_BATCH_MAX": "200",  # many micro-batches: many updates to compare
        "RISKSTREAM_APP_ID": "stream-vs-batch",
        # exact comparison: wait for every due fit rather than defer it
        "RISKSTREAM_LATE_FITS": "wait",
        "RISKSTREAM_METRICS_PORT": "0",
        "RISKSTREAM_DATA_DIR": str(tmp_path / "worker-data"),
    }
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        for i in range(0, len(records), 400):  # paced: many micro-batches, many updates
            produce(broker.bootstrap, "prices", records[i : i + 400])
            time.sleep(0.1)
        last_ts = {s: parse_ts(t) for s, t in frame.groupby("symbol")["timestamp"].max().items()}

        def caught_up() -> bool:
            seen = {}
            for update in read_topic(broker.bootstrap, "risk.updates"):
                doc = orjson.loads(update.value)
                seen[doc["symbol"]] = parse_ts(doc["ts"])
            return seen == last_ts

        wait_until(caught_up, 120, "the last tick of every symbol on risk.updates")
        updates = [orjson.loads(u.value) for u in read_topic(broker.bootstrap, "risk.updates")]
        assert worker.errors() == [], worker.errors()
    finally:
        worker.kill()

    assert len(updates) >= 50  # one per symbol per micro-batch
    compared = 0
    for doc in updates:
        row = expected.loc[(doc["symbol"], parse_ts(doc["ts"]))]
        for field, column in (
            ("var_95", "var_0.95"),
            ("var_99", "var_0.99"),
            ("es_975", "es_0.975"),
            ("sigma", "sigma"),
        ):
            want = row[column]
            got = doc[field]
            if pd.isna(want):
                assert got is None, (doc, field)
            else:
                assert got == want, (doc["symbol"], doc["ts"], field)  # exactly
                compared += 1
    assert compared > 150
