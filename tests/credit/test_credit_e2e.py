"""End to end: Taiwan credit reviews -> real Kafka -> a real worker (crashed and restarted) -> Redis.

Every credit alert the pipeline computes offline for the same reviews appears exactly once in
``riskstream:alerts``, carrying its top SHAP attributions; each alert's full explanation is in
Redis, adds up to the model's log-odds, and maps through the calibration to the alert's PD;
every customer's ``riskstream:credit:<id>`` hash equals the offline run.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
import redis
from scipy.special import expit

from engine.boundary.records import RawRecord
from engine.boundary.schemas import Transaction
from engine.boundary.timeutil import now_ms
from engine.config import Settings
from engine.credit.model import CreditModel
from engine.explain.cache import ALERT_KEY, Explanation
from engine.explain.tree import ADDITIVITY_TOLERANCE
from engine.faults.harness import WorkerProcess, alert_entries, produce, redis_hash, wait_until
from engine.pipeline import TransactionPipeline
from producers.credit_reviews import taiwan_credit

from .conftest import COMMITTED

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

REVIEWS = 1500


def test_credit_reviews_raise_explained_alerts_exactly_once(
    fresh_kafka, redis_url: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    broker = fresh_kafka()
    start = now_ms() - 3_600_000
    reviews = list(taiwan_credit(start_ms=start, interval_ms=1000))[:REVIEWS]
    payments = [
        Transaction(f"p{i}", start + i, f"tw{i + 1}", 12.5) for i in range(50)
    ]  # not scored
    records = [(t.key, t.to_json()) for t in reviews[:700] + payments + reviews[700:]]
    # credit only: the anomaly stage has its own tests (tests/anomaly)
    expected = TransactionPipeline.from_settings(Settings(anomaly_enabled=False)).process(
        [RawRecord(k, v, 0, i) for i, (k, v) in enumerate(records)], now_ms=now_ms()
    )
    expected_alerts = {a.alert_id: a for a in expected.alerts}
    assert len(expected_alerts) > 100
    credit_latest = {s.key: s for s in expected.latest}
    assert len(credit_latest) == REVIEWS

    env = {
        "RISKSTREAM_KAFKA_BOOTSTRAP": broker.bootstrap,
        "RISKSTREAM_REDIS_URL": redis_url,
        "RISKSTREAM_PARTITIONS": "4",
        "RISKSTREAM_APP_ID": "credit-e2e",
        "RISKSTREAM_ANOMALY_ENABLED": "false",
        "RISKSTREAM_METRICS_PORT": "0",
        "RISKSTREAM_DATA_DIR": str(tmp_path / "worker-data"),
    }
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.start()
    client = redis.Redis.from_url(redis_url)
    try:
        produce(broker.bootstrap, "transactions", records[:800])
        wait_until(lambda: client.xlen("riskstream:alerts") >= 20, 90, "first credit alerts")
        worker.kill()  # crash: the uncommitted batches are replayed, explanations come from the cache
        worker.start()
        produce(broker.bootstrap, "transactions", records[800:])
        wait_until(
            lambda: all(int(client.hget(key, "reviews") or 0) == 1 for key in credit_latest),
            120,
            "every review scored",
        )
        wait_until(
            lambda: client.xlen("riskstream:alerts") >= len(expected_alerts),
            60,
            "every credit alert",
        )
        time.sleep(2)  # let a stray duplicate arrive before counting

        for key, state in credit_latest.items():
            assert redis_hash(client, key) == dict(state.fields)

        entries = alert_entries(client)
        ids = [e["alert_id"] for e in entries]
        assert len(ids) == len(set(ids)), "an alert was written twice"
        assert set(ids) == set(expected_alerts), "an alert was lost or invented"

        model = CreditModel(COMMITTED)
        platt = model.card.extra["calibration"]["params"]
        for entry in entries:
            attributions = orjson.loads(entry["attributions"])
            assert len(attributions) == 5
            sizes = [abs(a["shap"]) for a in attributions]
            assert sizes == sorted(sizes, reverse=True)
            assert set(attributions[0]) == {"feature", "value", "shap"}
            explanation = Explanation.from_json(
                client.get(ALERT_KEY.format(alert_id=entry["alert_id"]))
            )
            assert (
                abs(explanation.base + sum(explanation.shap) - explanation.output)
                <= ADDITIVITY_TOLERANCE
            )
            details = orjson.loads(entry["details"])
            assert expit(platt["a"] * explanation.output + platt["b"]) == pytest.approx(
                details["pd"], abs=1e-9
            )
            top = explanation.top(5)
            assert [a["feature"] for a in attributions] == [t.feature for t in top]
        assert worker.errors() == [], worker.errors()
    finally:
        worker.kill()
        client.close()
