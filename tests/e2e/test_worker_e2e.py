"""End to end: producers -> real Kafka -> real Faust workers (crashed and restarted) -> real Redis.

The expected result is the embedded pipeline run over the same records in the same
per-key order. The stream must match it exactly: latest risk per symbol, customer
profiles, alert ids (each exactly once), and dead letters with their reasons.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import orjson
import pytest
import redis

from engine.boundary.records import RawRecord
from engine.boundary.schemas import Transaction
from engine.boundary.timeutil import now_ms
from engine.config import Settings
from engine.faults.harness import (
    WorkerProcess,
    alert_entries,
    committed_lag,
    produce,
    read_topic,
    redis_hash,
    wait_until,
)
from engine.pipeline import PricePipeline, TransactionPipeline
from producers.sources import bundled_prices, frame_to_ticks

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

PARTITIONS = 4


def price_input() -> tuple[list[tuple[bytes | None, bytes | None]], Counter[str]]:
    """Bundled S&P 500 and NASDAQ closes with bad records of every kind mixed in."""
    ticks = list(frame_to_ticks(bundled_prices()))
    good = [(t.key, t.to_json()) for t in ticks]
    future = now_ms() + 86_400_000
    bad: list[tuple[int, tuple[bytes | None, bytes | None], str]] = [
        (100, (b"SPX", b"{not json"), "malformed_json"),
        (
            200,
            (b"SPX", b'{"symbol": "SPX", "ts": "2001-01-01T00:00:00Z", "price": NaN}'),
            "non_finite",
        ),
        (
            300,
            (b"SPX", b'{"symbol": "SPX", "ts": "2001-01-01T00:00:00Z", "price": -4}'),
            "non_positive_price",
        ),
        (400, (b"NASDAQ", b'{"symbol": "NASDAQ", "price": 10}'), "missing_field"),
        (
            500,
            (b"SPX", orjson.dumps({"symbol": "SPX", "ts": future, "price": 1.0})),
            "future_timestamp",
        ),
        (600, (b"NDX", b'{"symbol": "SPX", "ts": 1, "price": 1.0}'), "key_mismatch"),
        (700, good[650], "late"),  # an old tick again: older than the symbol's last
        (5001, good[5000], "duplicate"),  # the tick just sent, again
    ]
    records = list(good)
    for position, record, _ in sorted(bad, key=lambda b: b[0], reverse=True):
        records.insert(position, record)
    return records, Counter(reason for _, _, reason in bad)


def transaction_input() -> tuple[list[tuple[bytes | None, bytes | None]], Counter[str]]:
    rng = np.random.default_rng(5)
    start = 1_533_081_600_000  # 2018-08-01
    txs = [
        Transaction(
            f"tx{i}", start + i * 1000, f"c{int(c)}", float(round(a, 2)), terminal_id=f"t{int(t)}"
        )
        for i, (c, a, t) in enumerate(
            zip(
                rng.integers(0, 40, 3000),
                rng.gamma(2, 30, 3000),
                rng.integers(0, 90, 3000),
                strict=True,
            )
        )
    ]
    records = [(t.key, t.to_json()) for t in txs]
    records.insert(
        10, (b"c1", b'{"tx_id": "x", "ts": 1533081600000, "customer_id": "c1", "amount": -2}')
    )
    records.insert(20, records[15])  # duplicate tx_id
    records.insert(30, (b"c2", b"[]"))
    return records, Counter({"negative_amount": 1, "duplicate": 1, "not_an_object": 1})


def expected_outcome(records: list, pipeline: PricePipeline | TransactionPipeline):  # type: ignore[no-untyped-def]
    raw = [RawRecord(k, v, 0, i) for i, (k, v) in enumerate(records)]
    return pipeline.process(raw, now_ms=now_ms())


def test_stream_equals_embedded_run_through_crashes_and_restarts(
    fresh_kafka,
    redis_url: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    broker = fresh_kafka()
    prices, price_reasons = price_input()
    transactions, tx_reasons = transaction_input()
    settings = Settings(partitions=PARTITIONS)
    expected_prices = expected_outcome(prices, PricePipeline.from_settings(settings))
    expected_tx = expected_outcome(transactions, TransactionPipeline.from_settings(settings))
    assert len(expected_prices.alerts) > 100  # enough alerts for loss/duplication to show
    # price alerts (VaR, backtests, anomalies) and transaction anomaly alerts
    expected_alerts = {a.alert_id: a for a in expected_prices.alerts + expected_tx.alerts}

    env = {
        "RISKSTREAM_KAFKA_BOOTSTRAP": broker.bootstrap,
        "RISKSTREAM_REDIS_URL": redis_url,
        "RISKSTREAM_PARTITIONS": str(PARTITIONS),
        "RISKSTREAM_APP_ID": "e2e",
        # exact comparison: wait for every due fit rather than defer it
        "RISKSTREAM_LATE_FITS": "wait",
        "RISKSTREAM_METRICS_PORT": "0",
        "RISKSTREAM_DATA_DIR": str(tmp_path / "worker-data"),
    }
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.start()  # creates the topics

    # Produce at a steady pace in the background while the worker is crashed and restarted.
    produced = threading.Event()

    def paced_produce() -> None:
        chunk = 500
        for i in range(0, max(len(prices), len(transactions)), chunk):
            produce(broker.bootstrap, "prices", prices[i : i + chunk])
            produce(broker.bootstrap, "transactions", transactions[i : i + chunk])
            time.sleep(0.25)
        produced.set()

    producer = threading.Thread(target=paced_produce, daemon=True)
    producer.start()
    client = redis.Redis.from_url(redis_url)
    try:
        wait_until(
            lambda: int(client.hget("riskstream:risk:SPX", "n_ticks") or 0) > 300,
            60,
            "first ticks in Redis",
        )
        worker.kill()  # crash mid-stream: nothing flushed, nothing committed
        worker.start()
        wait_until(
            lambda: int(client.hget("riskstream:risk:SPX", "n_ticks") or 0) > 2000,
            60,
            "progress after crash",
        )
        assert worker.stop() == 0  # graceful restart mid-stream
        worker.start()
        producer.join(120)
        assert produced.is_set()

        final = {s.symbol: s for s in expected_prices.snapshots}
        wait_until(
            lambda: all(
                int(client.hget(f"riskstream:risk:{sym}", "n_ticks") or 0) == snap.n_ticks
                for sym, snap in final.items()
            ),
            90,
            "every tick processed",
        )
        wait_until(
            lambda: client.xlen("riskstream:alerts") >= len(expected_alerts),
            30,
            "every alert",
        )
        customers = {s.customer_id: s for s in expected_tx.snapshots}
        wait_until(
            lambda: all(
                int(client.hget(f"riskstream:customer:{c}", "count") or 0) == s.count
                for c, s in customers.items()
            ),
            60,
            "every transaction processed",
        )
        time.sleep(3)  # let any stray duplicate arrive before we count

        # Latest risk per symbol equals the embedded run, field for field.
        for symbol, snap in final.items():
            assert redis_hash(client, f"riskstream:risk:{symbol}") == snap.fields()
        for customer, snap in customers.items():
            assert redis_hash(client, f"riskstream:customer:{customer}") == snap.fields()

        # Every alert exactly once, through a crash and a restart.
        entries = alert_entries(client)
        ids = [e["alert_id"] for e in entries]
        assert len(ids) == len(set(ids)), "an alert was written twice"
        assert set(ids) == set(expected_alerts), "an alert was lost or invented"

        # Bad records are in the dead-letter topics with their reasons (at-least-once: count distinct).
        for topic, reasons in (("prices.dlq", price_reasons), ("transactions.dlq", tx_reasons)):
            letters = read_topic(broker.bootstrap, topic)
            distinct = {
                (
                    letter.headers["riskstream.source.partition"],
                    letter.headers["riskstream.source.offset"],
                ): letter
                for letter in letters
            }
            assert (
                Counter(
                    letter.headers["riskstream.reason"].decode() for letter in distinct.values()
                )
                == reasons
            )
            assert all(letter.headers["riskstream.detail"] for letter in distinct.values())

        # risk.updates carries the same latest risk.
        updates = read_topic(broker.bootstrap, "risk.updates")
        last = {u.key.decode(): orjson.loads(u.value) for u in updates}
        for symbol, snap in final.items():
            assert last[symbol]["n_ticks"] == snap.n_ticks
            assert last[symbol]["var_99"] == snap.var[0.99]
        # Offsets are committed (faust's commit task, every 2.8 s): nothing left to replay.
        for topic in ("prices", "transactions"):
            wait_until(
                lambda t=topic: committed_lag(broker.bootstrap, "e2e", t) == 0,
                30,
                f"{topic} offsets committed",
            )
        assert worker.errors() == [], worker.errors()
    finally:
        worker.kill()
        client.close()


def test_a_graceful_stop_checkpoints_so_a_restart_replays_nothing(
    fresh_kafka,
    redis_url: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    """SIGTERM writes a final checkpoint: offsets committed, state in the changelog.

    The checkpoint interval is ten minutes, so nothing is committed while the worker
    runs; after a graceful stop everything is, and the restarted worker continues each
    symbol where it stopped instead of replaying from the beginning (which would
    publish every symbol's updates again, from n_ticks 1).
    """
    broker = fresh_kafka()
    prices, _ = price_input()
    first, rest = prices[:3000], prices[3000:]
    settings = Settings(partitions=PARTITIONS)
    expected = expected_outcome(prices, PricePipeline.from_settings(settings))
    halfway = expected_outcome(first, PricePipeline.from_settings(settings))
    env = {
        "RISKSTREAM_KAFKA_BOOTSTRAP": broker.bootstrap,
        "RISKSTREAM_REDIS_URL": redis_url,
        "RISKSTREAM_PARTITIONS": str(PARTITIONS),
        "RISKSTREAM_APP_ID": "e2e-stop",
        # exact comparison: wait for every due fit rather than defer it
        "RISKSTREAM_LATE_FITS": "wait",
        "RISKSTREAM_METRICS_PORT": "0",
        "RISKSTREAM_CHECKPOINT_MS": "600000",
        "RISKSTREAM_DATA_DIR": str(tmp_path / "worker-data"),
    }
    worker = WorkerProcess(env, tmp_path / "worker.log")
    client = redis.Redis.from_url(redis_url)

    def caught_up(snapshots) -> bool:  # type: ignore[no-untyped-def]
        return all(
            int(client.hget(f"riskstream:risk:{s.symbol}", "n_ticks") or 0) == s.n_ticks
            for s in snapshots
        )

    try:
        worker.start()
        produce(broker.bootstrap, "prices", first)
        wait_until(lambda: caught_up(halfway.snapshots), 60, "the first 3,000 records")
        assert committed_lag(broker.bootstrap, "e2e-stop", "prices") == len(first)
        assert worker.stop() == 0
        assert committed_lag(broker.bootstrap, "e2e-stop", "prices") == 0

        worker.start()
        produce(broker.bootstrap, "prices", rest)
        wait_until(lambda: caught_up(expected.snapshots), 60, "every record")
        assert worker.stop() == 0
        updates: dict[str, list[int]] = {}
        for update in read_topic(broker.bootstrap, "risk.updates"):
            updates.setdefault(update.key.decode(), []).append(
                orjson.loads(update.value)["n_ticks"]
            )
        for symbol, counts in updates.items():
            assert counts == sorted(set(counts)), f"{symbol}'s updates were published again"
        assert {s: c[-1] for s, c in updates.items()} == {
            s.symbol: s.n_ticks for s in expected.snapshots
        }
        assert worker.errors() == [], worker.errors()
    finally:
        worker.kill()
        client.close()
