"""Local Kafka in KRaft mode: one node (:class:`KafkaBroker`) or several (:class:`KafkaCluster`).

Every node is a combined broker and controller, runs from the jars that
:func:`~engine.services.install.install_kafka` caches, binds 127.0.0.1 only and keeps its
data under its state directory, so :meth:`~engine.services.process.ManagedProcess.restart`
(also after :meth:`~engine.services.process.ManagedProcess.kill`) brings back the same
topics and messages on the same ports. Topics are never created implicitly
(``auto.create.topics.enable=false``): riskstream creates its topics with
:func:`engine.kafka.topics.ensure_topics`, tests with :meth:`KafkaBroker.create_topic`.

A node is ready when it answers a metadata request and lists itself among the cluster's
live brokers, not merely when its port is open.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from engine.services import kafka_admin
from engine.services.errors import ServiceStartError
from engine.services.install import KAFKA_DEPLOY_DIR, KAFKA_VERSION, find_binary, install_kafka
from engine.services.kafka_listeners import (
    Listener,
    client_listener,
    controller_listener,
    default_listeners,
    listener_properties,
)
from engine.services.ports import free_port, port_open
from engine.services.process import ManagedProcess

PropertyValue = str | int | bool


def random_cluster_id() -> str:
    """A Kafka cluster id (base64url of a random UUID, never starting with ``-``), like
    ``kafka-storage random-uuid`` prints, without starting a JVM."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _render(value: PropertyValue) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


class KafkaBroker(ManagedProcess, kafka_admin.SingleBrokerTopics):
    """One KRaft node (broker and controller in one JVM) on 127.0.0.1.

    Parameters
    ----------
    state_dir
        Holds ``server.properties``, ``log4j.properties``, the data (``data/``) and
        ``kafka-<node>.log``. A temporary directory, removed by :meth:`close`, when omitted.
    port, controller_port
        Client and controller ports; free ports are chosen when omitted, and kept across
        restarts.
    node_id
        ``node.id``; also the id that metadata reports for this broker.
    voters
        ``controller.quorum.voters``; by default this node alone.
    cluster_id
        Used once, to format empty storage; random when omitted.
    listeners
        Full listener set (see :mod:`engine.services.kafka_listeners`); overrides the
        ports. The first client listener is the one :attr:`bootstrap` names.
    properties
        Extra or overriding ``server.properties`` entries.
    heap
        JVM ``-Xmx``.
    """

    def __init__(
        self,
        state_dir: Path | None = None,
        *,
        port: int | None = None,
        controller_port: int | None = None,
        node_id: int = 1,
        voters: str | None = None,
        cluster_id: str | None = None,
        listeners: Sequence[Listener] | None = None,
        properties: Mapping[str, PropertyValue] | None = None,
        version: str = KAFKA_VERSION,
        heap: str = "512m",
        detach: bool = False,
        ready_timeout: float = 90.0,
    ) -> None:
        super().__init__(f"kafka-{node_id}", state_dir, detach=detach, ready_timeout=ready_timeout)
        if listeners is None:
            listeners = default_listeners(port or free_port(), controller_port or free_port())
        self.listeners: tuple[Listener, ...] = tuple(listeners)
        self.node_id = node_id
        controller = controller_listener(self.listeners)
        self.voters = voters or f"{node_id}@{controller.address}"
        self.cluster_id = cluster_id or random_cluster_id()
        self.properties: dict[str, PropertyValue] = dict(properties or {})
        self.version = version
        self.heap = heap

    # --- Addresses ------------------------------------------------------------------------
    @property
    def client(self) -> Listener:
        """The client listener clients use (first non-controller listener)."""
        return client_listener(self.listeners)

    @property
    def port(self) -> int:
        """Client port."""
        return self.client.port

    @property
    def controller_port(self) -> int:
        """KRaft controller port."""
        return controller_listener(self.listeners).port

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:<port>`` for ``bootstrap_servers`` / ``RISKSTREAM_KAFKA_BOOTSTRAP``."""
        return self.client.address

    @property
    def address(self) -> str:
        return self.bootstrap

    @property
    def data_dir(self) -> Path:
        """``log.dirs``: topic data and the KRaft metadata log."""
        return self.state_dir / "data"

    @property
    def config_path(self) -> Path:
        """The ``server.properties`` written before each start."""
        return self.state_dir / "server.properties"

    # --- Configuration --------------------------------------------------------------------
    def server_properties(self) -> dict[str, str]:
        """The complete ``server.properties`` this node runs with."""
        props: dict[str, PropertyValue] = {
            "process.roles": "broker,controller",
            "node.id": self.node_id,
            "controller.quorum.voters": self.voters,
            **listener_properties(self.listeners),
            "log.dirs": str(self.data_dir),
            "auto.create.topics.enable": False,
            "num.partitions": 1,
            "default.replication.factor": 1,
            "min.insync.replicas": 1,
            "offsets.topic.replication.factor": 1,
            # 10 instead of 50: the first consumer group on a fresh broker is ready sooner.
            "offsets.topic.num.partitions": 10,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "group.initial.rebalance.delay.ms": 0,
            # A crashed node is declared dead (and, restarted, may register again) after
            # 4 s instead of 9 s: local fail-over and crash tests wait half as long.
            "broker.session.timeout.ms": 4000,
            "broker.heartbeat.interval.ms": 1000,
        }
        props.update(self.properties)
        return {key: _render(value) for key, value in props.items()}

    def _libs(self) -> Path:
        return install_kafka(self.version)

    def _java(self) -> str:
        return str(find_binary("java"))

    def _log4j(self) -> Path:
        return self.state_dir / "log4j.properties"

    def format_storage(self) -> None:
        """Format empty storage with :attr:`cluster_id` (``kafka-storage format``); no-op if done."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        if (self.data_dir / "meta.properties").is_file():
            return
        argv = [
            self._java(),
            "-Xmx256m",
            f"-Dlog4j.configuration=file:{self._log4j()}",
            "-cp",
            f"{self._libs()}/*",
            "kafka.tools.StorageTool",
            "format",
            "--ignore-formatted",
            "-t",
            self.cluster_id,
            "-c",
            str(self.config_path),
            *self.format_arguments(),
        ]
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ServiceStartError(
                f"formatting Kafka storage in {self.data_dir} failed (exit {result.returncode}):\n"
                + (result.stdout + result.stderr).strip()[-3000:]
            )

    def format_arguments(self) -> list[str]:
        """Extra ``kafka-storage format`` arguments (e.g. ``--add-scram`` users). Default: none."""
        return []

    def _write_config(self) -> None:
        lines = [f"{key}={value}" for key, value in self.server_properties().items()]
        self.config_path.write_text(
            "# written by engine.services.kafka\n" + "\n".join(lines) + "\n"
        )
        shutil.copyfile(KAFKA_DEPLOY_DIR / "log4j.properties", self._log4j())

    # --- ManagedProcess hooks -------------------------------------------------------------
    def prepare(self) -> None:
        self.format_storage()

    def command(self) -> list[str]:
        return [
            self._java(),
            f"-Xmx{self.heap}",
            "-Xms128m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{self._log4j()}",
            f"-Dkafka.logs.dir={self.state_dir}",
            "-cp",
            f"{self._libs()}/*",
            "kafka.Kafka",
            str(self.config_path),
        ]

    def probe(self) -> bool:
        if not port_open(self.port, self.client.host):
            return False
        return self.node_id in kafka_admin.broker_ids(self.bootstrap, timeout_ms=2_000)
