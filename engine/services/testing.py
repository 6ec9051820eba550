"""Services for test sessions and benchmarks: pick a backend, start what is asked, stop it all.

``tests/conftest.py`` builds its fixtures on :class:`ServiceHub`; a benchmark or a
fault-injection script does the same in a few lines::

    hub = ServiceHub(Path(".run/bench"), backend_from_env(os.environ))
    try:
        kafka = hub.kafka()
        redis = hub.redis()
        ...  # kafka.bootstrap, redis.url
    finally:
        hub.close()

Backends (``RISKSTREAM_TEST_SERVICES``): ``native`` runs the processes of
:mod:`engine.services` (Kafka jars, ``redis-server``, ``prometheus``); ``docker`` runs Kafka
and Redis containers through testcontainers (Prometheus and multi-node clusters are always
native); ``auto`` (the default) means docker only when a Docker engine answers.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Protocol, Self

from engine.errors import ConfigError
from engine.services.containers import DockerKafka, DockerRedis, docker_engine_available
from engine.services.kafka import KafkaBroker
from engine.services.kafka_cluster import KafkaCluster
from engine.services.prometheus import PrometheusServer
from engine.services.redis import RedisServer

Backend = Literal["native", "docker"]
BACKEND_ENV = "RISKSTREAM_TEST_SERVICES"


class KafkaService(Protocol):
    """What every Kafka handle offers, native or container."""

    @property
    def bootstrap(self) -> str: ...

    def create_topic(
        self,
        name: str,
        *,
        partitions: int = 1,
        replication_factor: int = 1,
        config: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> None: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def close(self) -> None: ...


class RedisService(Protocol):
    """What every Redis handle offers, native or container."""

    @property
    def url(self) -> str: ...

    def url_for(self, db: int = 0) -> str: ...

    def client(self, db: int = 0, **kwargs: Any) -> Any: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


def resolve_backend(requested: str | None) -> Backend:
    """``native``/``docker`` as given; ``auto``, empty or ``None``: docker iff an engine answers."""
    value = (requested or "auto").strip().lower()
    if value in ("native", "docker"):
        return value  # type: ignore[return-value]
    if value != "auto":
        raise ConfigError(f"{BACKEND_ENV} must be native, docker or auto, not {requested!r}")
    return "docker" if docker_engine_available() else "native"


def backend_from_env(environ: Mapping[str, str]) -> Backend:
    """The backend ``RISKSTREAM_TEST_SERVICES`` in ``environ`` asks for (see :func:`resolve_backend`)."""
    return resolve_backend(environ.get(BACKEND_ENV))


class ServiceHub:
    """Starts services under ``root`` with one backend and stops all of them in :meth:`close`.

    Every ``kafka()``/``redis()``/``prometheus()`` call starts a new, independent service
    (native ones get their own directory under ``root``) and returns it ready to use;
    errors (:class:`~engine.services.errors.ServiceStartError`,
    :class:`~engine.services.errors.ServiceInstallError`) propagate with the log tail.
    """

    def __init__(self, root: Path, backend: Backend = "native") -> None:
        self.root = Path(root)
        self.backend: Backend = backend
        self._owned: list[Any] = []
        self._counter = 0

    def _dir(self, kind: str) -> Path:
        self._counter += 1
        return self.root / f"{kind}-{self._counter}"

    def _own(self, service: Any) -> Any:
        self._owned.append(service)
        return service

    def kafka(self, **options: Any) -> KafkaService:
        """A new single-node broker; ``options`` go to :class:`KafkaBroker` (native only)."""
        if self.backend == "docker":
            if options:
                raise ConfigError(f"broker options {sorted(options)} need the native backend")
            return self._own(DockerKafka()).start()
        broker = self._own(KafkaBroker(self._dir("kafka"), **options))
        return broker.start()

    def kafka_cluster(self, size: int = 3, **options: Any) -> KafkaCluster:
        """A new native multi-node cluster (see :class:`KafkaCluster`), started."""
        cluster = self._own(KafkaCluster(size, self._dir("kafka-cluster"), **options))
        return cluster.start()

    def redis(self, **options: Any) -> RedisService:
        """A new Redis server; ``options`` go to :class:`RedisServer` (native only)."""
        if self.backend == "docker":
            if options:
                raise ConfigError(f"redis options {sorted(options)} need the native backend")
            return self._own(DockerRedis()).start()
        return self._own(RedisServer(self._dir("redis"), **options)).start()

    def prometheus(self, config_path: Path | str, **options: Any) -> PrometheusServer:
        """A new Prometheus running ``config_path`` (always native)."""
        server = PrometheusServer(config_path, self._dir("prometheus"), **options)
        return self._own(server).start()

    def close(self) -> None:
        """Stop everything started here, newest first; every service is stopped even if one fails."""
        errors: list[BaseException] = []
        while self._owned:
            service = self._owned.pop()
            try:
                service.close()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise RuntimeError(f"stopping services failed: {errors!r}")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def close_failed_kafka_sockets() -> bool:
    """Make kafka-python close the socket of a connection attempt that fails.

    kafka-python 3.0 (``kafka.net.inet.KafkaNetSocket.sock_connect``) drops the socket of
    a refused or timed-out connect without closing it; the garbage collector closes it
    with a ``ResourceWarning``, which ``filterwarnings = error`` turns into a failure of
    whatever test happens to be running. Tests that kill or pause brokers trigger it on
    every reconnect attempt. This wraps ``sock_connect`` to close the socket and re-raise.
    Idempotent; returns whether the patch is in place (``False`` on kafka-python versions
    without that method, which need no patch).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from kafka.net.inet import KafkaNetSocket
    except ImportError:
        return False
    original = KafkaNetSocket.__dict__.get("sock_connect")
    if original is None:
        return False
    if getattr(original, "_riskstream_closes_sockets", False):
        return True

    async def sock_connect(
        self: Any, net: Any, sock: Any, sockaddr: Any, timeout_at: float | None = None
    ) -> Any:
        try:
            return await original(self, net, sock, sockaddr, timeout_at=timeout_at)
        except BaseException:
            sock.close()
            raise

    sock_connect._riskstream_closes_sockets = True  # type: ignore[attr-defined]
    KafkaNetSocket.sock_connect = sock_connect
    return True
