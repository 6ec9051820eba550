"""The committed Taiwan model (onnx/credit): loads, matches its native trees, meets the targets."""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pytest
from scipy.special import expit

from engine.artifacts.cards import sha256_file
from engine.credit.card import ModelCard
from engine.credit.model import DEFAULT_MODEL_DIR, CreditModel
from engine.paths import shared_file

from .conftest import COMMITTED, TAIWAN, TARGET


def test_committed_model_is_the_default_and_matches_its_card() -> None:
    assert DEFAULT_MODEL_DIR == COMMITTED
    card = ModelCard.load(COMMITTED)  # verifies the SHA-256 of model.onnx and lightgbm.txt
    assert card.name == "credit_lightgbm" and card.target == TARGET
    assert card.extra["training_data"]["sha256"] == sha256_file(shared_file(TAIWAN))
    assert card.extra["training_data"]["rows_used"] == 30_000
    assert "riskstream credit train --data" in card.extra["command"]


def test_committed_model_meets_the_targets_on_the_test_split() -> None:
    card = orjson.loads((COMMITTED / "card.json").read_bytes())
    served = card["test"][card["kind"]][card["calibration"]["method"]]
    assert served["roc_auc"] >= 0.78
    assert served["ece"] <= 0.02


def test_test_split_metrics_recomputed_from_the_served_model(taiwan: pd.DataFrame) -> None:
    """The card's test-split figures are what the served ONNX model scores on that split."""
    from sklearn.model_selection import train_test_split

    from models.credit.metrics import binary_metrics

    card = orjson.loads((COMMITTED / "card.json").read_bytes())
    split = card["split"]
    y = taiwan[TARGET].to_numpy().astype(np.int64)
    _, test_rows = train_test_split(
        np.arange(len(y)), test_size=split["test_size"], stratify=y, random_state=split["seed"]
    )
    assert len(test_rows) == split["test_rows"] == 6_000
    model = CreditModel(COMMITTED)
    metrics = binary_metrics(
        y[test_rows], model.predict(model.card.encode_frame(taiwan)[test_rows])
    )
    served = card["test"][card["kind"]][card["calibration"]["method"]]
    for name in ("roc_auc", "pr_auc", "ks", "brier", "ece"):
        assert metrics[name] == pytest.approx(served[name], abs=1e-9), name
    assert metrics["roc_auc"] >= 0.78 and metrics["ece"] <= 0.02


def test_onnx_equals_native_lightgbm_with_calibration_on_all_rows(taiwan: pd.DataFrame) -> None:
    model = CreditModel(COMMITTED)
    X = model.card.encode_frame(taiwan)
    booster = model.explainer().model
    cal = model.card.extra["calibration"]
    assert cal["method"] == "platt"
    native = expit(cal["params"]["a"] * booster.predict(X, raw_score=True) + cal["params"]["b"])
    served = model.predict(X)
    assert served.shape == (30_000,)
    assert float(np.max(np.abs(served - native))) <= 1e-5
