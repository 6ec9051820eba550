"""Producers the project did not write, mixed on one topic: nothing is silently dropped.

kafka-python (the project's producer) and the Java client place keys with murmur2;
librdkafka's clients (kcat, confluent-kafka) default to CRC32 (``consistent_random``).
The same symbol then arrives on two partitions. Its state lives with the first one, so
ticks on the other can be neither ordered nor applied; they must be dead-lettered as
``wrong_partition``, never skipped as replays of offsets they have nothing to do with.
Every record produced must end up applied (counted in the symbol's ``n_ticks``) or in
``prices.dlq``; both are read back with clients the project did not write (redis-cli,
kcat, confluent-kafka).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, Producer

from engine.faults.harness import WorkerProcess, committed_lag, produce, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

PARTITIONS = 4
SYMBOLS = [f"S{i:02d}" for i in range(24)]
PER_CLIENT = 40  # ticks per symbol from each client


def ticks(client: int) -> list[tuple[bytes, bytes]]:
    """Ticks ``PER_CLIENT * client ..`` of every symbol, a minute apart, unique event ids."""
    out = []
    for n in range(PER_CLIENT * client, PER_CLIENT * (client + 1)):
        for k, symbol in enumerate(SYMBOLS):
            doc = {
                "symbol": symbol,
                "ts": 1_600_000_000_000 + n * 60_000,
                "price": 100.0 + k + 0.01 * (n % 7),
                "event_id": f"{symbol}-{n}",
            }
            out.append((symbol.encode(), orjson.dumps(doc)))
    return out


def confluent_produce(bootstrap: str, records: list[tuple[bytes, bytes]]) -> None:
    """confluent-kafka with librdkafka's default partitioner (CRC32)."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    failed: list[object] = []
    for key, value in records:
        producer.produce(
            "prices", value=value, key=key, on_delivery=lambda e, m: e and failed.append(e)
        )
    assert producer.flush(60) == 0 and failed == []


def kcat_produce(bootstrap: str, records: list[tuple[bytes, bytes]], workdir: Path) -> None:
    """kcat, one ``key<TAB>value`` line per record, its default partitioner."""
    lines = workdir / "kcat-input.txt"
    lines.write_bytes(b"".join(k + b"\t" + v + b"\n" for k, v in records))
    subprocess.run(
        ["kcat", "-P", "-b", bootstrap, "-t", "prices", "-K", "\t", "-l", str(lines)],
        check=True,
        timeout=60,
    )


def dlq_reasons_by_kcat(bootstrap: str) -> Counter[str]:
    """Reasons of every dead letter, read with kcat (headers: riskstream.reason)."""
    out = subprocess.run(
        ["kcat", "-C", "-b", bootstrap, "-t", "prices.dlq", "-e", "-q", "-f", "%h\n"],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout.decode()
    reasons: Counter[str] = Counter()
    for line in filter(None, out.splitlines()):
        headers = dict(h.split("=", 1) for h in line.split(",") if "=" in h)
        reasons[headers.get("riskstream.reason", "?")] += 1
    return reasons


def dlq_count_by_confluent(bootstrap: str, expected: int) -> int:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "any-client-check",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe(["prices.dlq"])
    seen, deadline = 0, time.monotonic() + 60
    try:
        while seen < expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                seen += 1
    finally:
        consumer.close()
    return seen


def n_ticks_by_redis_cli(redis_url: str) -> int:
    """Sum of ``n_ticks`` over every symbol's hash, read with redis-cli."""
    total = 0
    for symbol in SYMBOLS:
        out = subprocess.run(
            ["redis-cli", "-u", redis_url, "HGET", f"riskstream:risk:{symbol}", "n_ticks"],
            check=True,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        total += int(out or 0)
    return total


def test_kcat_confluent_and_kafka_python_mixed_lose_nothing(
    fresh_kafka,  # type: ignore[no-untyped-def]
    redis_url: str,
    tmp_path: Path,
) -> None:
    for tool in ("kcat", "redis-cli"):
        assert shutil.which(tool), f"{tool} is missing: deploy/test.sh installs it"
    broker = fresh_kafka()
    env = {
        "RISKSTREAM_KAFKA_BOOTSTRAP": broker.bootstrap,
        "RISKSTREAM_REDIS_URL": redis_url,
        "RISKSTREAM_PARTITIONS": str(PARTITIONS),
        "RISKSTREAM_APP_ID": "any-client",
        "RISKSTREAM_METRICS_PORT": "0",
        "RISKSTREAM_VOL_MODELS": "ewma",
        "RISKSTREAM_VAR_METHOD": "ewma-mix",
        "RISKSTREAM_CREDIT_ENABLED": "0",
        "RISKSTREAM_DATA_DIR": str(tmp_path / "worker-data"),
    }
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.start()  # creates the topics
    try:
        sent = produce(broker.bootstrap, "prices", ticks(0))  # murmur2: every symbol's home
        batches = (ticks(1), ticks(2))
        confluent_produce(broker.bootstrap, batches[0])
        kcat_produce(broker.bootstrap, batches[1], tmp_path)
        sent += sum(map(len, batches))

        def accounted() -> int:
            return n_ticks_by_redis_cli(redis_url) + sum(
                dlq_reasons_by_kcat(broker.bootstrap).values()
            )

        wait_until(lambda: accounted() >= sent, 120, "every record applied or dead-lettered")
        wait_until(
            lambda: committed_lag(broker.bootstrap, "any-client", "prices") == 0,
            60,
            "the worker to commit everything",
        )
        applied, reasons = n_ticks_by_redis_cli(redis_url), dlq_reasons_by_kcat(broker.bootstrap)
        print(f"sent {sent}: applied {applied}, dead-lettered {dict(reasons)}")
        assert applied + sum(reasons.values()) == sent, (applied, reasons, sent)
        assert set(reasons) == {"wrong_partition"}, reasons
        # Some symbols hash alike under CRC32 and murmur2 (applied), the others do not.
        assert 0 < reasons["wrong_partition"] < 2 * PER_CLIENT * len(SYMBOLS)
        assert dlq_count_by_confluent(broker.bootstrap, sum(reasons.values())) == sum(
            reasons.values()
        )
        assert "refused as wrong_partition" in worker.log_since(0)
    finally:
        worker.stop()
