"""Greeks in the scaled-out service: two ``portfolio serve --group`` processes, one killed.

Real Kafka (prices in 2 partitions, positions in 2, the compacted ``instruments`` topic)
and real Redis; the services are child processes of the CLI with ``--greeks-market`` and
a euro base currency. The instruments reach the services through the topic only (the
start file holds just the FX pair). Four option portfolios, two on each ``positions``
partition, some with positions that take effect after the kill: the first half of the
prices flows with both instances up, then one is killed with SIGKILL and the second half
flows while the other takes its portfolios over (their option holdings and pending
positions move with the partition state). At the end every portfolio's Greeks hash must
equal ``riskstream options greeks --base-currency EUR`` for the same files at the hash's
time, and its portfolio hash ``riskstream portfolio var``'s row for the same close.

The series are those of the mixed-book end-to-end test: NVIDIA, BTC-USD and the ECB's
EURUSD, second half of 2020; option prices are model values on assumed flat markets.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import redis
from typer.testing import CliRunner

from engine.cli import app
from engine.faults.harness import redis_hash

from ..helpers.group_book import (
    HOLDINGS,
    kill_one_and_hand_over,
    portfolio_names,
    service_env,
    start_group_feed,
)
from ..helpers.mixed_book import (
    mixed_prices,
    write_book_files,
)

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

BASE = "EUR"
runner = CliRunner()


def test_group_instances_stream_base_currency_greeks_equal_to_offline(
    fresh_kafka, redis_url: str, tmp_path: Path
) -> None:
    names = portfolio_names()
    frame = mixed_prices()
    files = {n: tmp_path / f"{n}.csv" for n in ("prices", "instruments", "start", "market", "pos")}
    write_book_files(frame, files)
    broker = fresh_kafka()
    stamps, ticks, half = start_group_feed(broker.bootstrap, names, frame, files)
    env = service_env(broker.bootstrap, redis_url, BASE)
    args = [
        "--group", "greeks-group", "--session-timeout", "6", "--snapshot-every", "5",
        "--instruments", str(files["start"]), "--greeks-market", str(files["market"]),
        "--greeks-every", "0s", "--greeks-var-scenarios", "0", "--no-stress",
        "--interval", "1d", "--levels", "0.95,0.99", "--idle", "600",
    ]  # fmt: skip
    client = redis.Redis.from_url(redis_url)

    def reached() -> dict[str, int]:
        return {n: int(redis_hash(client, f"riskstream:greeks:{n}").get("ts_ms", 0)) for n in names}

    def keys() -> str:
        return f"; {sorted(k.decode() for k in client.keys('riskstream:*'))}"

    feed = (broker.bootstrap, stamps, ticks, half)
    kill_one_and_hand_over(args, env, tmp_path, feed, reached, "Greeks", keys)

    out, var = tmp_path / "greeks.csv", tmp_path / "var.csv"
    for command in (
        ["options", "greeks", "--positions", str(files["pos"]), "--instruments",
         str(files["instruments"]), "--market", str(files["market"]), "--base-currency", BASE,
         "--out", str(out)],
        ["portfolio", "var", "--prices", str(files["prices"]), "--positions", str(files["pos"]),
         "--instruments", str(files["instruments"]), "--base-currency", BASE,
         "--levels", "0.95,0.99", "--out", str(var)],
    ):  # fmt: skip
        result = runner.invoke(app, command)
        assert result.exit_code == 0, result.output
    table, totals = pd.read_csv(out), pd.read_csv(var)

    for name in names:
        greeks = redis_hash(client, f"riskstream:greeks:{name}")
        at = pd.Timestamp(int(greeks["ts_ms"]), unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
        rows_at = table[(table["timestamp"] == at) & (table["portfolio"] == name)]
        assert greeks["currency"] == BASE and greeks["fx_missing"] == ""
        total = rows_at[rows_at["underlying"] == "*"].iloc[0]
        assert int(greeks["options"]) == total["options"] > 0
        for greek in ("value", "delta", "gamma", "vega", "theta", "rho"):
            assert float(greeks[greek]) == total[greek], (name, greek)
            for row in rows_at[rows_at["underlying"] != "*"].itertuples(index=False):
                assert float(greeks[f"{greek}:{row.underlying}"]) == getattr(row, greek)
        if not any(names[k] == name and "-" not in s for k, s, _, _ in HOLDINGS):
            assert not client.exists(f"riskstream:portfolio:{name}")  # options only
            continue
        linear = redis_hash(client, f"riskstream:portfolio:{name}")
        close = pd.Timestamp(int(linear["ts_ms"]), unit="ms", tz="UTC")
        row = totals[
            (totals["timestamp"] == close.strftime("%Y-%m-%dT%H:%M:%SZ"))
            & (totals["portfolio"] == name)
            & (totals["level"] == 0.99)
        ].iloc[0]
        assert float(linear["var_99"]) == row["var"] and float(linear["value"]) == row["value"]
    # the positions effective after the kill are in the survivor's Greeks
    later = redis_hash(client, f"riskstream:greeks:{names[1]}")
    assert float(later["delta_units:NVDA"]) < 0 and int(later["options"]) == 2
