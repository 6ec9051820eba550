"""Prometheus metrics of the explanation service, on the worker's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_SECONDS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0)


class ExplainMetrics:
    """SHAP cache hits and misses (and their ratio), latency, queue depth, failures."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry if registry is not None else CollectorRegistry()
        self.registry = r
        self.requests = Counter(
            "riskstream_shap_cache_requests_total",
            "Alert explanations requested, by result: 'hit' (read from the Redis cache, or "
            "shared with an identical vector of the same batch) or 'miss' (computed).",
            ["result"],
            registry=r,
        )
        self.hit_ratio = Gauge(
            "riskstream_shap_cache_hit_ratio",
            "Share of alert explanations served without computing SHAP, since the process started.",
            registry=r,
        )
        self.seconds = Histogram(
            "riskstream_shap_explanation_seconds",
            "From an alert's explanation being requested to its attributions attached, by source "
            "('cache' or 'computed').",
            ["source"],
            buckets=_SECONDS,
            registry=r,
        )
        self.pending = Gauge(
            "riskstream_shap_pending",
            "Alerts waiting for their explanation (bounded by RISKSTREAM_SHAP_MAX_PENDING).",
            registry=r,
        )
        self.errors = Counter(
            "riskstream_shap_errors_total",
            "Explanation failures by stage ('cache' read/write, 'compute'); an alert whose "
            "explanation failed is written without attributions.",
            ["stage"],
            registry=r,
        )
        self.additivity = Counter(
            "riskstream_shap_additivity_violations_total",
            "Explanations whose attributions plus base value missed the model output by more "
            "than the tolerance (1e-6).",
            registry=r,
        )
        self._hits = 0
        self._misses = 0

    def count(self, hits: int, misses: int) -> None:
        if hits:
            self.requests.labels("hit").inc(hits)
        if misses:
            self.requests.labels("miss").inc(misses)
        self._hits += hits
        self._misses += misses
        total = self._hits + self._misses
        if total:
            self.hit_ratio.set(self._hits / total)

    @property
    def hits(self) -> int:
        """Explanations served without computing SHAP, since the process started."""
        return self._hits

    @property
    def misses(self) -> int:
        """Explanations computed, since the process started."""
        return self._misses

    @property
    def ratio(self) -> float:
        total = self._hits + self._misses
        return self._hits / total if total else float("nan")
