"""Prometheus metrics of the worker and the embedded runner.

Names follow Prometheus conventions: ``riskstream_`` prefix, base units (seconds),
``_total`` on counters. Each :class:`Metrics` owns a registry, so tests and several
runners in one process do not collide; :func:`serve` exposes one on
``RISKSTREAM_METRICS_HOST:RISKSTREAM_METRICS_PORT`` (loopback by default).
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, start_http_server

from engine.config import level_label
from engine.pipeline import PriceOutcome, TransactionOutcome

log = logging.getLogger(__name__)

_BATCH_BUCKETS = (1, 10, 100, 500, 1000, 2500, 5000, 10000, 20000, 50000)
_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class Metrics:
    """Every metric riskstream exports, on one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.events_in = Counter(
            "riskstream_events_in_total", "Records received, per topic.", ["topic"], registry=r
        )
        self.events_processed = Counter(
            "riskstream_events_processed_total",
            "Records processed, per topic and outcome (accepted, rejected, replayed).",
            ["topic", "outcome"],
            registry=r,
        )
        self.dead_letters = Counter(
            "riskstream_dead_letters_total",
            "Records dead-lettered, per topic and reason.",
            ["topic", "reason"],
            registry=r,
        )
        self.batch_size = Histogram(
            "riskstream_batch_records",
            "Records per micro-batch.",
            ["topic"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.batch_seconds = Histogram(
            "riskstream_batch_duration_seconds",
            "Wall time to process and write one micro-batch.",
            ["topic"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.event_latency = Histogram(
            "riskstream_event_latency_seconds",
            "From a record's Kafka timestamp (its producer's clock) to the end of a stage: "
            "'processed' (state updated) or 'written' (outputs in Redis). Sampled per batch.",
            ["topic", "stage"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.breaches = Counter(
            "riskstream_var_breaches_total",
            "VaR violations, per method and level.",
            ["method", "level"],
            registry=r,
        )
        self.alerts = Counter(
            "riskstream_alerts_total",
            "Alerts raised, per kind and severity (before de-duplication).",
            ["kind", "severity"],
            registry=r,
        )
        self.alerts_written = Counter(
            "riskstream_alerts_written_total",
            "Alerts appended to the Redis stream (after de-duplication).",
            registry=r,
        )
        self.alerts_deduplicated = Counter(
            "riskstream_alerts_deduplicated_total",
            "Alerts dropped because their id was already written (replays).",
            registry=r,
        )
        self.redis_errors = Counter(
            "riskstream_redis_errors_total",
            "Failed Redis round trips, per operation.",
            ["operation"],
            registry=r,
        )
        self.redis_retries = Counter(
            "riskstream_redis_retries_total",
            "Redis round trips retried after an error.",
            registry=r,
        )
        self.symbols = Gauge(
            "riskstream_symbols", "Symbols held in this process's risk book.", registry=r
        )
        self.customers = Gauge(
            "riskstream_customers", "Customers held in this process's book.", registry=r
        )
        self.build = Info("riskstream_build", "riskstream version and risk model.", registry=r)
        # Labelled children looked up once per topic, not once per batch.
        self._per_topic: dict[str, tuple] = {}

    def record_prices(self, outcome: PriceOutcome) -> None:
        """Count one price micro-batch."""
        self._record(
            "prices", outcome.received, outcome.accepted, outcome.replayed, outcome.dead_letters
        )
        for alert in outcome.alerts:
            self.alerts.labels(alert.kind, alert.severity).inc()
        for (method, level), count in outcome.breaches.items():
            if count:
                self.breaches.labels(method, level_label(level)).inc(count)

    def record_transactions(self, outcome: TransactionOutcome) -> None:
        """Count one transaction micro-batch."""
        self._record(
            "transactions",
            outcome.received,
            outcome.accepted,
            outcome.replayed,
            outcome.dead_letters,
        )
        for alert in outcome.alerts:
            self.alerts.labels(alert.kind, alert.severity).inc()

    def _record(self, topic: str, received: int, accepted: int, replayed: int, dead: list) -> None:
        children = self._per_topic.get(topic)
        if children is None:
            children = self._per_topic[topic] = (
                self.events_in.labels(topic),
                self.batch_size.labels(topic),
                self.events_processed.labels(topic, "accepted"),
                self.events_processed.labels(topic, "replayed"),
                self.events_processed.labels(topic, "rejected"),
            )
        events_in, batch_size, accepted_c, replayed_c, rejected_c = children
        events_in.inc(received)
        batch_size.observe(received)
        accepted_c.inc(accepted)
        replayed_c.inc(replayed)
        rejected_c.inc(len(dead))
        for letter in dead:
            self.dead_letters.labels(topic, letter.reason.value).inc()


def observe_latency(
    histogram: Histogram, chunks: object, now_ms: float, per_chunk: int = 32
) -> None:
    """Observe ``now - record.timestamp`` for an even sample of each chunk's records."""
    for chunk in chunks:  # type: ignore[attr-defined]
        records = chunk.records
        step = max(1, len(records) // per_chunk)
        for record in records[::step]:
            if record.timestamp is not None:
                histogram.observe(max(0.0, (now_ms - record.timestamp) / 1000.0))


def serve(metrics: Metrics, host: str, port: int) -> None:
    """Expose ``metrics`` over HTTP (``/metrics``); port 0 disables the endpoint."""
    if port == 0:
        return
    start_http_server(port, addr=host, registry=metrics.registry)
    log.info("metrics on http://%s:%d/metrics", host, port)
