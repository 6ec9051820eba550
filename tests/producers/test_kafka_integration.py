"""Producing into a real Kafka broker and consuming back with kafka-python."""

from __future__ import annotations

import time
import uuid
import warnings
from collections import defaultdict
from typing import Any

import pytest
from typer.testing import CliRunner

from engine.boundary.timeutil import now_ms
from engine.cli import app
from engine.config import Settings
from engine.errors import ServiceUnavailableError
from engine.pipeline import TransactionPipeline
from producers.faults import inject_bad
from producers.kafka import KafkaSink, publish
from producers.messages import Message, price_messages, transaction_messages
from producers.synthetic import SyntheticPrices, SyntheticTransactions

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("collect_client_sockets")]

START = 1_700_000_000_000
PARTITIONS = 4


def _settings(bootstrap: str) -> Settings:
    return Settings(kafka_bootstrap=bootstrap, partitions=PARTITIONS)


def _topic(stem: str) -> str:
    return f"{stem}-it-{uuid.uuid4().hex[:10]}"


def _consume(bootstrap: str, topic: str, expected: int, timeout_s: float = 60.0) -> list[Any]:
    """Every record of ``topic`` from the beginning, waiting until ``expected`` arrived."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    records: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        # Anything beyond what was sent would be a duplicate: give it a moment to show up.
        for batch in consumer.poll(timeout_ms=1000).values():
            records.extend(batch)
    finally:
        consumer.close()
    return records


def _in_offset_order(records: list[Any]) -> list[Any]:
    return sorted(records, key=lambda r: (r.partition, r.offset))


def test_prices_arrive_keyed_complete_and_in_order_per_key(kafka_bootstrap: str) -> None:
    topic = _topic("prices")
    sent = list(price_messages(SyntheticPrices(12, ticks=6000, seed=4, start_ms=START)))
    report = publish(sent, _settings(kafka_bootstrap), topic)
    assert (report.sent, report.failed, report.bad) == (6000, 0, 0)

    records = _in_offset_order(_consume(kafka_bootstrap, topic, len(sent)))
    assert len(records) == len(sent)
    sent_by_key: dict[bytes | None, list[bytes | None]] = defaultdict(list)
    for m in sent:
        sent_by_key[m.key].append(m.value)
    got_by_key: dict[bytes, list[bytes]] = defaultdict(list)
    partitions: dict[bytes, set[int]] = defaultdict(set)
    for r in records:
        got_by_key[r.key].append(r.value)
        partitions[r.key].add(r.partition)
    assert set(got_by_key) == {f"SYN{i:03d}".encode() for i in range(12)}
    assert dict(got_by_key) == dict(sent_by_key)  # same values, same order, per key
    assert all(len(p) == 1 for p in partitions.values())  # one key, one partition
    assert len({p for ps in partitions.values() for p in ps}) > 1  # keys spread out


def test_dead_letters_over_kafka_equal_the_injected_records(kafka_bootstrap: str) -> None:
    topic = _topic("transactions")
    good = transaction_messages(SyntheticTransactions(30, 40, count=3000, seed=2, start_ms=START))
    sent = list(inject_bad(good, 0.15, seed=9))
    report = publish(sent, _settings(kafka_bootstrap), topic, progress=False)
    assert report.sent == len(sent) and report.failed == 0
    assert report.bad == sum(m.is_bad for m in sent) > 300

    records = _in_offset_order(_consume(kafka_bootstrap, topic, len(sent)))
    assert len(records) == len(sent)
    n_bad = sum(m.is_bad for m in sent)
    pipeline = TransactionPipeline.from_settings(Settings())
    dead: list[Any] = []
    accepted = 0
    for partition in range(PARTITIONS):
        batch = [r for r in records if r.partition == partition]
        outcome = pipeline.process(batch, now_ms=now_ms())
        dead += outcome.dead_letters
        accepted += outcome.accepted
    assert accepted == len(sent) - n_bad
    assert len(dead) == n_bad
    # Duplicates repeat a good message's bytes, so compare as a multiset of (bytes, reason).
    got = sorted((d.key or b"", d.value or b"", d.reason.value) for d in dead)
    want = sorted((m.key or b"", m.value or b"", m.expected.value) for m in sent if m.expected)
    assert got == want


def test_delivery_failures_are_counted_not_lost(kafka_bootstrap: str) -> None:
    topic = _topic("prices")
    settings = _settings(kafka_bootstrap)
    publish([], settings, topic)  # creates the topic
    sink = KafkaSink(settings, topic, max_request_size=2000)
    sink.send(Message(b"A", b'{"ok":1}'))
    sink.send(Message(b"A", b"x" * 10_000))  # larger than a request may be
    sink.send(Message(b"A", b'{"ok":2}'))
    sink.close()
    sink.close()  # idempotent
    assert (sink.delivered, sink.failed) == (2, 1)
    assert sink.first_error is not None and "MessageSizeTooLarge" in sink.first_error
    assert [r.value for r in _consume(kafka_bootstrap, topic, 2)] == [b'{"ok":1}', b'{"ok":2}']


def test_unreachable_kafka_is_a_service_error() -> None:
    with pytest.raises(ServiceUnavailableError, match="cannot reach Kafka"):
        publish([], _settings("127.0.0.1:9"), "prices")


def test_cli_produces_into_kafka(kafka_bootstrap: str) -> None:
    topic = _topic("prices")
    args = ["produce", "prices", "--symbols", "3", "--ticks", "300", "--seed", "1"]
    args += ["--start", "2023-11-14T00:00:00Z", "--topic", topic, "--no-progress"]
    result = CliRunner().invoke(app, [*args, "--bootstrap", kafka_bootstrap])
    assert result.exit_code == 0, result.output
    assert f"sent 300 messages to {topic}" in result.stderr
    records = _consume(kafka_bootstrap, topic, 300)
    assert len(records) == 300
    assert {r.key for r in records} == {b"SYN000", b"SYN001", b"SYN002"}
