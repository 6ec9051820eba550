"""Kafka and Redis in Docker containers (testcontainers), for machines with a Docker engine.

The native processes of :mod:`engine.services` are the default everywhere; these are the
alternative a test session picks with ``RISKSTREAM_TEST_SERVICES=docker`` (or ``auto`` when
``docker info`` succeeds). They offer the same addresses (``bootstrap``, ``url``) and
``pause``/``resume``/``stop``, but not ``kill``/``restart``: a restarted container gets a
new host port, which its advertised listener would not match, so crash tests need the
native backend.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from typing import Any, Self

from engine.services import kafka_admin
from engine.services.errors import ServiceStartError
from engine.services.redis import RedisByUrl

KAFKA_IMAGE = "confluentinc/cp-kafka:7.9.1"  # Kafka 3.9, like the native broker
REDIS_IMAGE = "redis:7.0"


def docker_engine_available(timeout: float = 15.0) -> bool:
    """Whether a Docker engine answers (``docker info`` exits 0), not merely a client exists."""
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        result = subprocess.run([docker, "info"], capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def _quiet_import(module: str, fallback: str) -> Any:
    import importlib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return importlib.import_module(module)
        except ImportError:  # testcontainers < 4.10 has no ``community`` namespace
            return importlib.import_module(fallback)


class _Container:
    _container: Any = None

    def _wrapped(self) -> Any:
        if self._container is None:
            raise ServiceStartError(f"{type(self).__name__} is not started")
        return self._container.get_wrapped_container()

    def pause(self) -> None:
        """Freeze the container (``docker pause``)."""
        self._wrapped().pause()

    def resume(self) -> None:
        """Thaw a paused container (``docker unpause``)."""
        self._wrapped().unpause()

    def kill(self) -> None:
        raise ServiceStartError(
            "kill() needs native services; run with RISKSTREAM_TEST_SERVICES=native"
        )

    def restart(self) -> None:
        raise ServiceStartError(
            "restart() needs native services; run with RISKSTREAM_TEST_SERVICES=native"
        )

    @property
    def is_running(self) -> bool:
        if self._container is None:
            return False
        wrapped = self._container.get_wrapped_container()
        wrapped.reload()
        return wrapped.status in ("running", "paused")

    def stop(self) -> None:
        """Remove the container (idempotent)."""
        if self._container is not None:
            self._container.stop()
            self._container = None

    def close(self) -> None:
        self.stop()


class DockerKafka(_Container, kafka_admin.SingleBrokerTopics):
    """A single-node KRaft Kafka container with topic auto-creation off."""

    def __init__(self, image: str = KAFKA_IMAGE) -> None:
        self.image = image

    def start(self, timeout: float = 120.0) -> Self:
        module = _quiet_import("testcontainers.community.kafka", "testcontainers.kafka")
        try:  # the constructor already talks to the Docker engine
            container = (
                module.KafkaContainer(self.image)
                .with_kraft()
                .with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
            )
            container.start(timeout=int(timeout))
        except Exception as exc:
            raise ServiceStartError(f"Kafka container {self.image} did not start: {exc}") from exc
        self._container = container
        return self

    @property
    def bootstrap(self) -> str:
        """``host:port`` of the container's client listener."""
        if self._container is None:
            raise ServiceStartError("DockerKafka is not started")
        return str(self._container.get_bootstrap_server())


class DockerRedis(_Container, RedisByUrl):
    """A Redis container without persistence."""

    def __init__(self, image: str = REDIS_IMAGE) -> None:
        self.image = image

    def start(self) -> Self:
        module = _quiet_import("testcontainers.community.redis", "testcontainers.redis")
        try:  # the constructor already talks to the Docker engine
            container = module.RedisContainer(self.image)
            container.start()
        except Exception as exc:
            raise ServiceStartError(f"Redis container {self.image} did not start: {exc}") from exc
        self._container = container
        return self

    def url_for(self, db: int = 0) -> str:
        if self._container is None:
            raise ServiceStartError("DockerRedis is not started")
        host = self._container.get_container_host_ip()
        port = self._container.get_exposed_port(self._container.port)
        return f"redis://{host}:{port}/{db}"
