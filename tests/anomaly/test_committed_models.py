"""The committed models in onnx/anomaly: load behind their cards, score, explain.

The transactions' default detector (gradient-boosted trees) runs in the transactions
pipeline on a slice of the fraud-handbook data; its alerts carry the model's input
vector and the explanation service turns it into SHAP attributions that add up to the
model's log-odds.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from engine.anomaly.artifacts import ARTIFACTS, OnnxModel
from engine.anomaly.factory import DETECTORS, make_detector
from engine.anomaly.reference import calm_price_features
from engine.anomaly.stages import TRANSACTION_FEATURES
from engine.config import Settings
from engine.pipeline import TransactionPipeline

MODELS = sorted(p.name for p in ARTIFACTS.iterdir() if (p / "model.onnx").is_file())


def test_every_model_detector_is_committed() -> None:
    expected = {f"prices-{d}" for d in ("iforest", "lof", "autoencoder")} | {
        f"transactions-{d}" for d in ("gbm", "iforest", "lof", "autoencoder")
    }
    assert expected <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_committed_model_loads_and_matches_its_card(name: str) -> None:
    model = OnnxModel(ARTIFACTS / name)  # refuses a graph its card does not describe
    assert model.card.onnx["parity_max_abs"] < 1e-3
    assert model.card.calibration


@pytest.mark.parametrize("name", [d for d in DETECTORS if d not in ("gbm",)])
def test_price_detectors_score_calm_features_rarely_above_the_threshold(name: str) -> None:
    X = np.asarray(calm_price_features())[:4000]
    det = make_detector("prices", name)
    for component in det.components():
        component.ensure(1)
    s = det.update(np.zeros(len(X), np.int64), X).surprisal
    assert np.isfinite(s).all() and (s >= 0).all()
    assert (s >= 4.0).mean() < 0.002


def test_gbm_alerts_are_explained_with_additive_shap() -> None:
    from engine.explain.service import ExplanationService
    from producers.sources import fraud_handbook

    pipeline = TransactionPipeline.from_settings(Settings(credit_enabled=False))
    (stage,) = pipeline.stages
    assert stage.detector.name == "gbm"
    records = []
    for offset, tx in enumerate(fraud_handbook(labels=True)):
        if tx.ts >= 1_530_403_200_000 + 12 * 86_400_000:  # 2018-07-01 + 12 days
            break
        records.append(tx.to_record(offset))
    records = records[-60_000:]
    alerts = []
    for i in range(0, len(records), 20_000):
        out = pipeline.process(records[i : i + 20_000], now_ms=1_600_000_000_000)
        alerts += [a for a in out.alerts if a.kind == "anomaly"]
    assert alerts and all(a.explain_input is not None for a in alerts)
    service = ExplanationService(top_k=5)
    for model in stage.explainable_models():
        service.register(model)
    explained = asyncio.run(service.enrich(alerts[:5]))
    asyncio.run(service.close())
    for alert in explained:
        assert len(alert.attributions) == 5
        assert {a.feature for a in alert.attributions} <= set(TRANSACTION_FEATURES)
        shap = [abs(a.shap) for a in alert.attributions]
        assert shap == sorted(shap, reverse=True)
    assert service.metrics.additivity._value.get() == 0  # base + sum(shap) == log-odds
