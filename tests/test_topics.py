"""Creating riskstream's topics on a real broker: what is created, and what is refused."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from engine.config import Settings
from engine.errors import ConfigError, ServiceUnavailableError
from engine.kafka.topics import ensure_topics

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("collect_client_sockets")]


def _names(*stems: str) -> list[str]:
    tag = uuid.uuid4().hex[:8]
    return [f"{stem}-{tag}" for stem in stems]


def test_missing_topics_are_created_and_existing_ones_kept(kafka_bootstrap: str) -> None:
    first, second = _names("topics-a", "topics-b")
    settings = Settings(kafka_bootstrap=kafka_bootstrap, partitions=3)

    assert ensure_topics(settings, [first]) == {first: 3}
    # Asked again with another setting: the existing topic keeps its 3 partitions.
    wider = Settings(kafka_bootstrap=kafka_bootstrap, partitions=5)
    assert ensure_topics(wider, [first, second]) == {first: 3, second: 5}


def test_an_input_topic_with_another_partition_count_is_a_config_error(
    fresh_kafka: Callable[..., Any],
) -> None:
    # A broker of its own: the session's broker has a "prices" of whatever count the
    # other tests gave it.
    bootstrap = fresh_kafka().bootstrap
    assert ensure_topics(Settings(kafka_bootstrap=bootstrap, partitions=4), ["prices"]) == {
        "prices": 4
    }
    with pytest.raises(ConfigError, match="has 4 partitions but RISKSTREAM_PARTITIONS is 8"):
        ensure_topics(Settings(kafka_bootstrap=bootstrap, partitions=8), ["prices"])


def test_more_replicas_than_live_brokers_is_asked_again_then_refused_clearly(
    kafka_bootstrap: str,
) -> None:
    """One broker cannot hold two replicas: a cluster node may just be starting, so
    ensure_topics asks again until its timeout, then names the setting to change."""
    (name,) = _names("topics-rf")
    settings = Settings(kafka_bootstrap=kafka_bootstrap, partitions=1, replication_factor=2)
    began = time.monotonic()
    with pytest.raises(ServiceUnavailableError) as refused:
        ensure_topics(settings, [name], timeout_s=2.0)
    waited = time.monotonic() - began
    assert "InvalidReplicationFactor" in str(refused.value)
    assert "RISKSTREAM_REPLICATION_FACTOR is 2" in str(refused.value)
    assert "cannot reach" not in str(refused.value)  # it answered: not an unreachable Kafka
    assert 2.0 <= waited < 15.0
