"""The real thing: a worker fed by producers, scraped by Debian's Prometheus.

One worker (real Kafka KRaft broker, real Redis with a password) processes synthetic
prices with bad records mixed in and Taiwan credit reviews sent by ``riskstream
produce``. Prometheus runs the shipped ``deploy/prometheus`` job and rules against it
(scraping every second). Then:

* every PromQL expression of the Grafana dashboards answers data through the HTTP API;
* every rule (recording and alerting) evaluates without error on the real series;
* ``promtool check metrics`` accepts the worker's ``/metrics``;
* the worker logs JSON lines, and neither its log, its ``/metrics`` nor what Prometheus
  stored holds the canary passwords (Kafka SASL, Redis in the URL).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.faults.harness import BENIGN_ERRORS, WorkerProcess, committed_lag, wait_until
from engine.services.ports import free_port
from engine.services.redis import RedisServer

from . import grafana
from .test_prometheus_rules import PROMETHEUS, promtool

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KAFKA_CANARY = "canaryKafkaObs4d2e91"
REDIS_CANARY = "canaryRedisObs7b13c0"
PRICE_TICKS = 6000
SYMBOLS = 8
REVIEWS = 600


def prometheus_config(tmp_path: Path, target: str) -> Path:
    """The shipped configuration, scraping ``target`` every second, with the shipped rules."""
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(PROMETHEUS / "rules" / "*.yml")]
    jobs = [job for job in config["scrape_configs"] if job["job_name"] == "riskstream"]
    assert len(jobs) == 1
    jobs[0]["static_configs"] = [{"targets": [target]}]
    config["scrape_configs"] = jobs
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def produce(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "engine.cli", "produce", *args, "--no-progress"],
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
    )


def total(prom: Any, expr: str) -> float:
    result = prom.query(expr)
    return float(result[0]["value"][1]) if result else 0.0


def test_dashboards_rules_and_metrics_against_a_real_worker(
    fresh_kafka: Any, prometheus_factory: Any, tmp_path: Path
) -> None:
    broker = fresh_kafka()
    redis = RedisServer(tmp_path / "redis", password=REDIS_CANARY)
    redis.start()
    try:
        run(broker, redis, prometheus_factory, tmp_path)
    finally:
        redis.close()


def run(broker: Any, redis: RedisServer, prometheus_factory: Any, tmp_path: Path) -> None:
    metrics_port = free_port()
    env = {
        "RISKSTREAM_KAFKA_BOOTSTRAP": broker.bootstrap,
        "RISKSTREAM_KAFKA_SASL_PASSWORD": KAFKA_CANARY,
        "RISKSTREAM_REDIS_URL": redis.url,  # redis://:<canary>@127.0.0.1:<port>/0
        "RISKSTREAM_PARTITIONS": "2",
        "RISKSTREAM_APP_ID": "observability",
        "RISKSTREAM_METRICS_PORT": str(metrics_port),
        "RISKSTREAM_LOG_FORMAT": "json",
        "RISKSTREAM_DATA_DIR": str(tmp_path / "worker-data"),
        # A light model keeps the test quick on a loaded machine; windows fill in 100 returns.
        "RISKSTREAM_VOL_MODELS": "ewma",
        "RISKSTREAM_VAR_METHOD": "ewma-normal",
        "RISKSTREAM_BACKTEST_WINDOW": "100",
        "RISKSTREAM_BATCH_MAX": "1000",
    }
    assert REDIS_CANARY in env["RISKSTREAM_REDIS_URL"]
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.start()
    prom = prometheus_factory(prometheus_config(tmp_path, f"127.0.0.1:{metrics_port}"))
    try:
        # --- producers ----------------------------------------------------------------------
        produce(
            env, "prices", "--source", "synthetic", "--symbols", str(SYMBOLS),
            "--ticks", str(PRICE_TICKS), "--bad-fraction", "0.02", "--seed", "7",
        )  # fmt: skip
        produce(env, "transactions", "--source", "taiwan-credit", "--limit", str(REVIEWS))
        wait_until(
            lambda: total(prom, "sum(riskstream_events_in_total)") >= PRICE_TICKS + REVIEWS,
            60,
            "Prometheus to see every record received by the worker",
            interval=1.0,
        )
        wait_until(
            lambda: (
                total(prom, "sum(riskstream_backtest_zone_symbols{zone!='none'})") > 0
                and prom.query("riskstream:event_latency_slo_errors:ratio_rate5m") != []
            ),
            30,
            "backtest zones and the recording rules",
            interval=1.0,
        )
        time.sleep(3)  # a few more scrapes after the last batch, for rate() and increase()

        # --- every dashboard expression answers data -----------------------------------------
        boards = grafana.dashboards()
        empty = []
        # The worker's dashboards (portfolio.json: tests/deploy/test_portfolio_dashboard.py).
        queries = [q for q in grafana.queries() if q.dashboard in ("operations", "risk")]
        assert len(queries) > 30
        for query in queries:
            if not prom.query(query.promql(grafana.variables(boards[query.dashboard]))):
                empty.append(f"{query.dashboard} / {query.panel}: {query.expr}")
        assert not empty, "dashboard queries without data:\n" + "\n".join(empty)

        # --- the numbers behind them are the stream's -----------------------------------------
        received = total(prom, "sum(riskstream_events_in_total)")
        assert received > PRICE_TICKS + REVIEWS  # with the bad records mixed in
        assert total(prom, "sum(riskstream_events_processed_total)") == received
        assert total(prom, "sum(riskstream_events_processed_total{outcome='replayed'})") == 0
        wait_until(
            lambda: all(
                committed_lag(broker.bootstrap, "observability", topic) == 0
                for topic in ("prices", "transactions")
            ),
            30,
            "every record committed",
            interval=1.0,
        )
        assert total(prom, "sum(riskstream_dead_letters_total{topic='prices'})") > 0
        assert total(prom, "sum(riskstream_var_breaches_total)") > 0
        assert total(prom, "count(riskstream_symbol_volatility)") == SYMBOLS
        assert total(prom, "count(riskstream_consumer_lag_records{topic='prices'})") == 2
        assert total(prom, "sum(riskstream_consumer_lag_records)") == 0  # all caught up
        assert total(prom, "sum(riskstream_alerts_total{kind=~'credit_.*'})") > 0
        assert total(prom, "sum(riskstream_model_inference_seconds_count{model='credit'})") > 0
        assert total(prom, "riskstream_model_info{kind='volatility', model='ewma'}") == 1
        latency_samples = "sum(riskstream_event_latency_seconds_count{topic='prices', stage='%s'})"
        fetched, processed = (total(prom, latency_samples % s) for s in ("fetched", "processed"))
        assert fetched >= processed > 0  # a chunk dropped by a rebalance is fetched, not processed

        # --- every rule evaluates on the real series ------------------------------------------
        groups = prom.api("rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        assert len(rules) >= 13
        broken = [f"{r['name']}: {r.get('lastError')}" for r in rules if r["health"] != "ok"]
        assert not broken, broken
        firing = [r["name"] for r in rules if r.get("state") == "firing"]
        assert "RiskstreamWorkerDown" not in firing

        # --- promtool check metrics -----------------------------------------------------------
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
            exposition = r.read()
        checked = subprocess.run(
            [promtool("--version").args[0], "check", "metrics"],
            input=exposition,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr

        # --- lag grows while the worker cannot write, and drains after ---------------------------
        redis.pause()  # SIGSTOP: writes time out and are retried, batches are not acked
        try:
            produce(env, "prices", "--source", "synthetic", "--symbols", str(SYMBOLS),
                    "--ticks", "3000", "--seed", "8")  # fmt: skip
            wait_until(
                lambda: (
                    total(prom, "sum(riskstream_consumer_lag_records{topic='prices'})") > 0
                    and total(prom, "sum(riskstream_redis_errors_total)") > 0
                ),  # 5 s socket timeout
                40,
                "the consumer lag to show the records the stalled worker has not processed, "
                "and a Redis write to time out",
                interval=1.0,
            )
        finally:
            redis.resume()
        wait_until(
            lambda: (
                total(prom, "sum(riskstream_consumer_lag_records)") == 0
                and total(prom, "sum(riskstream_events_in_total)") >= received + 3000
            ),
            60,
            "the worker to catch up after Redis came back",
            interval=1.0,
        )
        assert total(prom, "sum(riskstream_redis_retries_total)") > 0

        # --- no secret anywhere ---------------------------------------------------------------
        stored = json.dumps(prom.api("label/__name__/values")) + json.dumps(
            prom.query('{__name__=~"riskstream_.+"}')
        )
        text = exposition.decode()
        log = (tmp_path / "worker.log").read_text("utf-8", "replace")
        for canary in (KAFKA_CANARY, REDIS_CANARY):
            assert canary not in text
            assert canary not in stored
            assert canary not in log
    finally:
        worker.stop()
    # RISKSTREAM_LOG_FORMAT=json: every line, faust's own included, is one JSON object.
    log = (tmp_path / "worker.log").read_text("utf-8", "replace")
    docs = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert len(docs) > 20
    assert all({"ts", "level", "logger", "message"} <= doc.keys() for doc in docs)
    assert any("[^Worker]: Ready" in doc["message"] for doc in docs)
    errors = [
        doc
        for doc in docs
        if doc["level"] in ("ERROR", "CRITICAL")
        and not any(benign in doc["message"] for benign in BENIGN_ERRORS)
    ]
    assert errors == []
