"""``riskstream services`` and its registry: start in one process, find and stop from another."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.services.ports import free_port, port_open
from engine.services.redis import RedisServer
from engine.services.registry import Registry, process_start_ticks

pytestmark = pytest.mark.integration


@pytest.mark.timeout(60)
def test_registry_finds_and_stops_a_detached_service(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", detach=True).start()
    try:
        registry = Registry(tmp_path)
        registry.add("redis", server, {"RISKSTREAM_REDIS_URL": server.url})
        assert (tmp_path / "redis.pid").read_text().strip() == str(server.pid)
        assert f"RISKSTREAM_REDIS_URL={server.url}" in registry.env_path.read_text()

        record = Registry(tmp_path).get("redis")  # as another shell would see it
        assert record is not None and record.is_alive and record.address == server.address
        # The same pid with another start time is some other process: never "alive".
        assert not dataclasses.replace(record, start_ticks=record.start_ticks + 1).is_alive

        assert Registry(tmp_path).stop("redis", timeout=10)
        assert not server.is_running
        assert Registry(tmp_path).get("redis") is None
        # The file still configures Redis, so a worker started from it waits for Redis
        # instead of silently running without it; a comment says it is stopped.
        env_file = registry.env_path.read_text()
        assert "# redis is stopped" in env_file
        assert f"RISKSTREAM_REDIS_URL={server.url}" in env_file
    finally:
        server.stop()


def test_process_start_ticks_identify_live_processes() -> None:
    assert process_start_ticks(os.getpid()) is not None
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert process_start_ticks(child.pid) is None


@pytest.mark.timeout(180)
def test_cli_start_status_env_stop(tmp_path: Path) -> None:
    from engine.cli import app

    runner = CliRunner()
    state = tmp_path / "services"
    kafka_port, redis_port = free_port(), free_port()
    common = ["--state-dir", str(state)]

    started = runner.invoke(
        app,
        [
            "services",
            "start",
            "all",
            "--kafka-port",
            str(kafka_port),
            "--redis-port",
            str(redis_port),
            *common,
        ],
    )
    try:
        assert started.exit_code == 0, started.output
        assert f"export RISKSTREAM_KAFKA_BOOTSTRAP=127.0.0.1:{kafka_port}" in started.stdout
        assert f"export RISKSTREAM_REDIS_URL=redis://127.0.0.1:{redis_port}/0" in started.stdout
        env_file = (state / "services.env").read_text()
        assert f"RISKSTREAM_KAFKA_BOOTSTRAP=127.0.0.1:{kafka_port}" in env_file
        assert port_open(kafka_port) and port_open(redis_port)

        again = runner.invoke(app, ["services", "start", "redis", *common])
        assert again.exit_code == 0 and "already running" in again.output

        status = runner.invoke(app, ["services", "status", *common])
        assert status.exit_code == 0
        assert "kafka  running" in status.stdout and "redis  running" in status.stdout

        env = runner.invoke(app, ["services", "env", *common])
        assert env.exit_code == 0
        assert (
            env.stdout.splitlines()[0]
            == f"export RISKSTREAM_KAFKA_BOOTSTRAP=127.0.0.1:{kafka_port}"
        )
    finally:
        stopped = runner.invoke(app, ["services", "stop", *common])
    assert stopped.exit_code == 0, stopped.output
    assert "kafka: stopped" in stopped.output and "redis: stopped" in stopped.output
    assert not port_open(kafka_port) and not port_open(redis_port)

    after = runner.invoke(app, ["services", "env", *common])
    assert after.exit_code == 3


def test_every_services_command_has_help() -> None:
    from engine.cli import app

    runner = CliRunner()
    for command in ([], ["install"], ["start"], ["stop"], ["status"], ["env"]):
        result = runner.invoke(app, ["services", *command, "--help"])
        assert result.exit_code == 0, result.output
        assert "Usage:" in result.output
