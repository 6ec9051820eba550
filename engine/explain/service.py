"""The explanation service: SHAP attributions for alerts, off the hot path, cached in Redis.

How a model's alerts get explained (the interface for any tree model, credit or anomaly):

1. register the model once: ``service.register(ExplainableModel(name, version, features,
   TreeShap(...)))``; ``name`` and ``version`` are what its alerts carry in ``model`` and
   ``model_version``;
2. its stage attaches ``explain_input=ExplainInput(vector)`` to each alert it raises
   (``vector``: the model's encoded float64 input, in the model's feature order);
3. the adapter calls ``await service.enrich(alerts)`` before writing them: alerts come
   back with ``attributions`` (the top ``top_k`` by absolute SHAP value, largest first,
   as the alert contract of docs/contracts.md has them); other alerts pass through unchanged.

What a caller can rely on:

* **off the hot path**: SHAP runs in a thread pool (``workers`` threads; LightGBM's
  TreeSHAP releases the GIL), never in the pipeline's compute step. The worker starts
  ``enrich`` as soon as a micro-batch is computed and only its *writer* awaits it, so the
  next batches are scored meanwhile;
* **bounded**: at most ``max_pending`` alerts wait for explanations; beyond that ``enrich``
  waits for room, and backpressure reaches consumption through the writer's bounded
  queue. Nothing is dropped;
* **never lost**: an explanation failure (model error, Redis down) is logged and counted,
  and the alert is still returned, without attributions;
* **cached**: per model version and feature-vector digest (:mod:`engine.explain.cache`),
  with a TTL; identical vectors within one batch are computed once. The explanation
  behind each alert is stored under ``riskstream:shap:alert:<alert_id>`` *before* the alert
  is returned, so when an alert is visible its full explanation is too. A batch whose
  vectors are all cached costs one Redis round trip (a script reads the entries and
  writes the alerts' records); a miss adds SHAP in the pool and one write;
* **checked**: every computed explanation is tested for additivity
  (``|base + sum(shap) - output| <= 1e-6``); a violation is counted and logged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from redis.exceptions import RedisError

from engine.alerts import Alert
from engine.config import Settings
from engine.explain.cache import (
    ALERT_KEY,
    IMPORTANCE_KEY,
    LOOKUP_SCRIPT,
    Explanation,
    alert_record,
    record_prefix,
    shap_key,
)
from engine.explain.metrics import ExplainMetrics
from engine.explain.tree import ADDITIVITY_TOLERANCE, TreeShap

log = logging.getLogger(__name__)

_REDIS_ERRORS = (RedisError, OSError)


@dataclass(frozen=True, slots=True)
class ExplainInput:
    """What an alert carries for its explanation: the model's encoded input vector (float64)."""

    vector: np.ndarray
    display: tuple[float | str | None, ...] | None = None
    """Readable values of the vector (category text instead of codes); default: the numbers."""


