"""The worker's start-up policy: Kafka and Redis alike are waited for, one line per attempt."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from engine.errors import ConfigError, ServiceUnavailableError
from engine.faults.harness import READY_LINE, wait_until
from engine.services.ports import free_port
from engine.services.redis import RedisServer
from engine.worker.startup import Backoff, wait_for


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def flaky(failures: int) -> object:
    calls = []

    def probe() -> None:
        calls.append(1)
        if len(calls) <= failures:
            raise ServiceUnavailableError("Redis is unreachable: connection refused")

    return probe


def test_a_missing_service_is_asked_again_with_backoff_one_line_per_attempt(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, states = FakeTime(), []
    # A logging configuration applied earlier in the session (faust's, the worker's) may
    # have disabled or detached existing loggers: listen to this one directly.
    logger = logging.getLogger("engine.worker.startup")
    monkeypatch.setattr(logger, "disabled", False)
    monkeypatch.setattr(logger, "handlers", [caplog.handler])
    monkeypatch.setattr(logger, "propagate", False)
    with caplog.at_level(logging.INFO, logger="engine.worker.startup"):
        wait_for(
            "Redis",
            "redis://127.0.0.1:1/0",
            flaky(3),
            timeout_s=60,
            on_state=states.append,
            sleep=clock.sleep,
            clock=lambda: clock.now,
        )
    assert clock.slept == [1.0, 2.0, 4.0]
    assert states == [False, False, False, True]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert warnings[0] == (
        "Redis at redis://127.0.0.1:1/0 is not available (attempt 1): "
        "Redis is unreachable: connection refused; next attempt in 1 s"
    )
    assert caplog.records[-1].getMessage() == (
        "Redis at redis://127.0.0.1:1/0 is available after 4 attempts (7.0 s)"
    )


def test_the_wait_gives_up_after_the_startup_timeout_with_one_clear_error() -> None:
    clock = FakeTime()
    with pytest.raises(ServiceUnavailableError, match=r"gave up after 5 attempts in 10 s"):
        wait_for(
            "Kafka",
            "127.0.0.1:1",
            flaky(100),
            timeout_s=10,
            backoff=Backoff(1.0, 2.0, 15.0),
            sleep=clock.sleep,
            clock=lambda: clock.now,
        )
    assert clock.slept == [1.0, 2.0, 4.0, 3.0]  # the last pause ends at the deadline: a 5th try


def test_a_timeout_of_zero_tries_once() -> None:
    clock = FakeTime()
    with pytest.raises(ServiceUnavailableError, match="gave up after 1 attempt in 0 s"):
        wait_for("Kafka", "x", flaky(1), timeout_s=0, sleep=clock.sleep, clock=lambda: 0.0)
    assert clock.slept == []


def test_refused_credentials_end_the_wait_at_once() -> None:
    def probe() -> None:
        raise ConfigError("Redis refused the credentials: WRONGPASS")

    with pytest.raises(ConfigError, match="WRONGPASS"):
        wait_for("Redis", "x", probe, timeout_s=60, sleep=pytest.fail)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.integration
def test_a_worker_waits_for_redis_says_so_and_becomes_ready_when_it_comes(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    redis_port, metrics_port = free_port(), free_port()
    log_path = tmp_path / "worker.log"
    env = {
        **os.environ,
        "RISKSTREAM_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "RISKSTREAM_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "RISKSTREAM_APP_ID": f"startup-{redis_port}",
        "RISKSTREAM_METRICS_PORT": str(metrics_port),
        "RISKSTREAM_DATA_DIR": str(tmp_path / "data"),
        "RISKSTREAM_VOL_MODELS": "ewma",
        "RISKSTREAM_VAR_METHOD": "ewma-mix",
        "RISKSTREAM_CREDIT_ENABLED": "0",
    }
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    redis = None
    readyz = f"http://127.0.0.1:{metrics_port}/readyz"
    try:
        text = lambda: log_path.read_text("utf-8", "replace")  # noqa: E731
        wait_until(lambda: "(attempt 2)" in text(), 60, "a second attempt to reach Redis")
        status, body = _get(readyz)
        assert status == 503 and '"redis": false' in body
        assert "Traceback" not in text() and READY_LINE not in text()
        redis = RedisServer(tmp_path / "redis", port=redis_port).start()
        wait_until(lambda: READY_LINE in text(), 300, "the worker to become ready")
        assert f"Redis at redis://127.0.0.1:{redis_port}/0 is available after" in text()
        wait_until(lambda: _get(readyz)[0] == 200, 30, "/readyz to answer 200")
        assert _get(f"http://127.0.0.1:{metrics_port}/healthz")[0] == 200
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
        if redis is not None:
            redis.close()
