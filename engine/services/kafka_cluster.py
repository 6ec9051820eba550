"""A local multi-node Kafka cluster for replication and fail-over tests.

``KafkaCluster(3)`` runs three :class:`~engine.services.kafka.KafkaBroker` nodes on
127.0.0.1, node ids 1..n, each a combined broker and controller and all of them in
``controller.quorum.voters``, so the cluster survives losing a minority of nodes (one of
three). Nodes are addressed by node id (:meth:`KafkaCluster.node`) and can be killed,
paused and restarted one at a time; :meth:`KafkaCluster.leader` says which node leads a
partition right now.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Self

from engine.services import kafka_admin
from engine.services.errors import ServiceStartError
from engine.services.install import KAFKA_VERSION
from engine.services.kafka import KafkaBroker, PropertyValue, random_cluster_id
from engine.services.kafka_listeners import default_listeners
from engine.services.ports import free_port


class KafkaCluster:
    """``size`` combined broker+controller nodes forming one KRaft cluster on 127.0.0.1.

    Parameters
    ----------
    size
        Number of nodes (all of them controller voters).
    state_dir
        Parent of the nodes' state directories (``node-1`` ...); a temporary directory,
        removed by :meth:`close`, when omitted.
    replication_factor
        ``default.replication.factor`` (default ``min(3, size)``).
    min_insync_replicas
        ``min.insync.replicas`` (default ``min(2, replication_factor)``).
    offsets_replication_factor
        ``offsets.topic.replication.factor`` and that of the transaction log (default
        ``min(3, size)``).
    properties
        Extra ``server.properties`` entries for every node.
    heap
        JVM ``-Xmx`` of each node.
    """

    def __init__(
        self,
        size: int = 3,
        state_dir: Path | None = None,
        *,
        replication_factor: int | None = None,
        min_insync_replicas: int | None = None,
        offsets_replication_factor: int | None = None,
        properties: Mapping[str, PropertyValue] | None = None,
        version: str = KAFKA_VERSION,
        heap: str = "384m",
        ready_timeout: float = 120.0,
    ) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self.size = size
        self._owns_state_dir = state_dir is None
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix="riskstream-kafka-cluster-"))
        self.ready_timeout = ready_timeout
        self.replication_factor = replication_factor or min(3, size)
        self.min_insync_replicas = min_insync_replicas or min(2, self.replication_factor)
        offsets_rf = offsets_replication_factor or min(3, size)
        for label, value in (
            ("replication_factor", self.replication_factor),
            ("offsets_replication_factor", offsets_rf),
        ):
            if not 1 <= value <= size:
                raise ValueError(f"{label} must be between 1 and size ({size}), got {value}")
        shared: dict[str, PropertyValue] = {
            "default.replication.factor": self.replication_factor,
            "min.insync.replicas": self.min_insync_replicas,
            "offsets.topic.replication.factor": offsets_rf,
            "transaction.state.log.replication.factor": offsets_rf,
            "transaction.state.log.min.isr": min(self.min_insync_replicas, offsets_rf),
            **(properties or {}),
        }
        listeners = {
            node: default_listeners(free_port(), free_port()) for node in range(1, size + 1)
        }
        voters = ",".join(f"{node}@{ls[1].address}" for node, ls in listeners.items())
        cluster_id = random_cluster_id()
        self.brokers: list[KafkaBroker] = [
            KafkaBroker(
                self.state_dir / f"node-{node}",
                node_id=node,
                voters=voters,
                cluster_id=cluster_id,
                listeners=ls,
                properties=shared,
                version=version,
                heap=heap,
                ready_timeout=ready_timeout,
            )
            for node, ls in listeners.items()
        ]

    # --- Addresses ------------------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        """Every node's client address, comma-separated."""
        return ",".join(b.bootstrap for b in self.brokers)

    @property
    def live_bootstrap(self) -> str:
        """Client addresses of the nodes that are running and not paused."""
        return ",".join(b.bootstrap for b in self.brokers if b.is_running and not b.is_paused)

    def node(self, node_id: int) -> KafkaBroker:
        """The node with ``node.id == node_id`` (1-based)."""
        for broker in self.brokers:
            if broker.node_id == node_id:
                return broker
        raise KeyError(f"no node {node_id} in a cluster of {self.size}")

    # --- Lifecycle ------------------------------------------------------------------------
    def start(self) -> Self:
        """Format, launch every node at once, and wait until each lists itself as a broker.

        On failure every node is stopped and :class:`ServiceStartError` names the node
        and quotes its log.
        """
        with ThreadPoolExecutor(max_workers=self.size) as pool:
            list(pool.map(KafkaBroker.format_storage, self.brokers))
        try:
            for broker in self.brokers:
                broker.launch()
            deadline = time.monotonic() + self.ready_timeout
            for broker in self.brokers:
                broker.wait_ready(max(1.0, deadline - time.monotonic()))
            self._wait_for_all_brokers(deadline)
        except ServiceStartError:
            self.stop(timeout=5)
            raise
        return self

    def _wait_for_all_brokers(self, deadline: float) -> None:
        """Wait until each node's own metadata lists every node (propagation is asynchronous)."""
        expected = {b.node_id for b in self.brokers}
        for broker in self.brokers:
            seen: object = None
            while True:
                try:
                    seen = kafka_admin.broker_ids(broker.bootstrap, timeout_ms=2_000)
                    if seen == expected:
                        break
                except Exception as exc:  # not answering yet: keep polling until the deadline
                    seen = exc
                if time.monotonic() >= deadline:
                    raise ServiceStartError(
                        f"{broker.name} does not see all brokers {sorted(expected)} within "
                        f"{self.ready_timeout:.0f} s (last answer: {seen!r}); last lines of "
                        f"{broker.log_path}:\n{broker.log_tail()}"
                    )
                time.sleep(0.2)

    def stop(self, timeout: float = 20.0) -> None:
        """Stop all nodes concurrently (SIGTERM, then SIGKILL after ``timeout`` s)."""
        with ThreadPoolExecutor(max_workers=self.size) as pool:
            list(pool.map(lambda b: b.stop(timeout), self.brokers))

    def close(self) -> None:
        """Stop, and delete the state directory if this object created it."""
        self.stop()
        if self._owns_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- Topics and leadership ------------------------------------------------------------
    def create_topic(
        self,
        name: str,
        *,
        partitions: int = 1,
        replication_factor: int | None = None,
        config: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        """Create a topic (default replication: the cluster's) and wait for its leaders."""
        kafka_admin.create_topic(
            self.live_bootstrap,
            name,
            partitions=partitions,
            replication_factor=replication_factor or self.replication_factor,
            config=config,
            timeout=timeout,
        )

    def leader(self, topic: str, partition: int = 0) -> KafkaBroker | None:
        """The node leading ``topic``/``partition`` now (asked of the live nodes), or ``None``."""
        node_id = kafka_admin.partition_leader(self.live_bootstrap, topic, partition)
        return None if node_id is None else self.node(node_id)

    def wait_for_leader(
        self,
        topic: str,
        partition: int = 0,
        *,
        exclude: tuple[KafkaBroker, ...] = (),
        timeout: float = 30.0,
    ) -> KafkaBroker:
        """Wait until the partition is led by a node not in ``exclude`` (e.g. a killed one)."""
        node_id = kafka_admin.wait_for_leader(
            self.live_bootstrap,
            topic,
            partition,
            exclude=frozenset(b.node_id for b in exclude),
            timeout=timeout,
        )
        return self.node(node_id)

    def __repr__(self) -> str:
        return f"<KafkaCluster size={self.size} {self.brokers!r}>"
