"""The peers of ``riskstream bench compare`` do riskstream's work and raise its alerts.

The per-tick rule (:mod:`engine.bench.peers.work`) is checked against riskstream's
pipeline in-process; then the naive Faust agent, Quix Streams and bytewax each run as
a process over one small topic on a real broker, and must write the same alert ids.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import redis

from engine.bench.e2e import _kafka, synthetic_messages
from engine.bench.peers import runner
from engine.bench.peers.work import (
    ES_Z_975,
    MODEL,
    MODEL_VERSION,
    Z_95,
    Z_99,
    reference_alert_ids,
)
from engine.boundary.records import RawRecord
from engine.config import Settings
from engine.core.dists import normal_factors
from engine.errors import InputError
from engine.pipeline import PricePipeline

EWMA = {"vol_models": "ewma", "var_method": "ewma-normal"}


def test_constants_are_riskstreams() -> None:
    assert (normal_factors(0.95)[0], normal_factors(0.99)[0]) == (Z_95, Z_99)
    assert normal_factors(0.975)[1] == ES_Z_975
    book = PricePipeline.from_settings(Settings(**EWMA)).book  # type: ignore[arg-type]
    assert (book.model_name, book.model_version) == (MODEL, MODEL_VERSION)


def test_rule_raises_riskstreams_breach_alerts() -> None:
    messages = synthetic_messages(12_000, 40, seed=7)
    pipeline = PricePipeline.from_settings(Settings(**EWMA))  # type: ignore[arg-type]
    records = [RawRecord(k, v, 0, i) for i, (k, v) in enumerate(messages)]
    outcome = pipeline.process(records, now_ms=2**62)
    riskstream = {a.alert_id for a in outcome.alerts if a.kind == "var_breach"}
    ours = reference_alert_ids(json.loads(v) for _, v in messages)
    assert len(riskstream) > 20
    assert ours == riskstream


def test_missing_framework_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(runner.IMPORTS, "bytewax", "no_such_module_for_riskstream")
    with pytest.raises(InputError, match=r"riskstream\[peers\].*--peers none"):
        runner.check_installed(["quix", "bytewax"])


def _topic(bootstrap: str, messages: list[tuple[bytes, bytes]], partitions: int) -> str:
    from kafka.admin import NewTopic

    from engine.services.kafka_admin import admin_client

    name = f"peers-{uuid.uuid4().hex[:8]}"
    with admin_client(bootstrap, timeout_ms=10_000) as admin:
        admin.create_topics([NewTopic(name, partitions, 1)])
    producer = _kafka().KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    try:
        for key, value in messages:
            producer.send(name, key=key, value=value)
        producer.flush(60)
    finally:
        producer.close()
    return name


@pytest.mark.integration
@pytest.mark.slow
def test_peers_write_the_naive_agents_alerts(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    runner.check_installed(["quix", "bytewax"])
    messages = synthetic_messages(4_000, 40, seed=11)
    topic = _topic(kafka_bootstrap, messages, partitions=2)
    runs = {}
    for name in ("naive", "quix", "bytewax"):
        runs[name] = runner.run(
            name,
            bootstrap=kafka_bootstrap,
            redis_url=redis_url,
            expected=len(messages),
            workdir=tmp_path,
            topic=topic,
            partitions=2,
            timeout=300,
        )
        with redis.Redis.from_url(redis_url) as client:
            assert int(client.hget("riskstream:risk:SYN000", "n_ticks") or 0) == 100
            client.flushdb()
    expected = reference_alert_ids(json.loads(v) for _, v in messages)
    assert len(expected) > 10
    for name, run in runs.items():
        assert run.count == len(messages), name
        assert run.rate > 0, name
        assert run.alert_ids == expected, name


def test_compare_report_shows_the_peers_and_the_checked_alerts() -> None:
    from engine.bench.compare import CompareResult, PeerRow, check_alerts

    result = CompareResult(
        ticks=1000, symbols=10, partitions=2, raw_rate=1_000_000.0, naive_rate=2000.0,
        worker_rate=100_000.0, workers2_rate=200_000.0, transport_rate=900_000.0,
        decode_rate=500_000.0, alerts=7, alerts_checked=["bytewax 0.21.1", "riskstream (1 worker)"],
        peers=[PeerRow("bytewax 0.21.1", "bytewax 0.21.1 (stateful_map)", 50_000.0, 7)],
    )  # fmt: skip
    text = result.markdown()
    assert "| bytewax 0.21.1 (stateful_map) | 50,000 | 25.0x | 5.0% |" in text
    assert "ticks: 7, the same ids from bytewax 0.21.1, riskstream (1 worker) and" in text
    check_alerts("row", {"a", "b"}, {"a", "b"})
    with pytest.raises(RuntimeError, match=r"row raised 1 .* rule raises 2: 0 not .* 1 missing"):
        check_alerts("row", {"a"}, {"a", "b"})
