"""The ``instruments`` topic is created compacted (a table: the latest record per key counts)."""

from __future__ import annotations

import warnings

import pytest

from engine.config import Settings
from engine.kafka.topics import INSTRUMENTS, ensure_topics
from engine.services.kafka_admin import admin_client

pytestmark = [pytest.mark.integration]


def test_ensure_topics_creates_instruments_with_log_compaction(fresh_kafka) -> None:
    broker = fresh_kafka()
    ensure_topics(Settings(kafka_bootstrap=broker.bootstrap), (INSTRUMENTS, "prices"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka.admin import ConfigResource, ConfigResourceType

    with admin_client(broker.bootstrap) as admin:
        policies = {}
        for topic in (INSTRUMENTS, "prices"):
            response = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
            overrides = response["topic"][topic]  # the topic's own (non-default) settings
            policies[topic] = overrides.get("cleanup.policy", {}).get("value", "broker default")
    assert policies == {INSTRUMENTS: "compact", "prices": "broker default"}
