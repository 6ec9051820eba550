"""Shared pytest fixtures. Each section is owned by one part of the code base; keep them apart."""

from __future__ import annotations

import gc
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.services.process import running_processes
from engine.services.prometheus import PrometheusServer
from engine.services.testing import (
    KafkaService,
    RedisService,
    ServiceHub,
    backend_from_env,
    close_failed_kafka_sockets,
)

# =============================================================================================
# Local services: Kafka, Redis, Prometheus (engine/services)
# =============================================================================================
#
# POLICY: a service that cannot be found or started makes the test FAIL (pytest.fail, with
# the service's log tail), it never skips. A skipped integration test looks like a passing
# suite while nothing was tested, so CI must never skip for a missing service.
#
#   RISKSTREAM_REQUIRE_SERVICES   default "1" (required). Only for a local run on a machine
#                                 without the services may a developer set it to "0"
#                                 explicitly; the tests are then skipped with the reason.
#                                 Even then, prefer installing them (deploy/services.sh
#                                 install) and letting the tests fail until they start.
#   CI                            when set (any value but "" / "0" / "false"), services are
#                                 always required, whatever RISKSTREAM_REQUIRE_SERVICES says.
#   RISKSTREAM_TEST_SERVICES      native | docker | auto (default): who provides Kafka and
#                                 Redis. auto = docker only if a Docker engine answers
#                                 (`docker info`), else native processes.
#
# Fixtures (all services bind 127.0.0.1 and are stopped when their scope ends):
#   services_hub        session  ServiceHub of the session (engine.services.testing)
#   kafka_bootstrap     session  "127.0.0.1:PORT" of one single-node broker for the session
#   fresh_kafka         function factory fresh_kafka(**broker_options) -> a brand-new broker
#   redis_server        session  the session's Redis (RedisServer or DockerRedis)
#   redis_url           function URL of database 0 of the session's Redis, FLUSHALLed first
#   prometheus_factory  function factory prometheus_factory(config_path, **options)
# Benchmarks and fault scripts use engine.services.testing.ServiceHub directly.

# kafka-python 3.0 leaves the socket of a refused connect unclosed; with filterwarnings=error
# the ResourceWarning fails a random test whenever a broker is down. See its docstring.
close_failed_kafka_sockets()


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


def services_required() -> bool:
    """Whether a missing service fails the test (always in CI; by default everywhere)."""
    return _flag("CI", False) or _flag("RISKSTREAM_REQUIRE_SERVICES", True)


def _service_unavailable(what: str, exc: BaseException) -> None:
    message = (
        f"{what} could not be started: {exc}\n"
        "Install the local services with `deploy/services.sh install` (or run deploy/test.sh)."
    )
    if services_required():
        pytest.fail(message, pytrace=False)
    pytest.skip(f"RISKSTREAM_REQUIRE_SERVICES=0 and {message}")


def _start(what: str, start: Callable[[], Any]) -> Any:
    try:
        return start()
    except Exception as exc:  # every failure to provide a service is reported the same way
        _service_unavailable(what, exc)
        raise  # unreachable: pytest.fail/skip raise


@pytest.fixture(scope="session")
def services_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceHub]:
    """The session's services (backend from RISKSTREAM_TEST_SERVICES), stopped at the end."""
    try:
        backend = backend_from_env(os.environ)
    except ValueError as exc:
        pytest.fail(str(exc), pytrace=False)
    hub = ServiceHub(tmp_path_factory.mktemp("services"), backend)
    yield hub
    hub.close()


@pytest.fixture(scope="session")
def kafka_bootstrap(services_hub: ServiceHub) -> str:
    """Bootstrap address of the session's single-node Kafka (topics persist across tests:
    use unique topic names, or ``fresh_kafka`` for a clean broker)."""
    broker: KafkaService = _start("Kafka", services_hub.kafka)
    return broker.bootstrap


@pytest.fixture
def fresh_kafka(tmp_path: Path, services_hub: ServiceHub) -> Iterator[Callable[..., KafkaService]]:
    """Factory of brand-new single-node brokers, stopped at the end of the test.

    ``fresh_kafka(**options)`` returns a started broker; with the native backend it is a
    :class:`engine.services.kafka.KafkaBroker` (options go to its constructor; it supports
    ``kill()``, ``pause()``, ``resume()``, ``restart()``).
    """
    hub = ServiceHub(tmp_path / "fresh-services", services_hub.backend)

    def factory(**options: Any) -> KafkaService:
        broker: KafkaService = _start("Kafka", lambda: hub.kafka(**options))
        return broker

    yield factory
    hub.close()


@pytest.fixture
def collect_client_sockets() -> Iterator[None]:
    """Collect kafka-python's garbage after the test while ResourceWarning is ignored.

    kafka-python 3.0 leaves the socket of a failed connection attempt (e.g. while a new
    topic's leader is elected) for the garbage collector; with ``filterwarnings=error``
    that would fail whichever later test happens to trigger the collection. Every client
    the tests open is closed explicitly.
    """
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.fixture(scope="session")
def redis_server(services_hub: ServiceHub) -> RedisService:
    """The session's Redis (no persistence)."""
    server: RedisService = _start("Redis", services_hub.redis)
    return server


@pytest.fixture
def redis_url(redis_server: RedisService) -> str:
    """URL of database 0 of the session's Redis, emptied (FLUSHALL) before the test."""
    _start("Redis", redis_server.flush)
    return redis_server.url


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Callable[..., PrometheusServer]]:
    """Factory ``prometheus_factory(config_path, **options)`` of started Prometheus servers,
    stopped at the end of the test (always native)."""
    hub = ServiceHub(tmp_path / "prometheus-services", "native")

    def factory(config_path: Path | str, **options: Any) -> PrometheusServer:
        server: PrometheusServer = _start(
            "Prometheus", lambda: hub.prometheus(config_path, **options)
        )
        return server

    yield factory
    hub.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No service process started during the session may outlive it.

    Fixtures stop their services; anything still running here was leaked by a test (a
    ``KafkaBroker`` started without ``with`` or ``close()``). It is killed, and the session
    fails so the leak gets fixed.
    """
    leftovers = running_processes()
    if not leftovers:
        return
    for process in leftovers:
        process.kill()
    names = ", ".join(repr(p) for p in leftovers)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"ERROR: service processes left running, killed: {names}", red=True)
    still = [p for p in leftovers if p.is_running]
    if still and reporter is not None:
        reporter.write_line(f"ERROR: could not kill {still!r}", red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
