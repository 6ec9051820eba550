"""Prometheus metrics of the worker and the embedded runner.

Names follow Prometheus conventions: ``riskstream_`` prefix, base units (seconds),
``_total`` on counters, ``_info`` gauges of value 1 for versions. Each :class:`Metrics`
owns a registry, so tests and several runners in one process do not collide;
:func:`serve` exposes one on ``RISKSTREAM_METRICS_HOST:RISKSTREAM_METRICS_PORT``
(loopback by default). docs/operations/monitoring.md lists every metric; the dashboards of
``deploy/grafana`` and the rules of ``deploy/prometheus`` are built on them.

Hooks for add-on models (anomaly detectors, deep models, credit):

* :meth:`Metrics.describe` publishes ``riskstream_model_info`` for the book's models and
  for every stage (a stage may define ``model_versions()`` returning
  ``(kind, model, version)`` triples; otherwise its ``detector`` or ``model`` attribute
  with ``name`` and ``version`` is used) and starts the counters of known labels at 0;
* :func:`instrument_stages` times every stage's ``run`` per micro-batch into
  ``riskstream_model_inference_seconds{model=<stage name>}``; code that runs a model
  elsewhere observes ``metrics.model_inference.labels(<model>)`` itself;
* anomaly alerts (kind ``anomaly``, model ``anomaly_<detector>``) are counted in
  ``riskstream_anomaly_alerts_total{topic,detector}``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from engine.boundary.records import Reason
from engine.config import level_label
from engine.core import PriceRiskBook

if TYPE_CHECKING:  # metrics describe pipelines, they never import them (no import circle)
    from engine.pipeline import (
        PriceOutcome,
        PricePipeline,
        TransactionOutcome,
        TransactionPipeline,
    )

log = logging.getLogger(__name__)

_ZONE_CODES = {"": -1, "green": 0, "amber": 1, "red": 2}
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

#: ``riskstream_fits`` outcomes and the fitter attributes that count them.
FIT_OUTCOMES = (
    ("submitted", "submitted"),
    ("done", "fits"),
    ("timeout", "timeouts"),
    ("waited", "waits"),
    ("deferred", "deferred"),
)


class Metrics:
    """Every metric riskstream exports, on one registry."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        max_symbols: int = 100,
    ) -> None:
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
            "'fetched' (handed to the processing loop), 'processed' (state updated) or "
            "'written' (outputs in Redis). Sampled per fetched chunk.",
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
        self.model_switches = Counter(
            "riskstream_model_switches_total",
            "Changes of the champion's live VaR method, per replaced and new method and reason "
            "(lower_loss, red_zone).",
            ["previous", "live", "reason"],
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
        self.service_up = Gauge(
            "riskstream_service_up",
            "1 while the service (kafka, redis) answers, 0 while the process waits for it.",
            ["service"],
            registry=r,
        )
        self.ready = Gauge(
            "riskstream_ready",
            "1 once the process has started and processes its input; 0 before and on its way out.",
            registry=r,
        )
        self.last_received = Gauge(
            "riskstream_last_event_received_timestamp_seconds",
            "Unix time at which this process last received a record of the topic.",
            ["topic"],
            registry=r,
        )
        self.consumer_lag = Gauge(
            "riskstream_consumer_lag_records",
            "Records of the partition not yet processed: the partition's high watermark (at "
            "the last fetch) minus the offset after the last batch written and acknowledged.",
            ["topic", "partition"],
            registry=r,
        )
        self.zone_symbols = Gauge(
            "riskstream_backtest_zone_symbols",
            "Symbols held by this process whose rolling backtest window is in each Basel "
            "traffic-light zone ('green', 'amber', 'red'; 'none' until the window is full), "
            "per VaR method and level.",
            ["method", "level", "zone"],
            registry=r,
        )
        self.worst_zone = Gauge(
            "riskstream_backtest_worst_zone",
            "Worst traffic-light zone over the symbols held: 0 green, 1 amber, 2 red "
            "(-1 while no symbol has a full window), per VaR method and level.",
            ["method", "level"],
            registry=r,
        )
        self.symbol_volatility = Gauge(
            "riskstream_symbol_volatility",
            "One-step-ahead standard deviation of the symbol's next log return (published "
            "model); the first RISKSTREAM_METRICS_MAX_SYMBOLS symbols seen only.",
            ["symbol"],
            registry=r,
        )
        self.symbol_var = Gauge(
            "riskstream_symbol_var",
            "Value-at-Risk of the symbol's next log return (positive loss, log-return units), "
            "per confidence level; same symbols as riskstream_symbol_volatility.",
            ["symbol", "level"],
            registry=r,
        )
        self.symbol_es = Gauge(
            "riskstream_symbol_es",
            "Expected shortfall of the symbol's next log return (positive loss, log-return "
            "units); same symbols as riskstream_symbol_volatility.",
            ["symbol", "level"],
            registry=r,
        )
        self.anomaly_alerts = Counter(
            "riskstream_anomaly_alerts_total",
            "Anomaly alerts raised, per input topic and detector (before de-duplication).",
            ["topic", "detector"],
            registry=r,
        )
        self.model_info = Gauge(
            "riskstream_model_info",
            "Models served by this process (value 1): kind (volatility, var, anomaly, credit, "
            "...), model name and version.",
            ["kind", "model", "version"],
            registry=r,
        )
        self.fit_rejections = Gauge(
            "riskstream_fit_rejections",
            "Volatility-model fits rejected by validation in this process, per model and "
            "rule (engine/core/volatility/validation.py); each fell back to the last good "
            "fit or EWMA.",
            ["model", "reason"],
            registry=r,
        )
        self.fits = Gauge(
            "riskstream_fits",
            "Volatility-model fits of this process's fit pool: submitted, done (result taken "
            "by the stream), timeout (not done by RISKSTREAM_FIT_TIMEOUT_MS after submission: "
            "rejected as fit_timeout), waited (the stream waited for it), deferred (due and "
            "not done, so it took effect at a later switch point: RISKSTREAM_LATE_FITS=defer).",
            ["outcome"],
            registry=r,
        )
        self.model_inference = Histogram(
            "riskstream_model_inference_seconds",
            "Wall time of one model stage over one micro-batch (features and inference).",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.max_symbols = max_symbols
        #: Per shown symbol, its gauges' labelled children (a ``labels()`` lookup per
        #: value per tick cost about a sixth of a small batch).
        self._symbols_shown: dict[str, _SymbolGauges] = {}
        self._zone_codes: dict[tuple[str, float], np.ndarray] = {}
        # Labelled children looked up once per topic, not once per batch.
        self._per_topic: dict[str, tuple] = {}

    @classmethod
    def from_settings(cls, settings: Any, registry: CollectorRegistry | None = None) -> Metrics:
        return cls(registry, max_symbols=settings.operations.metrics_max_symbols)

    def describe(
        self,
        prices: PricePipeline | None = None,
        transactions: TransactionPipeline | None = None,
    ) -> None:
        """Publish the models served and start every known label combination at 0.

        Counters that exist from the start make ``rate()`` answer 0 instead of nothing, so
        dashboards and alert rules see a quiet stream as quiet, not as missing.
        """
        for topic, pipeline in (("prices", prices), ("transactions", transactions)):
            if pipeline is None:
                continue
            self.events_in.labels(topic)
            self.last_received.labels(topic)
            for outcome in ("accepted", "rejected", "replayed"):
                self.events_processed.labels(topic, outcome)
            for reason in Reason:
                self.dead_letters.labels(topic, reason.value)
            kinds: list[str] = []
            for kind, model, version in models_of(pipeline):
                self.model_info.labels(kind, model, version).set(1)
                if kind == "anomaly":
                    self.anomaly_alerts.labels(topic, model)
                    kinds.append("anomaly")
            for stage in pipeline.stages:
                self.model_inference.labels(stage.name)
                kinds += getattr(stage, "alert_kinds", ())
            if isinstance(pipeline.book, PriceRiskBook):
                kinds += ["var_breach", "backtest"]
            for kind in kinds:
                for severity in ("warning", "critical"):
                    self.alerts.labels(kind, severity)
        if prices is not None:
            book = prices.book
            for method in book.methods:
                for level in book.var_levels:
                    self.breaches.labels(method, level_label(level))
            self.record_book(prices)
        self.redis_errors.labels("write")

    def record_prices(self, outcome: PriceOutcome) -> None:
        """Count one price micro-batch."""
        self._record(
            "prices", outcome.received, outcome.accepted, outcome.replayed, outcome.dead_letters
        )
        self._count_alerts("prices", outcome.alerts)
        for (method, level), count in outcome.breaches.items():
            if count:
                self.breaches.labels(method, level_label(level)).inc(count)
        for switch in outcome.step.switches:
            self.model_switches.labels(switch.previous, switch.live, switch.reason).inc()
        if self.max_symbols:
            self._record_symbols(outcome)

    def _record_symbols(self, outcome: PriceOutcome) -> None:
        shown = self._symbols_shown
        for snap in outcome.snapshots:
            gauges = shown.get(snap.symbol)
            if gauges is None:
                if len(shown) >= self.max_symbols:
                    continue
                gauges = shown[snap.symbol] = _SymbolGauges(self, snap.symbol)
            if not math.isnan(snap.sigma):
                gauges.volatility().set(snap.sigma)
            for level, value in snap.var.items():
                if not math.isnan(value):
                    gauges.var(level).set(value)
            if not math.isnan(snap.es):
                gauges.es(snap.es_level).set(snap.es)

    def record_book(self, pipeline: PricePipeline, slots: np.ndarray | None = None) -> None:
        """Symbols held and traffic-light gauges, after a batch that touched ``slots``.

        Each symbol's zone code is kept per (method, level) and refreshed only for the
        slots of the batch (``None``: every slot), so the cost per batch is that of its
        symbols plus one ``bincount``.
        """
        book = pipeline.book
        n = len(book)
        self.symbols.set(n)
        for name, model in book.vols.items():
            for reason, count in getattr(model, "rejections", {}).items():
                self.fit_rejections.labels(name, reason).set(count)
        for outcome, attribute in FIT_OUTCOMES:
            count = getattr(book.fitter, attribute, None)
            if count is not None:
                self.fits.labels(outcome).set(count)
        slots = np.arange(n) if slots is None else np.unique(slots)
        for method in book.rolling.monitored:
            for level, zones in book.rolling.zones(slots, method).items():
                key = (method, level)
                codes = self._zone_codes.get(key)
                if codes is None or codes.size < n:
                    grown = np.full(max(n, 64), -1, np.int8)
                    if codes is not None:
                        grown[: codes.size] = codes
                    codes = self._zone_codes[key] = grown
                codes[slots] = [_ZONE_CODES[zone] for zone in zones]
                counts = np.bincount(codes[:n] + 1, minlength=4)
                label = level_label(level)
                for zone, count in zip(
                    ("none", "green", "amber", "red"), counts.tolist(), strict=True
                ):
                    self.zone_symbols.labels(method, label, zone).set(count)
                held = np.flatnonzero(counts[1:])
                self.worst_zone.labels(method, label).set(int(held[-1]) if held.size else -1)

    def record_lag(self, topic: str, partition: int, lag: int) -> None:
        """Records of ``topic``/``partition`` beyond the last batch written."""
        self.consumer_lag.labels(topic, str(partition)).set(max(0, lag))

    def forget_partitions(self, tps: Iterable[Any]) -> None:
        """Partitions moved to another worker: drop their lag and the per-symbol gauges."""
        for tp in tps:
            with contextlib.suppress(KeyError):
                self.consumer_lag.remove(tp.topic, str(tp.partition))
        for gauge in (self.symbol_volatility, self.symbol_var, self.symbol_es):
            gauge.clear()
        self._symbols_shown.clear()
        self._zone_codes.clear()  # the books are cleared too: slots are handed out anew

    def _count_alerts(self, topic: str, alerts: Sequence[Any]) -> None:
        for alert in alerts:
            self.alerts.labels(alert.kind, alert.severity).inc()
            if alert.kind == "anomaly":
                self.anomaly_alerts.labels(topic, alert.model.removeprefix("anomaly_")).inc()

    def record_transactions(self, outcome: TransactionOutcome) -> None:
        """Count one transaction micro-batch."""
        self._record(
            "transactions",
            outcome.received,
            outcome.accepted,
            outcome.replayed,
            outcome.dead_letters,
        )
        self._count_alerts("transactions", outcome.alerts)

    def _record(self, topic: str, received: int, accepted: int, replayed: int, dead: list) -> None:
        children = self._per_topic.get(topic)
        if children is None:
            children = self._per_topic[topic] = (
                self.last_received.labels(topic),
                self.events_in.labels(topic),
                self.batch_size.labels(topic),
                self.events_processed.labels(topic, "accepted"),
                self.events_processed.labels(topic, "replayed"),
                self.events_processed.labels(topic, "rejected"),
            )
        last, events_in, batch_size, accepted_c, replayed_c, rejected_c = children
        last.set(time.time())
        events_in.inc(received)
        batch_size.observe(received)
        accepted_c.inc(accepted)
        replayed_c.inc(replayed)
        rejected_c.inc(len(dead))
        for letter in dead:
            self.dead_letters.labels(topic, letter.reason.value).inc()


def models_of(pipeline: PricePipeline | TransactionPipeline) -> Iterator[tuple[str, str, str]]:
    """``(kind, model, version)`` of every model a pipeline serves (see the module docstring)."""
    if isinstance(pipeline.book, PriceRiskBook):
        book = pipeline.book
        for name, vol in book.vols.items():
            yield "volatility", name, str(vol.model_version)
        yield "var", book.model_name, str(book.model_version)
    for stage in pipeline.stages:
        declared = getattr(stage, "model_versions", None)
        if declared is not None:
            yield from ((str(k), str(m), str(v)) for k, m, v in declared())
            continue
        detector = getattr(stage, "detector", None)
        if detector is not None and hasattr(detector, "name"):
            yield "anomaly", str(detector.name), str(getattr(detector, "version", ""))
            continue
        model = getattr(stage, "model", None)
        if model is not None and hasattr(model, "name"):
            yield str(stage.name), str(model.name), str(getattr(model, "version", ""))


class TimedStage:
    """A stage whose ``run`` is timed into ``riskstream_model_inference_seconds``.

    Every other attribute is the wrapped stage's, so the pipeline, the explanation service
    and ``bind_metrics`` see the stage itself.
    """

    def __init__(self, stage: Any, histogram: Any) -> None:
        self._stage = stage
        self._observe = histogram.labels(stage.name).observe

    def run(self, data: Any) -> Any:
        started = time.perf_counter()
        try:
            return self._stage.run(data)
        finally:
            self._observe(time.perf_counter() - started)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stage, name)


def instrument_stages(pipeline: PricePipeline | TransactionPipeline, metrics: Metrics) -> None:
    """Time each stage of ``pipeline`` per micro-batch (idempotent)."""
    pipeline.stages = tuple(
        stage if isinstance(stage, TimedStage) else TimedStage(stage, metrics.model_inference)
        for stage in pipeline.stages
    )


class _SymbolGauges:
    """One symbol's labelled children of the per-symbol gauges, each created when first set
    (so a value never set is not exported as 0)."""

    __slots__ = ("_children", "_metrics", "_symbol")

    def __init__(self, metrics: Metrics, symbol: str) -> None:
        self._metrics = metrics
        self._symbol = symbol
        self._children: dict[tuple[str, float], Any] = {}

    def _child(self, name: str, level: float) -> Any:
        child = self._children.get((name, level))
        if child is None:
            gauge = getattr(self._metrics, name)
            labels = (self._symbol,) if level < 0 else (self._symbol, level_label(level))
            child = self._children[(name, level)] = gauge.labels(*labels)
        return child

    def volatility(self) -> Any:
        return self._child("symbol_volatility", -1.0)

    def var(self, level: float) -> Any:
        return self._child("symbol_var", level)

    def es(self, level: float) -> Any:
        return self._child("symbol_es", level)


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


def _services(metrics: Metrics) -> dict[str, bool]:
    return {s.labels["service"]: s.value == 1 for s in metrics.service_up.collect()[0].samples}


def is_ready(metrics: Metrics) -> bool:
    """Ready: started, processing, and every service it has asked for answers."""
    started = metrics.ready.collect()[0].samples[0].value == 1
    return started and all(_services(metrics).values())


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # one line per scrape is noise
        pass


def health_app(metrics: Metrics) -> Callable[..., Any]:
    """WSGI app: ``/metrics`` (Prometheus), ``/healthz`` (200 while the process serves) and
    ``/readyz`` (200 when :func:`is_ready`, else 503; the body names each service's state)."""
    exposition = make_wsgi_app(metrics.registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "/")
        if path not in ("/healthz", "/readyz"):
            return exposition(environ, start_response)
        ok = path == "/healthz" or is_ready(metrics)
        body = {"ready": is_ready(metrics), "services": _services(metrics)}
        start_response(
            "200 OK" if ok else "503 Service Unavailable",
            [("Content-Type", "application/json")],
        )
        return [json.dumps(body).encode()]

    return app


def serve(metrics: Metrics, host: str, port: int) -> None:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` over HTTP (:func:`health_app`) in a
    daemon thread; port 0 disables the endpoint."""
    if port == 0:
        return
    server = make_server(
        host, port, health_app(metrics), ThreadingWSGIServer, handler_class=_QuietHandler
    )
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("metrics on http://%s:%d/metrics (health: /healthz, /readyz)", host, port)
