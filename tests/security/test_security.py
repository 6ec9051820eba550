"""Security against real servers configured that way: Kafka SASL_SSL with SCRAM-SHA-512,
Redis over TLS with ACL users (default user off), certificates made here by openssl.

A real worker runs end to end over them; wrong credentials stop it with a clear error;
canary passwords never show in its log, its metrics or its error output; it listens
on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.config import OperationsSettings, Settings
from engine.faults.chaos import FaultConfig, fault_stream
from engine.faults.checker import check_prices
from engine.faults.harness import WorkerProcess
from engine.services.ports import free_port
from engine.services.secure import SecureKafkaBroker, SecureRedisServer, make_tls

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KAFKA_CANARY = "canaryKafka5e3b9d"
REDIS_CANARY = "canaryRedis8c1f2a"
ADMIN_PASSWORD = "adminRedis40d7"
APP_RULES = "~riskstream:* &riskstream:* +@all -@dangerous"


@dataclass
class Secured:
    kafka: SecureKafkaBroker
    redis: SecureRedisServer
    root: Path

    def env(self, **overrides: str) -> dict[str, str]:
        return {
            **self.kafka.settings_env("riskstream"),
            **self.redis.settings_env("riskstream"),
            "RISKSTREAM_APP_ID": "secure",
            "RISKSTREAM_PARTITIONS": "2",
            "RISKSTREAM_VOL_MODELS": "ewma",
            "RISKSTREAM_VAR_METHOD": "ewma-mix",
            "RISKSTREAM_CREDIT_ENABLED": "0",
            "RISKSTREAM_METRICS_PORT": "0",
            **overrides,
        }


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    root = tmp_path_factory.mktemp("secure")
    tls = make_tls(root / "tls")
    redis = SecureRedisServer(
        root / "redis",
        tls=tls,
        users={"admin": (ADMIN_PASSWORD, "~* &* +@all"), "riskstream": (REDIS_CANARY, APP_RULES)},
        admin="admin",
    )
    kafka = SecureKafkaBroker(
        root / "kafka",
        tls=tls,
        users={"riskstream": KAFKA_CANARY},
        broker_password="brokerScram7a21",
    )
    try:
        redis.start()
        kafka.start()
        yield Secured(kafka, redis, root)
    finally:
        kafka.close()
        redis.close()


def _listening(pgid: int) -> list[str]:
    """``host:port`` of every TCP socket listened on by a process of group ``pgid``."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[2]) == pgid:
                pids.add(int(entry.name))
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        owners = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        if owners & pids:
            found.append(line.split()[3])
    return found


def test_worker_end_to_end_over_sasl_ssl_and_redis_tls(secured: Secured, tmp_path: Path) -> None:
    metrics_port = free_port()
    env = secured.env(
        RISKSTREAM_METRICS_PORT=str(metrics_port), RISKSTREAM_DATA_DIR=str(tmp_path / "data")
    )
    worker = WorkerProcess(env, tmp_path / "worker.log")
    config = FaultConfig(events=3000, symbols=5, partitions=2)
    client = secured.redis.client()
    try:
        worker.start()
        # Our only listener (the metrics endpoint) is on loopback.
        assert worker.proc is not None
        listening = _listening(worker.proc.pid)
        assert listening == [f"127.0.0.1:{metrics_port}"], listening

        from producers.kafka import publish

        settings = Settings(**{k[len("RISKSTREAM_") :].lower(): v for k, v in env.items()})
        report = publish(fault_stream(config, 11, bad_fraction=0.01), settings, "prices")
        assert report.failed == 0
        result = check_prices(
            secured.kafka.bootstrap,
            client,
            config.settings(),
            timeout_s=90,
            kafka_config=secured.kafka.client_config("riskstream"),
        )
        assert result.ok, result.summary()
        assert result.expected_alerts > 0 and result.expected_dead_letters > 0

        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
            metrics = r.read().decode()
        assert "riskstream_" in metrics
        for canary in (KAFKA_CANARY, REDIS_CANARY):
            assert canary not in metrics
        assert worker.errors() == [], worker.errors()
    finally:
        client.close()
        worker.kill()
    log = worker.log_path.read_text("utf-8", "replace")
    assert "Authenticated as riskstream via SASL / SCRAM-SHA-512" in log
    for canary in (KAFKA_CANARY, REDIS_CANARY):
        assert canary not in log


def _run_worker(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", "worker"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_wrong_kafka_password_is_refused_clearly(secured: Secured, tmp_path: Path) -> None:
    wrong = "wrongKafkaPw93"
    done = _run_worker(
        secured.env(
            RISKSTREAM_KAFKA_SASL_PASSWORD=wrong, RISKSTREAM_DATA_DIR=str(tmp_path / "data")
        )
    )
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("riskstream: error: Kafka refused the credentials of user 'riskstream'")
    assert "Authentication failed" in last or "closed each one during SASL" in last
    for secret in (wrong, REDIS_CANARY):
        assert secret not in done.stdout + done.stderr


def test_wrong_redis_password_is_refused_clearly(secured: Secured, tmp_path: Path) -> None:
    wrong = "wrongRedisPw27"
    done = _run_worker(
        secured.env(RISKSTREAM_REDIS_PASSWORD=wrong, RISKSTREAM_DATA_DIR=str(tmp_path / "data"))
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "Redis refused the credentials: invalid username-password pair" in output
    for secret in (wrong, KAFKA_CANARY):
        assert secret not in output


def test_plaintext_clients_are_turned_away(secured: Secured) -> None:
    """No way around TLS and authentication: plain connections and the default user fail."""
    import redis
    from kafka.errors import KafkaError

    from engine.services import kafka_admin

    plain = redis.Redis(host="127.0.0.1", port=secured.redis.port, socket_timeout=3)
    with pytest.raises(redis.exceptions.ConnectionError):
        plain.ping()
    plain.close()
    anonymous = redis.Redis.from_url(
        secured.redis.url, ssl_ca_certs=str(secured.redis.tls.ca_cert), socket_timeout=3
    )
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.set("riskstream:x", "1")
    anonymous.close()
    with (
        pytest.raises(KafkaError),
        kafka_admin.admin_client(secured.kafka.bootstrap, timeout_ms=3_000) as admin,
    ):
        admin.list_topics()


def test_defaults_listen_on_loopback_only(tmp_path: Path) -> None:
    assert OperationsSettings.model_fields["metrics_host"].default == "127.0.0.1"
    from engine.worker.app import create_app

    app = create_app(Settings(kafka_bootstrap="127.0.0.1:9", data_dir=tmp_path / "app"))
    assert app.conf.web_enabled is False
    assert app.conf.web_bind == "127.0.0.1"
