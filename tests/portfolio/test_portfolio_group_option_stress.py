"""Option stress in the scaled-out service: two ``portfolio serve --group`` processes, one killed.

The book and the feed of ``test_portfolio_group_greeks`` (NVIDIA, BTC-USD and the ECB's
EURUSD, second half of 2020; USD options in a euro book; positions taking effect after
the kill), with the stress on: after the hand-over every portfolio's
``riskstream:stress:<id>`` hash must equal ``riskstream stress run --base-currency EUR``
on the prices up to the hash's close, options revalued and converted. To 1e-12 relative,
not to the bit: an instance that took portfolios over continues from a market snapshot,
whose covariance (the historical scenarios' beta proxies) can differ from a replay in the
last bits (``test_portfolio_group`` allows 1e-9 for the spot books).
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
    kill_one_and_hand_over,
    portfolio_names,
    service_env,
    start_group_feed,
)
from ..helpers.mixed_book import (
    INSTRUMENTS,
    MARKET,
    mixed_prices,
    with_iso_timestamps,
)
from .test_portfolio_group_greeks import BASE

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

DAY = 86_400_000


def test_group_instances_stream_base_currency_option_stress_equal_to_stress_run(
    fresh_kafka, redis_url: str, tmp_path: Path
) -> None:
    names = portfolio_names()
    frame = mixed_prices()
    files = {n: tmp_path / f"{n}.csv" for n in ("instruments", "underlyings", "pos", "closed")}
    files["instruments"].write_text(INSTRUMENTS)
    files["underlyings"].write_text(
        "underlying,rate,dividend_yield,vol\n"
        + "".join(f"{u},{r},{q},{v}\n" for u, (r, q, v) in MARKET.items())
    )
    broker = fresh_kafka()
    stamps, ticks, half = start_group_feed(broker.bootstrap, names, frame, files)
    env = service_env(broker.bootstrap, redis_url, BASE)
    args = [
        "--group", "stress-group", "--session-timeout", "6", "--snapshot-every", "5",
        "--instruments", str(files["instruments"]), "--greeks-market", str(files["underlyings"]),
        "--greeks-var-scenarios", "0", "--stress-every", "1d",
        "--interval", "1d", "--levels", "0.95,0.99", "--idle", "600",
    ]  # fmt: skip
    client = redis.Redis.from_url(redis_url)

    def reached() -> dict[str, int]:
        return {n: int(redis_hash(client, f"riskstream:stress:{n}").get("ts_ms", 0)) for n in names}

    feed = (broker.bootstrap, stamps, ticks, half)
    kill_one_and_hand_over(args, env, tmp_path, feed, reached, "stress")

    for name in names:
        stored = redis_hash(client, f"riskstream:stress:{name}")
        close = int(stored["ts_ms"])
        closed = frame[stamps // DAY <= close // DAY]
        assert int(closed["timestamp"].max().value // 1_000_000) == close
        with_iso_timestamps(closed).to_csv(files["closed"], index=False)
        out = tmp_path / f"run-{name}.csv"
        result = CliRunner().invoke(
            app,
            ["stress", "run", "--prices", str(files["closed"]), "--positions", str(files["pos"]),
             "--out", str(out), "--instruments", str(files["instruments"]),
             "--greeks-market", str(files["underlyings"]), "--base-currency", BASE],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        offline = pd.read_csv(out)
        rows_of = offline[offline["portfolio"] == name]
        streamed = {k[4:]: float(v) for k, v in stored.items() if k.startswith("pnl:")}
        assert set(streamed) == set(rows_of["scenario"]) and len(streamed) > 0
        for scenario, pnl in zip(rows_of["scenario"], rows_of["pnl"], strict=True):
            assert streamed[scenario] == pytest.approx(pnl, rel=1e-12, abs=1e-9), (name, scenario)
        assert stored["currency"] == BASE and stored["fx_missing"] == ""
        assert int(stored["options"]) > 0
    # the positions effective after the kill are in the survivor's stress
    later = redis_hash(client, f"riskstream:stress:{names[1]}")
    assert int(later["options"]) == 2
