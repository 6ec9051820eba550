"""The portfolio dashboard against a real portfolio service, scraped by Debian's Prometheus.

``riskstream portfolio serve`` runs as its own process with option Greeks (a market file
and the compacted ``instruments`` topic), the bundled stress library and
``--metrics-port``; real Kafka carries the positions and the bundled 1999 closes of SPX
and NASDAQ, real Redis takes the hashes, and Prometheus scrapes the service every second.
Then every PromQL expression of ``deploy/grafana/dashboards/portfolio.json`` must answer
data, and the Greeks it shows must be the ones the service wrote to Redis.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
import redis
import yaml

from engine.boundary.schemas import PriceTick
from engine.faults.harness import produce, wait_until
from engine.portfolio.positions import Position
from engine.services.kafka_admin import create_topic
from engine.services.ports import free_port
from producers.sources import bundled_prices

from . import grafana
from .test_observability import total
from .test_prometheus_rules import PROMETHEUS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DASHBOARD = "portfolio"
INSTRUMENTS = [
    {"instrument": "SPX-C1250", "kind": "option", "underlying": "SPX", "multiplier": 100,
     "strike": 1250, "expiry": "1999-12-17", "right": "call", "style": "european"},
    {"instrument": "NDX-P2000", "kind": "option", "underlying": "NASDAQ", "multiplier": 10,
     "strike": 2000, "expiry": "1999-09-17", "right": "put", "style": "european"},
]  # fmt: skip
MARKET = "underlying,rate,dividend_yield,vol\nSPX,0.05,0.012,0.22\nNASDAQ,0.05,0.0,0.35\n"


def prometheus_config(tmp_path: Path, target: str) -> Path:
    """The shipped global settings and rules, one job scraping the service every second."""
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(PROMETHEUS / "rules" / "*.yml")]
    config["scrape_configs"] = [
        {"job_name": "riskstream-portfolio", "static_configs": [{"targets": [target]}]}
    ]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def feed(bootstrap: str) -> int:
    """Instruments, positions (options and spot, two portfolios) and the 1999 closes;
    returns the last close the service can release (ms; a close is released by the
    next one's ticks, and the last two wait for more)."""
    frame = bundled_prices()
    frame = frame[
        (frame["timestamp"] >= pd.Timestamp("1999-01-01", tz="UTC"))
        & (frame["timestamp"] < pd.Timestamp("1999-07-01", tz="UTC"))
        & frame["symbol"].isin(["SPX", "NASDAQ"])
    ]
    ms = frame["timestamp"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    start = int(ms[0])
    positions = [
        Position("hedged", "SPX-C1250", 10.0, start),
        Position("hedged", "SPX", -500.0, start),
        Position("hedged", "NDX-P2000", 20.0, start),
        Position("spot", "SPX", 100.0, start),
        Position("spot", "NASDAQ", 50.0, start),
    ]
    create_topic(bootstrap, "prices", partitions=2)
    create_topic(bootstrap, "positions", partitions=1)
    create_topic(bootstrap, "instruments", config={"cleanup.policy": "compact"})
    produce(
        bootstrap,
        "instruments",
        [(d["instrument"].encode(), orjson.dumps(d)) for d in INSTRUMENTS],
    )
    produce(bootstrap, "positions", [(p.portfolio.encode(), p.to_json()) for p in positions])
    produce(
        bootstrap,
        "prices",
        [
            (s.encode(), PriceTick(s, int(t), float(p)).to_json())
            for t, s, p in zip(ms, frame["symbol"], frame["price"], strict=True)
        ],
    )
    return int(np.unique(ms)[-3])


def test_the_portfolio_dashboard_shows_the_services_greeks_and_stress(
    fresh_kafka: Any, redis_url: str, prometheus_factory: Any, tmp_path: Path
) -> None:
    broker = fresh_kafka()
    last = feed(broker.bootstrap)
    market = tmp_path / "market.csv"
    market.write_text(MARKET)
    port = free_port()
    env = {
        **os.environ,
        "RISKSTREAM_KAFKA_BOOTSTRAP": broker.bootstrap,
        "RISKSTREAM_REDIS_URL": redis_url,
    }
    log_path = tmp_path / "portfolio.log"
    log = log_path.open("wb")
    service = subprocess.Popen(
        [
            sys.executable, "-m", "engine.cli", "portfolio", "serve",
            "--greeks-market", str(market), "--greeks-every", "0s", "--greeks-var-scenarios", "500",
            "--delta-limit", "1000", "--stress-every", "1d", "--stress-limit", "1000",
            "--metrics-port", str(port),
        ],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    client = redis.Redis.from_url(redis_url)
    try:
        prom = prometheus_factory(prometheus_config(tmp_path, f"127.0.0.1:{port}"))
        wait_until(
            lambda: (
                client.exists("riskstream:greeks:hedged", "riskstream:stress:spot") == 2
                and int(client.hget("riskstream:greeks:hedged", "ts_ms") or 0) >= last
            ),
            180,
            "the service to reach the last close it can release",
            interval=1.0,
        )
        wait_until(
            lambda: (
                total(prom, "count(riskstream_stress_worst_pnl)") == 2
                and total(prom, "count(riskstream_portfolio_greek)") >= 6
            ),
            60,
            "Prometheus to scrape the Greeks and stress gauges",
            interval=1.0,
        )
        time.sleep(3)  # a few more scrapes, for rate() and increase()

        boards = grafana.dashboards()
        queries = [q for q in grafana.queries() if q.dashboard == DASHBOARD]
        assert len(queries) >= 10
        empty = [
            f"{q.panel}: {q.expr}"
            for q in queries
            if not prom.query(q.promql(grafana.variables(boards[DASHBOARD])))
        ]
        assert not empty, "dashboard queries without data:\n" + "\n".join(empty)

        # The gauges carry the numbers of the hashes (the service stopped moving).
        greeks = {
            k.decode(): v.decode() for k, v in client.hgetall("riskstream:greeks:hedged").items()
        }
        for name in ("value", "delta", "gamma", "vega", "theta", "rho"):
            shown = total(prom, f'riskstream_portfolio_greek{{portfolio="hedged",greek="{name}"}}')
            assert math.isclose(shown, float(greeks[name]), rel_tol=1e-12), name
        gap = total(prom, 'riskstream_portfolio_options_var_gap{portfolio="hedged"}')
        assert math.isclose(gap, float(greeks["var_gap"]), rel_tol=1e-12, abs_tol=1e-9)
        delta_spx = total(
            prom, 'riskstream_portfolio_underlying_delta{portfolio="hedged",underlying="SPX"}'
        )
        assert math.isclose(delta_spx, float(greeks["delta:SPX"]), rel_tol=1e-12)
        stress = client.hgetall("riskstream:stress:spot")
        worst = total(prom, 'riskstream_stress_worst_pnl{portfolio="spot"}')
        assert worst < 0 and worst == float(stress[b"worst_pnl"]) == min(
            float(v) for k, v in stress.items() if k.startswith(b"pnl:")
        )
        # Both limits are low enough to be crossed by these books.
        assert total(prom, "riskstream_greek_limit_alerts_total") >= 1
        assert total(prom, "riskstream_stress_limit_alerts_total") >= 1
    finally:
        client.close()
        os.killpg(service.pid, signal.SIGTERM)
        try:
            service.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(service.pid, signal.SIGKILL)
            service.wait(10)
        log.close()
        print(log_path.read_text()[-6000:])  # pytest shows it when the test failed
