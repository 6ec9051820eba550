"""The topics riskstream reads and writes, and creating them.

Input topics (``prices``, ``transactions``, ``positions``) are keyed so that one key's
events stay in one partition; the worker's state changelogs have the same partition
count as their source, which is what lets a restarted or rebalanced worker find each
key's state. Create all of them up front with :func:`ensure_topics`. Reference data
(``instruments``) is a compacted topic, created on demand by the portfolio service.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterable
from typing import Any

from engine.config import Settings
from engine.errors import ConfigError, ServiceUnavailableError
from engine.kafka.clients import (
    bootstrap_servers,
    kafka_python_config,
    refused_credentials_are_config_errors,
)

log = logging.getLogger(__name__)

PRICES = "prices"
TRANSACTIONS = "transactions"
POSITIONS = "positions"
RISK_UPDATES = "risk.updates"
INSTRUMENTS = "instruments"
"""Reference data, key = instrument id (:mod:`engine.options.reference`); compacted."""
#: Topics that are tables (the latest value per key counts): created with log compaction.
COMPACTED_TOPICS = frozenset({INSTRUMENTS})
INPUT_TOPICS = (PRICES, TRANSACTIONS, POSITIONS)
ALL_TOPICS = (
    *INPUT_TOPICS,
    RISK_UPDATES,
    f"{PRICES}.dlq",
    f"{TRANSACTIONS}.dlq",
    f"{POSITIONS}.dlq",
)


def _partition_counts(admin: Any, names: list[str], timeout_s: float = 15.0) -> dict[str, int]:
    """Partition count of each topic; waits while a node of a cluster, answering before it
    has heard of a topic just created through another node, reports no partitions."""
    deadline = time.monotonic() + timeout_s
    while True:
        counts = {meta["name"]: len(meta["partitions"]) for meta in admin.describe_topics(names)}
        if all(counts.get(n) for n in names) or time.monotonic() > deadline:
            return counts
        time.sleep(0.2)


def _admin(settings: Settings) -> Any:
    """A connected admin client with the settings' security configuration (a context manager)."""
    from engine.services.kafka_admin import admin_client

    security = {
        k: v
        for k, v in kafka_python_config(settings).items()
        if k not in ("bootstrap_servers", "bootstrap_timeout_ms")
    }
    return admin_client(
        ",".join(bootstrap_servers(settings)),
        timeout_ms=10_000,
        client_id=f"{settings.topology.app_id}-admin",
        **security,
    )


def _create_missing(admin: Any, settings: Settings, wanted: list[str]) -> dict[str, int]:
    """Create those of ``wanted`` that do not exist; return every wanted topic's partition count."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka.admin import NewTopic
        from kafka.errors import TopicAlreadyExistsError

    existing = set(admin.list_topics())
    missing = [n for n in wanted if n not in existing]
    if missing:
        topics = [
            NewTopic(
                n,
                settings.topology.partitions,
                settings.topology.replication_factor,
                topic_configs={"cleanup.policy": "compact"} if n in COMPACTED_TOPICS else {},
            )
            for n in missing
        ]
        try:
            admin.create_topics(topics)
            log.info("created topics %s with %d partitions", missing, settings.topology.partitions)
        except TopicAlreadyExistsError:
            pass
    return _partition_counts(admin, wanted)


def ensure_topics(
    settings: Settings, names: Iterable[str] = ALL_TOPICS, *, timeout_s: float = 30.0
) -> dict[str, int]:
    """Create missing topics with ``settings.topology.partitions`` partitions; return every topic's count.

    An existing input topic whose partition count differs from the setting is an error:
    the worker's state is partitioned like its input and cannot follow a change.

    Kafka that does not answer is a :class:`ServiceUnavailableError` at once (after the
    client's 10 s bootstrap timeout). Kafka that answers but cannot create the topics yet,
    for reasons that pass by themselves (a cluster node still starting, so fewer brokers
    registered than the replication factor; the controller moving), is asked again every
    0.25 s for up to ``timeout_s`` seconds, then the last refusal is raised.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka.errors import InvalidReplicationFactorError, KafkaError

    from engine.services.kafka_admin import retry_transient

    wanted = list(dict.fromkeys(names))

    def attempt() -> dict[str, int]:
        answered = False
        try:
            with refused_credentials_are_config_errors(settings), _admin(settings) as admin:
                answered = True
                return _create_missing(admin, settings, wanted)
        except KafkaError as exc:
            if answered:
                raise  # a refusal: retried if transient
            raise ServiceUnavailableError(
                f"cannot reach Kafka at {settings.kafka.bootstrap}: {exc}"
            ) from None

    def warn_once(exc: BaseException) -> None:
        if not refused:
            log.warning("Kafka cannot create topics yet (%s); asking again", exc)
        refused.append(exc)

    refused: list[BaseException] = []
    try:
        counts = retry_transient(attempt, timeout=timeout_s, on_retry=warn_once)
    except KafkaError as exc:
        hint = ""
        if isinstance(exc, InvalidReplicationFactorError):
            hint = (
                f"; RISKSTREAM_REPLICATION_FACTOR is {settings.topology.replication_factor}: "
                "the cluster needs at least that many live brokers"
            )
        raise ServiceUnavailableError(
            f"Kafka at {settings.kafka.bootstrap} did not create topics {wanted}: {exc}{hint}"
        ) from None
    for name in INPUT_TOPICS:
        if name in counts and counts[name] != settings.topology.partitions:
            raise ConfigError(
                f"topic {name!r} has {counts[name]} partitions but RISKSTREAM_PARTITIONS is {settings.topology.partitions}; "
                "set RISKSTREAM_PARTITIONS to match"
            )
    return counts