@dataclass
class ExplainableModel:
    """A model whose alerts the service explains (see the module docstring)."""

    name: str
    version: str
    features: tuple[str, ...]
    shap: TreeShap
    display: Callable[[np.ndarray], Sequence[float | str | None]] | None = None
    importance: list[dict[str, Any]] = field(default_factory=list)
    """Global importance ``[{"feature", "mean_abs_shap"}, ...]``, published to Redis."""

    def readable(self, item: ExplainInput) -> tuple[float | str | None, ...]:
        if item.display is not None:
            return tuple(item.display)
        if self.display is not None:
            return tuple(self.display(item.vector))
        return tuple(None if np.isnan(v) else float(v) for v in item.vector)

    def explain(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(shap, base, output, additivity error)`` for a matrix of input vectors."""
        a = self.shap.explain(vectors)
        return a.values, a.base, a.output, a.additivity_error


class ExplanationService:
    """SHAP for alerts, bounded and cached; see the module docstring.

    ``client`` is an asyncio Redis client (``None``: no cache, every explanation computed).
    """

    def __init__(
        self,
        client: Any = None,
        *,
        metrics: ExplainMetrics | None = None,
        workers: int = 1,
        max_pending: int = 10_000,
        top_k: int = 5,
        ttl_s: int = 7 * 86400,
        tolerance: float = ADDITIVITY_TOLERANCE,
    ) -> None:
        if workers < 1 or max_pending < 1 or top_k < 1:
            raise ValueError("workers, max_pending and top_k must be at least 1")
        self.client = client
        self.metrics = metrics if metrics is not None else ExplainMetrics()
        self.top_k = top_k
        self.ttl_s = ttl_s
        self.tolerance = tolerance
        self.max_pending = max_pending
        self._models: dict[tuple[str, str], ExplainableModel] = {}
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="shap")
        self._pending = 0
        self._room: asyncio.Condition | None = None
        self._lookup_script: Any = None

    # --- models -------------------------------------------------------------------------

    def register(self, model: ExplainableModel) -> None:
        self._models[(model.name, model.version)] = model

    @property
    def models(self) -> list[ExplainableModel]:
        return list(self._models.values())

    def explains(self, alert: Alert) -> bool:
        """Whether ``alert`` asks for an explanation this service can give."""
        return (
            alert.explain_input is not None
            and alert.attributions is None
            and (alert.model, alert.model_version) in self._models
        )

    # --- the bounded queue --------------------------------------------------------------

    async def _reserve(self, n: int) -> None:
        if self._room is None:
            self._room = asyncio.Condition()
        async with self._room:
            # An oversized batch still goes through once nothing else is pending.
            await self._room.wait_for(
                lambda: self._pending == 0 or self._pending + n <= self.max_pending
            )
            self._pending += n
            self.metrics.pending.set(self._pending)

    async def _release(self, n: int) -> None:
        assert self._room is not None
        async with self._room:
            self._pending -= n
            self.metrics.pending.set(self._pending)
            self._room.notify_all()

    @property
    def pending(self) -> int:
        return self._pending

    # --- explaining ---------------------------------------------------------------------

    def start(self, alerts: Sequence[Alert]) -> asyncio.Task[list[Alert]] | None:
        """Begin :meth:`enrich` in the background; ``None`` when no alert needs explaining."""
        if not any(self.explains(alert) for alert in alerts):
            return None
        return asyncio.ensure_future(self.enrich(alerts))

    async def enrich(self, alerts: Sequence[Alert]) -> list[Alert]:
        """``alerts`` with attributions attached where the service explains them, in order."""
        todo = [i for i, alert in enumerate(alerts) if self.explains(alert)]
        if not todo:
            return list(alerts)
        await self._reserve(len(todo))
        try:
            return await self._enrich(list(alerts), todo)
        finally:
            await self._release(len(todo))

    async def _enrich(self, alerts: list[Alert], todo: list[int]) -> list[Alert]:
        started = time.perf_counter()
        keys = []
        values = []
        prefixes = []
        for i in todo:
            alert = alerts[i]
            model = self._models[(alert.model, alert.model_version)]
            readable = model.readable(alert.explain_input)
            keys.append(shap_key(alert.model, alert.model_version, alert.explain_input.vector))
            values.append(readable)
            prefixes.append(record_prefix(model.name, model.version, model.features, readable))
        # One round trip: the cached entries, and the records of the alerts they explain.
        cached = await self._lookup(keys, [alerts[i].alert_id for i in todo], prefixes)
        cache_done = time.perf_counter()
        # One computation per distinct missing vector, grouped by model.
        missing: dict[str, int] = {}
        for n, (key, hit) in enumerate(zip(keys, cached, strict=True)):
            if hit is None and key not in missing:
                missing[key] = n
        computed: dict[str, bytes] = {}
        if missing:
            computed = await self._compute([(key, alerts[todo[n]]) for key, n in missing.items()])
        out_of_cache = len(todo) - len(missing)
        self.metrics.count(out_of_cache, len(missing))
        records: list[tuple[str, bytes]] = []
        for n, i in enumerate(todo):
            alert = alerts[i]
            entry = cached[n]
            if entry is None:
                entry = computed.get(keys[n])
                if entry is None:  # its computation failed: written without attributions
                    alerts[i] = dataclasses.replace(alert, explain_input=None)
                    continue
                records.append(
                    (ALERT_KEY.format(alert_id=alert.alert_id), alert_record(prefixes[n], entry))
                )
            model = self._models[(alert.model, alert.model_version)]
            explanation = Explanation.from_cache_entry(
                entry,
                model=model.name,
                model_version=model.version,
                features=model.features,
                values=values[n],
            )
            alerts[i] = dataclasses.replace(
                alert, attributions=explanation.top(self.top_k), explain_input=None
            )
        await self._write([*computed.items(), *records])
        done = time.perf_counter()
        for hit in cached:
            if hit is not None:
                self.metrics.seconds.labels("cache").observe(cache_done - started)
            else:
                self.metrics.seconds.labels("computed").observe(done - started)
        return alerts

    async def _compute(self, items: list[tuple[str, Alert]]) -> dict[str, bytes]:
        """Cache entries of the given (key, alert) pairs; SHAP in the pool, one call per model."""
        by_model: dict[tuple[str, str], list[tuple[str, Alert]]] = {}
        for key, alert in items:
            by_model.setdefault((alert.model, alert.model_version), []).append((key, alert))
        loop = asyncio.get_running_loop()
        entries: dict[str, bytes] = {}
        for model_key, group in by_model.items():
            model = self._models[model_key]
            X = np.vstack([alert.explain_input.vector for _, alert in group])
            try:
                values, base, output, error = await loop.run_in_executor(
                    self._pool, model.explain, X
                )
            except Exception:
                self.metrics.errors.labels("compute").inc(len(group))
                log.exception("SHAP failed for %d alert(s) of %s %s", len(group), *model_key)
                continue
            bad = error > self.tolerance
            if bad.any():
                self.metrics.additivity.inc(int(bad.sum()))
                log.error(
                    "SHAP additivity violated for %s %s: %d row(s), worst %.3g (> %g)",
                    *model_key,
                    int(bad.sum()),
                    float(error.max()),
                    self.tolerance,
                )
            for row, (key, _) in enumerate(group):
                entries[key] = Explanation(
                    model.name,
                    model.version,
                    model.features,
                    (),
                    tuple(values[row].tolist()),
                    float(base[row]),
                    float(output[row]),
                    model.shap.units,
                ).cache_entry()
        return entries

    async def _lookup(
        self, keys: list[str], alert_ids: list[str], prefixes: list[bytes]
    ) -> list[bytes | None]:
        """Cached entries of ``keys`` (None: absent); Redis writes the hits' alert records."""
        if self.client is None:
            return [None] * len(keys)
        if self._lookup_script is None:
            self._lookup_script = self.client.register_script(LOOKUP_SCRIPT)
        redis_keys: list[str] = []
        for key, alert_id in zip(keys, alert_ids, strict=True):
            redis_keys += (key, ALERT_KEY.format(alert_id=alert_id))
        try:
            return list(await self._lookup_script(keys=redis_keys, args=[self.ttl_s, *prefixes]))
        except _REDIS_ERRORS as exc:
            self.metrics.errors.labels("cache").inc()
            log.warning("SHAP cache read failed (%s); computing instead", exc)
            return [None] * len(keys)

    async def _write(self, items: list[tuple[str, bytes]]) -> None:
        if self.client is None or not items:
            return
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for key, value in items:
                    pipe.set(key, value, ex=self.ttl_s)
                await pipe.execute()
        except _REDIS_ERRORS as exc:
            self.metrics.errors.labels("cache").inc()
            log.warning("SHAP cache write failed (%s); alerts keep their attributions", exc)

    async def publish_importance(self) -> None:
        """Write each registered model's global importance (mean |SHAP|) to its Redis hash."""
        if self.client is None:
            return
        for model in self._models.values():
            if not model.importance:
                continue
            key = IMPORTANCE_KEY.format(model=model.name, version=model.version)
            try:
                await self.client.hset(
                    key,
                    mapping={
                        d["feature"]: repr(float(d["mean_abs_shap"])) for d in model.importance
                    },
                )
            except _REDIS_ERRORS as exc:
                self.metrics.errors.labels("cache").inc()
                log.warning("could not publish the global importance of %s: %s", model.name, exc)

    async def close(self) -> None:
        """Stop the thread pool (explanations in flight finish; queued ones are dropped)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self.client is not None:
            await self.client.aclose()


def explanation_service(
    settings: Settings, stages: Sequence[Any], registry: Any = None
) -> ExplanationService | None:
    """The service for a worker: every explainable model of ``stages``, Redis from the settings.

    ``None`` when no stage has an explainable model (``explainable_models()``). Without
    ``RISKSTREAM_REDIS_URL`` explanations are computed but not cached.
    """
    models = [m for stage in stages for m in getattr(stage, "explainable_models", list)()]
    if not models:
        return None
    from engine.sinks.redis import client_from_settings

    service = ExplanationService(
        client_from_settings(settings) if settings.redis.dsn else None,
        metrics=ExplainMetrics(registry),
        workers=settings.shap.workers,
        max_pending=settings.shap.max_pending,
        top_k=settings.shap.top_k,
        ttl_s=settings.shap.cache_ttl_s,
    )
    for model in models:
        service.register(model)
    return service
