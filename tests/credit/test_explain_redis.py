"""The explanation cache in a real Redis: misses then hits, TTLs, per-alert records, metrics."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
import redis

from engine.credit.model import CreditModel
from engine.explain import Explanation
from engine.explain.cache import ALERT_KEY, IMPORTANCE_KEY, shap_key
from engine.explain.metrics import ExplainMetrics
from engine.explain.tree import ADDITIVITY_TOLERANCE
from engine.services.ports import free_port

from .helpers import alert_for, service_on

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def X(model: CreditModel, taiwan: Any) -> np.ndarray:
    return model.card.encode_frame(taiwan.head(50))


def test_miss_then_hit_with_ttl_and_alert_records(
    redis_url: str, model: CreditModel, X: np.ndarray
) -> None:
    metrics = ExplainMetrics()

    async def run() -> tuple[list[Any], list[Any]]:
        service = service_on(redis_url, model, metrics=metrics, ttl_s=600)
        try:
            first = await service.enrich([alert_for(model, X[0], 1), alert_for(model, X[1], 2)])
            again = await service.enrich([alert_for(model, X[0], 3), alert_for(model, X[1], 4)])
        finally:
            await service.close()
        return first, again

    first, again = asyncio.run(run())
    assert metrics.requests.labels("miss")._value.get() == 2
    assert metrics.requests.labels("hit")._value.get() == 2
    assert metrics.hit_ratio._value.get() == 0.5
    assert [a.attributions for a in first] == [a.attributions for a in again]
    client = redis.Redis.from_url(redis_url)
    try:
        key = shap_key(model.name, model.version, X[0])
        assert client.exists(key) and 590 <= client.ttl(key) <= 600
        for n in (1, 2, 3, 4):
            record = client.get(ALERT_KEY.format(alert_id=f"credit_pd-{n}"))
            assert (
                record is not None
                and 0 < client.ttl(ALERT_KEY.format(alert_id=f"credit_pd-{n}")) <= 600
            )
        e = Explanation.from_json(client.get(ALERT_KEY.format(alert_id="credit_pd-3")))
        assert e.features == tuple(model.card.feature_names) and len(e.shap) == 23
        assert abs(e.base + sum(e.shap) - e.output) <= ADDITIVITY_TOLERANCE
        assert e.values[0] == X[0][0]
    finally:
        client.close()


def test_global_importance_is_published_per_model_version(
    redis_url: str, model: CreditModel
) -> None:
    async def run() -> None:
        service = service_on(redis_url, model)
        service.models[0].importance = model.card.extra["global_importance"]
        try:
            await service.publish_importance()
        finally:
            await service.close()

    asyncio.run(run())
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        stored = client.hgetall(IMPORTANCE_KEY.format(model=model.name, version=model.version))
    finally:
        client.close()
    assert set(stored) == set(model.card.feature_names)
    top = model.card.extra["global_importance"][0]
    assert float(stored[top["feature"]]) == pytest.approx(top["mean_abs_shap"])


def test_redis_down_still_explains(model: CreditModel, X: np.ndarray) -> None:
    metrics = ExplainMetrics()

    async def run() -> list[Any]:
        service = service_on(f"redis://127.0.0.1:{free_port()}/0", model, metrics=metrics)
        try:
            return await service.enrich([alert_for(model, X[0], 1)])
        finally:
            await service.close()

    out = asyncio.run(run())
    assert out[0].attributions is not None
    assert metrics.errors.labels("cache")._value.get() == 2  # the read and the write
