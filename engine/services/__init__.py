"""Local Kafka, Redis and Prometheus for development, tests, benchmarks and fault injection.

``riskstream services start`` (:mod:`engine.cli.services`) and the pytest fixtures in
``tests/conftest.py`` use the same classes:

- :class:`KafkaBroker` / :class:`KafkaCluster`: KRaft nodes from cached Maven jars;
- :class:`RedisServer`: ``redis-server``; :class:`PrometheusServer`: ``prometheus``;
- :class:`ManagedProcess`: their common start / ready / stop / kill / pause / restart;
- :mod:`~engine.services.install`: jars and Debian packages; :mod:`~engine.services.registry`:
  what the CLI left running; :mod:`~engine.services.testing`: backend choice and
  :class:`~engine.services.testing.ServiceHub` for test sessions and benchmarks.

Every service binds 127.0.0.1 only and runs in its own process group. Importing this
package is cheap: client libraries are imported when first used.
"""

from __future__ import annotations

from engine.services.errors import ServiceInstallError, ServiceStartError
from engine.services.install import ensure_debian_package, install_kafka
from engine.services.kafka import KafkaBroker
from engine.services.kafka_cluster import KafkaCluster
from engine.services.kafka_listeners import Listener
from engine.services.ports import free_port
from engine.services.process import ManagedProcess, running_processes, stop_all
from engine.services.prometheus import PrometheusServer
from engine.services.redis import RedisServer
from engine.services.registry import Registry, ServiceRecord

__all__ = [
    "KafkaBroker",
    "KafkaCluster",
    "Listener",
    "ManagedProcess",
    "PrometheusServer",
    "RedisServer",
    "Registry",
    "ServiceInstallError",
    "ServiceRecord",
    "ServiceStartError",
    "ensure_debian_package",
    "free_port",
    "install_kafka",
    "running_processes",
    "stop_all",
]
