"""Drive real riskstream processes and read what they wrote: for e2e tests, fault tests, benchmarks.

:class:`WorkerProcess` runs ``riskstream worker`` as a child process (so it can be
SIGTERMed, SIGKILLed or SIGSTOPped like in production). The functions below produce raw
records to Kafka and read back topics, dead letters, Redis hashes and the alert
stream, with bounded waits that fail with a clear message instead of hanging.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

READY_LINE = "[^Worker]: Ready"

#: ERROR lines libraries log for transient, retried conditions; not a worker failure.
#: aiokafka logs the first while a brand-new broker is still creating ``__consumer_offsets``,
#: the second when a node of a cluster answers a metadata request before it has heard of a
#: topic just created through another node (the next refresh finds it).
BENIGN_ERRORS = ("GroupCoordinatorNotAvailableError", "not found in cluster metadata")


class WorkerProcess:
    """One ``riskstream worker`` child process, its log in ``log_path``."""

    def __init__(self, env: Mapping[str, str], log_path: Path, *, name: str = "worker") -> None:
        self.env = {**os.environ, **env}
        self.log_path = Path(log_path)
        self.name = name
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        #: ``time.monotonic()`` when the last start became ready.
        self.ready_at = 0.0

    def start(self, ready_timeout: float = 300.0) -> WorkerProcess:
        """Start and wait until faust reports the worker ready (recovery done, partitions assigned).

        The worker compiles its kernels before it says Ready (:mod:`engine.worker.warmup`):
        a few seconds from numba's cache, a minute or two on a fresh install.
        """
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "worker", "--loglevel", "info"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.starts += 1
        atexit.register(self.kill)  # a crashed test or benchmark must not leave a worker behind
        wait_until(
            lambda: READY_LINE in self.log_since(offset) or not self.running,
            ready_timeout,
            f"{self.name} to become ready",
        )
        if not self.running:
            raise RuntimeError(f"{self.name} exited during start:\n{self.tail()}")
        self.ready_at = time.monotonic()
        return self

    def log_since(self, offset: int) -> str:
        """The log from byte ``offset`` on (``log_path.stat().st_size`` marks a point)."""
        with self.log_path.open("rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait: the batch in flight finishes and offsets are committed."""
        self.terminate()
        return self.wait_exit(timeout)

    def terminate(self) -> None:
        """SIGTERM without waiting (:meth:`wait_exit` waits)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)

    def wait_exit(self, timeout: float = 60.0) -> int:
        """Wait for the exit after :meth:`terminate`; SIGKILL and raise after ``timeout`` s."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(
                f"{self.name} ignored SIGTERM for {timeout}s:\n{self.tail()}"
            ) from None

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing is flushed or committed."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text("utf-8", "replace").splitlines()[-lines:])

    def errors(self) -> list[str]:
        """Log lines at ERROR or CRITICAL, except :data:`BENIGN_ERRORS` (a healthy run has none)."""
        text = self.log_path.read_text("utf-8", "replace") if self.log_path.exists() else ""
        return [
            line
            for line in text.splitlines()
            if ("[ERROR]" in line or "[CRITICAL]" in line)
            and not any(b in line for b in BENIGN_ERRORS)
        ]


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.2
) -> None:
    """Poll ``condition`` until true; :class:`TimeoutError` naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def _kafka() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import kafka
    return kafka


def produce(
    bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes | None]]
) -> int:
    """Send raw ``(key, value)`` pairs in order (kafka-python, idempotent, acks=all); returns the count."""
    kafka = _kafka()
    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, batch_size=256 * 1024)
    futures = [producer.send(topic, key=key, value=value) for key, value in records]
    producer.flush(60)
    for future in futures:
        future.get(30)
    producer.close()
    return len(futures)


@dataclass(frozen=True, slots=True)
class ConsumedRecord:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


def read_topic(
    bootstrap: str, topic: str, *, timeout_s: float = 60.0, **config: Any
) -> list[ConsumedRecord]:
    """Every record in ``topic`` up to its end offsets at the time of the call, in partition order.

    Reads each partition from the beginning to the end offset it had when called, so the
    result never depends on fetch timing; :class:`TimeoutError` if that takes longer
    than ``timeout_s``. ``config`` adds consumer settings (security).
    """
    kafka = _kafka()
    consumer = kafka.KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, **config
    )
    try:
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        tps = [kafka.TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out: dict[int, list[ConsumedRecord]] = {p: [] for p in partitions}
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} took longer than {timeout_s}s")
            for tp, messages in consumer.poll(timeout_ms=500).items():
                out[tp.partition] += [
                    ConsumedRecord(
                        m.partition, m.offset, m.key, m.value, {k: v for k, v in (m.headers or [])}
                    )
                    for m in messages
                    if m.offset < ends[tp]
                ]
        return [record for p in partitions for record in out[p]]
    finally:
        consumer.close()


def redis_hash(client: Any, key: str) -> dict[str, str]:
    """A Redis hash as text."""
    return {k.decode(): v.decode() for k, v in client.hgetall(key).items()}


def alert_entries(client: Any, stream: str = "riskstream:alerts") -> list[dict[str, str]]:
    """Every entry of the alert stream, in order, as text fields."""
    return [
        {k.decode(): v.decode() for k, v in fields.items()} for _, fields in client.xrange(stream)
    ]


def committed_lag(bootstrap: str, group: str, topic: str) -> int:
    """Records of ``topic`` beyond the consumer group's committed offsets (0: all committed)."""
    kafka = _kafka()
    consumer = kafka.KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [kafka.TopicPartition(topic, p) for p in partitions]
        ends = consumer.end_offsets(tps)
        return sum(ends[tp] - (consumer.committed(tp) or 0) for tp in tps)
    finally:
        consumer.close()
