"""Publishing to Kafka with kafka-python 3.x: every message acknowledged or counted as failed.

:class:`KafkaSink` wraps a :class:`kafka.KafkaProducer` kept idempotent with
``acks=all`` (the kafka-python 3.x defaults, set explicitly here), so a retried batch
is never written twice and an acknowledged message is on every in-sync replica.
Messages of one key go to one partition in send order (the default partitioner hashes
the key; idempotence keeps order across retries).

Nothing is lost silently: each send registers a success and a failure callback; a
send that raises (no metadata within ``max_block_ms``, a message too large) counts as
failed too; :meth:`KafkaSink.close` flushes and counts any message still unacknowledged
after ``flush_timeout_s`` as failed. The first error's text is kept for the report.

:func:`publish` is the whole job: create the topic and its ``.dlq`` if missing
(:func:`engine.kafka.topics.ensure_topics`), send paced with a progress bar, flush, report.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterable
from typing import Any

from engine.config import Settings
from engine.errors import ServiceUnavailableError
from engine.kafka.clients import kafka_python_config
from engine.kafka.topics import ensure_topics
from producers.messages import Message
from producers.run import ProduceReport, send_all

LINGER_MS = 20
"""Wait up to this long to fill a batch: a few ms of latency for many times the throughput."""
BATCH_SIZE = 512 * 1024
"""Bytes per partition batch (kafka-python's default, 16 KiB, caps throughput)."""


def _kafka() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import kafka
        import kafka.errors
    return kafka


class KafkaSink:
    """A kafka-python producer that counts deliveries (see the module docstring).

    Parameters
    ----------
    settings
        Bootstrap servers and security (``RISKSTREAM_KAFKA_*``).
    topic
        Topic every message goes to.
    linger_ms, batch_size
        Batching; the defaults favour throughput.
    flush_timeout_s
        How long :meth:`close` waits for outstanding acknowledgements.
    producer_options
        Further :class:`kafka.KafkaProducer` options (e.g. ``compression_type="gzip"``).

    Raises
    ------
    ServiceUnavailableError
        If no broker answers within the bootstrap timeout.
    """

    def __init__(
        self,
        settings: Settings,
        topic: str,
        *,
        linger_ms: int = LINGER_MS,
        batch_size: int = BATCH_SIZE,
        flush_timeout_s: float = 60.0,
        **producer_options: Any,
    ) -> None:
        kafka = _kafka()
        self.topic = topic
        self.flush_timeout_s = flush_timeout_s
        options: dict[str, Any] = {
            **kafka_python_config(settings),
            "client_id": f"{settings.topology.app_id}-producer",
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": linger_ms,
            "batch_size": batch_size,
            "max_block_ms": 30_000,
            "metrics_enabled": False,
            **producer_options,
        }
        try:
            self._producer = kafka.KafkaProducer(**options)
        except kafka.errors.KafkaError as exc:
            raise ServiceUnavailableError(
                f"cannot reach Kafka at {settings.kafka.bootstrap}: {exc}"
            ) from None
        self._errors = kafka.errors
        self._lock = threading.Lock()
        self._submitted = 0
        self._acked = 0
        self._send_failed = 0
        self._async_failed = 0
        self._unacked = 0
        self._first_error: str | None = None
        self._closed = False

    # --- callbacks (run on the producer's I/O thread, or inline if already done) --------

    def _on_success(self, _metadata: Any) -> None:
        with self._lock:
            self._acked += 1

    def _on_error(self, exc: BaseException) -> None:
        with self._lock:
            self._async_failed += 1
            self._note(f"{type(exc).__name__}: {exc}")

    def _note(self, error: str) -> None:
        if self._first_error is None:
            self._first_error = error

    # --- sink -----------------------------------------------------------------------------

    def send(self, message: Message) -> None:
        """Queue one message (blocks only while the producer's buffer is full)."""
        try:
            future = self._producer.send(self.topic, key=message.key, value=message.value)
        except self._errors.KafkaError as exc:
            with self._lock:
                self._send_failed += 1
                self._note(f"{type(exc).__name__}: {exc}")
            return
        self._submitted += 1
        future.add_callback(self._on_success)
        future.add_errback(self._on_error)

    def close(self) -> None:
        """Flush, count what is still unacknowledged as failed, close. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._producer.flush(timeout=self.flush_timeout_s)
        except self._errors.KafkaTimeoutError:
            pass
        finally:
            with self._lock:
                self._unacked = self._submitted - self._acked - self._async_failed
                if self._unacked:
                    self._note(
                        f"{self._unacked} message(s) not acknowledged within "
                        f"{self.flush_timeout_s:g} s"
                    )
            self._producer.close(timeout=5)

    @property
    def delivered(self) -> int:
        """Messages acknowledged by the broker so far."""
        with self._lock:
            return self._acked

    @property
    def failed(self) -> int:
        """Sends refused, deliveries failed, and (after :meth:`close`) never acknowledged."""
        with self._lock:
            return self._send_failed + self._async_failed + self._unacked

    @property
    def first_error(self) -> str | None:
        with self._lock:
            return self._first_error


def publish(
    messages: Iterable[Message],
    settings: Settings,
    topic: str,
    *,
    rate: float | None = None,
    speed: float | None = None,
    total: int | None = None,
    progress: bool = False,
    create_topics: bool = True,
    **sink_options: Any,
) -> ProduceReport:
    """Send ``messages`` to ``topic`` and report once all are acknowledged or failed.

    Creates ``topic`` and ``<topic>.dlq`` with ``settings.topology.partitions`` partitions when
    missing. Pacing (``rate`` in events/s or ``speed`` as a multiple of event time) and
    the progress bar are those of :func:`producers.run.send_all`.

    Raises
    ------
    ServiceUnavailableError
        If Kafka cannot be reached. Delivery failures do not raise: they are counted in
        the report's ``failed``.
    """
    if create_topics:
        ensure_topics(settings, [topic, f"{topic}.dlq"])
    sink = KafkaSink(settings, topic, **sink_options)
    return send_all(
        messages, sink, rate=rate, speed=speed, total=total, progress=progress, description=topic
    )
