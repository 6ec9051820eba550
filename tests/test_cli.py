"""The command line: help everywhere, the demo's report, one-line errors with exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app

runner = CliRunner()


def command_paths(group: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    import typer.main

    click_group = typer.main.get_command(group) if prefix == () else group
    paths = []
    for name, command in getattr(click_group, "commands", {}).items():
        paths.append((*prefix, name))
        paths += command_paths(command, (*prefix, name))
    return paths


def test_every_command_has_help() -> None:
    paths = command_paths(app)
    assert ("run",) in paths and ("worker",) in paths
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output


def test_run_prints_a_report_and_writes_alerts(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "--fast", "--no-live", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for text in ("symbols", "VaR 99% violations", "alerts", "NASDAQ", "SPX", "10,062"):
        assert text in result.output
    assert (tmp_path / "alerts.jsonl").stat().st_size > 0


def test_bad_setting_is_one_line_and_exit_status_2(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", "run", "--fast", "--no-live", "--out", str(tmp_path)],
        env={"RISKSTREAM_EWMA_LAMBDA": "2", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert proc.stderr.startswith("riskstream: error: invalid settings: RISKSTREAM_EWMA_LAMBDA")


def test_settings_a_benchmark_rejects_are_one_line_too() -> None:
    """The benchmarks build their settings inside the command; no pydantic traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", "bench", "core", "--symbols", "1", "--ticks", "1000"],
        env={"RISKSTREAM_VOL_MODELS": "ewma", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert proc.stderr.startswith("riskstream: error: invalid settings: VaR method 'champion'")
    assert "choose from ['ewma-normal'" in proc.stderr


@pytest.mark.parametrize("args", [["worker"]])
def test_worker_without_kafka_says_what_is_missing(args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "RISKSTREAM_KAFKA_BOOTSTRAP is not set" in proc.stderr


def test_worker_with_unreachable_kafka_exits_3_with_one_clear_line() -> None:
    from engine.services.ports import free_port

    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", "worker"],
        env={
            "PATH": "/usr/bin:/bin",
            "RISKSTREAM_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
            "RISKSTREAM_STARTUP_TIMEOUT_S": "0",  # one attempt (tests/test_startup.py: retries)
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 3
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith("riskstream: error: cannot reach Kafka at 127.0.0.1:")
    )
