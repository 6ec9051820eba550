"""Option stress in a base currency through real Kafka and Redis equals ``stress run``.

The pound book of ``tests/stress/test_stress_base_currency.py`` (real FX and DJIA closes,
1980-81; a DJIA call priced in dollars, a DEMJPY put priced in yen, a DJIA put priced in
francs that have no rate) goes through the ``instruments``, ``positions`` and ``prices``
topics (2 price partitions) into a real ``riskstream portfolio serve`` process with
reference data and the bundled scenario library. Its ``riskstream:stress:<portfolio>``
hashes must equal ``riskstream stress run --base-currency GBP`` on the prices up to the
service's latest close, to the bit, with ``CHF`` in ``fx_missing``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
import redis
from typer.testing import CliRunner

from engine.boundary.schemas import PriceTick
from engine.cli import app
from engine.faults.harness import produce, redis_hash, wait_until
from engine.services.kafka_admin import create_topic
from tests.stress.test_stress_base_currency import GREEKS_MARKET, INSTRUMENTS, POSITIONS, _frame

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

DAY = 86_400_000


def feed(bootstrap: str, frame: pd.DataFrame, instruments: Path) -> None:
    """Instruments (numbers as numbers), positions and ticks (2 price partitions) to Kafka."""
    create_topic(bootstrap, "prices", partitions=2)
    create_topic(bootstrap, "positions", partitions=1)
    create_topic(bootstrap, "instruments", config={"cleanup.policy": "compact"})
    rows = pd.read_csv(instruments, dtype=str, keep_default_na=False).to_dict("records")
    numbers = ("strike", "multiplier", "vol")
    produce(
        bootstrap,
        "instruments",
        [
            (
                row["instrument"].encode(),
                orjson.dumps({k: float(v) if k in numbers else v for k, v in row.items() if v}),
            )
            for row in rows
        ],
    )
    produce(bootstrap, "positions", [(p.portfolio.encode(), p.to_json()) for p in POSITIONS])
    stamps = frame["timestamp"].to_numpy(dtype="datetime64[ms]").astype("int64")
    produce(
        bootstrap,
        "prices",
        [
            (s.encode(), PriceTick(s, int(t), float(p)).to_json())
            for t, s, p in zip(stamps, frame["symbol"], frame["price"], strict=True)
        ],
    )


def test_streamed_base_currency_option_stress_through_kafka_and_redis_equals_stress_run(
    fresh_kafka, redis_url: str, tmp_path: Path
) -> None:
    frame = _frame()
    files = {n: tmp_path / f"{n}.csv" for n in ("instruments", "positions", "market", "prices")}
    files["instruments"].write_text(INSTRUMENTS)
    files["market"].write_text(GREEKS_MARKET)
    files["positions"].write_text(
        "portfolio,symbol,quantity\n"
        + "".join(f"{p.portfolio},{p.symbol},{p.quantity}\n" for p in POSITIONS)
    )
    broker = fresh_kafka()
    feed(broker.bootstrap, frame, files["instruments"])
    env = {
        "RISKSTREAM_KAFKA_BOOTSTRAP": broker.bootstrap,
        "RISKSTREAM_REDIS_URL": redis_url,
        "RISKSTREAM_BASE_CURRENCY": "GBP",
    }
    log = (tmp_path / "portfolio.log").open("wb")
    service = subprocess.Popen(
        [
            sys.executable, "-m", "engine.cli", "portfolio", "serve",
            "--instruments", str(files["instruments"]), "--greeks-market", str(files["market"]),
            "--greeks-var-scenarios", "0", "--interval", "1d", "--idle", "600",
        ],
        env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    client = redis.Redis.from_url(redis_url)
    days = frame["timestamp"].dt.floor("D").drop_duplicates().sort_values()
    # the last day is never released (no later tick moves the watermark past it)
    target = int(days.iloc[-2].value // 1_000_000)

    def reached() -> int:
        return min(
            int(redis_hash(client, f"riskstream:stress:{name}").get("ts_ms", 0))
            for name in ("opts", "yen")
        )

    try:
        wait_until(lambda: reached() >= target, 180, "the stress of the last released day")
    finally:
        os.killpg(service.pid, signal.SIGTERM)
        service.wait(60)
        log.close()
    assert service.returncode == 0, (tmp_path / "portfolio.log").read_text()[-3000:]

    stored = {n: redis_hash(client, f"riskstream:stress:{n}") for n in ("opts", "yen")}
    released = int(stored["opts"]["ts_ms"])
    assert released == int(stored["yen"]["ts_ms"])  # one MULTI
    # the market the stress moved: every price before the newest released tick's day
    ms = frame["timestamp"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    closed = frame[ms // DAY < released // DAY]
    closed.assign(timestamp=closed["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(
        files["prices"], index=False
    )
    out = tmp_path / "run.csv"
    args = ["stress", "run", "--prices", str(files["prices"]),
            "--positions", str(files["positions"]), "--out", str(out),
            "--instruments", str(files["instruments"]), "--greeks-market", str(files["market"]),
            "--base-currency", "GBP"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    offline = pd.read_csv(out)
    for name, rows in offline.groupby("portfolio"):
        fields = stored[str(name)]
        streamed = {k[4:]: float(v) for k, v in fields.items() if k.startswith("pnl:")}
        assert set(streamed) == set(rows["scenario"])
        for scenario, pnl in zip(rows["scenario"], rows["pnl"], strict=True):
            assert streamed[scenario] == pnl, (name, scenario)  # bit for bit
        assert fields["currency"] == "GBP"
    assert (stored["opts"]["options"], stored["opts"]["fx_missing"]) == ("2", "")
    assert (stored["yen"]["options"], stored["yen"]["options_excluded"]) == ("1", "1")
    assert stored["yen"]["fx_missing"] == "CHF"
