"""SHAP explanations: additivity, top attributions, cache keys, the bounded service."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import numpy as np
import pytest

from engine.alerts import Alert
from engine.credit.model import CreditModel
from engine.explain import (
    ExplainableModel,
    Explanation,
    ExplanationService,
    vector_digest,
)
from engine.explain.cache import shap_key
from engine.explain.metrics import ExplainMetrics
from engine.explain.tree import ADDITIVITY_TOLERANCE

from .helpers import alert_for, explainable


@pytest.fixture(scope="module")
def X(model: CreditModel, taiwan: Any) -> np.ndarray:
    return model.card.encode_frame(taiwan.head(500))


def test_attributions_add_up_to_the_log_odds(model: CreditModel, X: np.ndarray) -> None:
    from scipy.special import logit

    a = model.explainer().explain(X)
    assert a.values.shape == (500, 23)
    assert float(a.additivity_error.max()) <= ADDITIVITY_TOLERANCE
    np.testing.assert_allclose(
        a.output, model.explainer().model.predict(X, raw_score=True), atol=1e-12
    )
    # the served PD is the Platt calibration of that output
    cal = model.card.extra["calibration"]["params"]
    np.testing.assert_allclose(logit(model.predict(X)), cal["a"] * a.output + cal["b"], atol=1e-9)


def test_random_forest_attributions_add_up_to_the_probability() -> None:
    from sklearn.ensemble import RandomForestClassifier

    from engine.explain.tree import TreeShap

    rng = np.random.default_rng(0)
    features = rng.normal(size=(400, 4))
    y = (features[:, 0] + rng.normal(size=400) > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(features, y)
    a = TreeShap.forest(forest).explain(features[:50])
    assert float(a.additivity_error.max()) <= ADDITIVITY_TOLERANCE


def test_top_attributions_largest_first() -> None:
    e = Explanation(
        "m",
        "v",
        ("a", "b", "c", "d"),
        (1.0, None, "x", 2.0),
        (0.1, -0.5, 0.3, -0.05),
        -1.0,
        -1.15,
        "log-odds",
    )
    top = e.top(3)
    assert [t.feature for t in top] == ["b", "c", "a"]
    assert top[0].value is None and top[1].value == "x" and top[0].shap == -0.5
    assert Explanation.from_json(e.to_json()) == e


def test_cache_keys_are_stable() -> None:
    v = np.array([20000.0, 2.0, 2.0, 1.0, 24.0])
    assert shap_key("credit_lightgbm", "abc", v) == (
        "riskstream:shap:credit_lightgbm:abc:" + vector_digest([20000, 2, 2, 1, 24])
    )
    assert vector_digest(v) == vector_digest(v.copy()) == vector_digest(v.astype(np.float32))
    assert vector_digest(v) != vector_digest(v + 1e-9)
    assert vector_digest([np.nan]) == vector_digest([float("-nan")])
    assert shap_key("m", "1", v) != shap_key("m", "2", v)


def test_service_attaches_top_attributions_without_redis(model: CreditModel, X: np.ndarray) -> None:
    metrics = ExplainMetrics()
    service = ExplanationService(None, metrics=metrics, top_k=4)
    service.register(explainable(model))
    alerts = [
        alert_for(model, X[0], 0),
        alert_for(model, X[0], 1, "credit_el"),
        alert_for(model, X[1], 2),
    ]
    other = Alert("var-1", "var_breach", "SPX", 1, "warning", 0.1, 0.05, "ewma", "1")
    out = asyncio.run(service.enrich([*alerts, other]))
    assert out[3] is other
    full = model.explainer().explain(X[:2])
    for enriched, row in ((out[0], 0), (out[1], 0), (out[2], 1)):
        assert len(enriched.attributions) == 4 and enriched.explain_input is None
        shap = [a.shap for a in enriched.attributions]
        assert [abs(s) for s in shap] == sorted((abs(s) for s in shap), reverse=True)
        expected = sorted(full.values[row], key=abs, reverse=True)[:4]
        np.testing.assert_allclose(shap, expected, atol=1e-15)
    first = out[0].attributions[0]
    assert first.value == model.card.display(X[0])[model.card.feature_names.index(first.feature)]
    assert metrics.ratio == pytest.approx(1 / 3)  # the EL alert shared the PD alert's vector
    assert dataclasses.replace(out[0], attributions=None) == dataclasses.replace(
        alerts[0], explain_input=None
    )


def test_a_failing_explanation_still_returns_the_alert(model: CreditModel, X: np.ndarray) -> None:
    class Broken:
        units = "log-odds"

        def explain(self, X: np.ndarray) -> Any:
            raise RuntimeError("boom")

    metrics = ExplainMetrics()
    service = ExplanationService(None, metrics=metrics)
    service.register(
        ExplainableModel(model.name, model.version, tuple(model.card.feature_names), Broken())
    )  # type: ignore[arg-type]
    out = asyncio.run(service.enrich([alert_for(model, X[0], 0)]))
    assert out[0].attributions is None and out[0].alert_id == "credit_pd-0"
    assert metrics.errors.labels("compute")._value.get() == 1


def test_pending_explanations_are_bounded(model: CreditModel, X: np.ndarray) -> None:
    service = ExplanationService(None, max_pending=3)
    service.register(explainable(model))
    seen: list[int] = []
    real = service._compute

    async def slow(items: Any) -> Any:
        seen.append(service.pending)
        await asyncio.sleep(0.02)
        return await real(items)

    service._compute = slow  # type: ignore[method-assign]

    async def run() -> list[list[Alert]]:
        batches = [
            [alert_for(model, X[10 * b + i], 10 * b + i) for i in range(2)] for b in range(5)
        ]
        return await asyncio.gather(*(service.enrich(b) for b in batches))

    results = asyncio.run(run())
    assert max(seen) <= 3 and len(seen) == 5
    assert all(a.attributions for batch in results for a in batch)
    assert service.pending == 0
