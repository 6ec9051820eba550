"""A real worker serving the deep models: its published numbers are the offline CLI's, exactly.

S&P 500 closes with realized variance go through Kafka into a worker whose published
method is ``lstm-fhs`` (the LSTM's volatility, filtered historical simulation) and through
``riskstream var forecast`` / ``vol forecast``; every ``risk.updates`` record must equal
the offline row. Uses the committed models in ``onnx/deep``.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pandas as pd
import pytest
from typer.testing import CliRunner

from engine.boundary.timeutil import format_ts, parse_ts
from engine.cli import app
from engine.faults.harness import WorkerProcess, produce, read_topic, wait_until

from ..helpers.forecast_table import forecast_table

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

RISK = {
    "RISKSTREAM_VOL_MODELS": "ewma,lstm",
    "RISKSTREAM_VAR_METHOD": "lstm-fhs",
    "RISKSTREAM_VAR_WINDOW": "200",
    "RISKSTREAM_VAR_MIN_OBS": "100",
}


def offline(prices: Path, tmp_path: Path) -> pd.DataFrame:
    runner = CliRunner()
    var_csv, vol_csv = tmp_path / "var.csv", tmp_path / "vol.csv"
    for args in (
        [
            "var",
            "forecast",
            "--prices",
            str(prices),
            "--out",
            str(var_csv),
            "--levels",
            "0.95,0.975,0.99",
            "--method",
            "lstm-fhs",
        ],
        ["vol", "forecast", "--prices", str(prices), "--out", str(vol_csv), "--model", "lstm"],
    ):
        result = runner.invoke(app, [*args, "--quiet"], env=RISK)
        assert result.exit_code == 0, result.output
    return forecast_table(pd.read_csv(var_csv), pd.read_csv(vol_csv))


def test_worker_serves_the_lstm_exactly_as_the_offline_cli(fresh_kafka, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from producers.sources import sp500_realized

    frame = sp500_realized()
    frame = frame[(frame["timestamp"] >= "2013-01-01") & (frame["timestamp"] < "2016-01-01")]
    prices = tmp_path / "spx.csv"
    frame.assign(timestamp=frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(
        prices, index=False
    )
    expected = offline(prices, tmp_path)
    ms = frame["timestamp"].to_numpy(dtype="datetime64[ms]").astype("int64").tolist()
    records = []
    for ts, price, rv in zip(ms, frame["price"], frame["rv"], strict=True):
        doc = {"symbol": "SPX", "ts": format_ts(ts), "price": float(price)}
        if rv == rv:
            doc["rv"] = float(rv)
        records.append((b"SPX", orjson.dumps(doc)))
    broker = fresh_kafka()
    env = {
        **RISK,
        "RISKSTREAM_KAFKA_BOOTSTRAP": broker.bootstrap,
        "RISKSTREAM_PARTITIONS": "1",
        "RISKSTREAM_BATCH_MAX": "50",
        "RISKSTREAM_APP_ID": "deep-stream-vs-batch",
        "RISKSTREAM_METRICS_PORT": "0",
        "RISKSTREAM_DATA_DIR": str(tmp_path / "worker-data"),
    }
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        for i in range(0, len(records), 100):
            produce(broker.bootstrap, "prices", records[i : i + 100])
            time.sleep(0.05)
        last = ms[-1]

        def caught_up() -> bool:
            docs = [orjson.loads(u.value) for u in read_topic(broker.bootstrap, "risk.updates")]
            return any(parse_ts(d["ts"]) == last for d in docs)

        wait_until(caught_up, 120, "the last tick on risk.updates")
        updates = [orjson.loads(u.value) for u in read_topic(broker.bootstrap, "risk.updates")]
        assert worker.errors() == [], worker.errors()
    finally:
        worker.kill()
    compared = 0
    for doc in updates:
        row = expected.loc[("SPX", parse_ts(doc["ts"]))]
        for field, column in (
            ("var_95", "var_0.95"),
            ("var_99", "var_0.99"),
            ("es_975", "es_0.975"),
            ("sigma", "sigma"),
        ):
            want, got = row[column], doc[field]
            if pd.isna(want):
                assert got is None, (doc, field)
            else:
                assert got == want, (doc["ts"], field, got, want)
                compared += 1
    assert compared > 20
