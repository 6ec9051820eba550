"""Fixtures of the credit and explanation tests: a small Taiwan sample and a small model."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from engine.credit.model import CreditModel
from engine.paths import shared_file
from models.credit.train import TrainOptions, train

TAIWAN = "credit/taiwan_default_of_credit_card_clients.csv"
TARGET = "default.payment.next.month"
COMMITTED = Path(__file__).resolve().parents[2] / "onnx" / "credit"

#: A few trees and folds: seconds, not minutes (the full model is trained by the documented command).
SMALL = TrainOptions(
    folds=3,
    lgbm_grid=(
        {"n_estimators": 40, "learning_rate": 0.1, "num_leaves": 8, "min_child_samples": 20},
        {"n_estimators": 60, "learning_rate": 0.1, "num_leaves": 4, "min_child_samples": 20},
    ),
    rf_params={"n_estimators": 15, "min_samples_leaf": 20, "max_features": "sqrt"},
    n_jobs=1,
    plots=False,
)


@pytest.fixture(scope="session")
def taiwan() -> pd.DataFrame:
    return pd.read_csv(shared_file(TAIWAN))


@pytest.fixture(scope="session")
def taiwan_sample(taiwan: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 2,500 rows of the Taiwan file."""
    path = tmp_path_factory.mktemp("taiwan") / "sample.csv"
    taiwan.head(2500).to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def small_model(taiwan_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small LightGBM credit model trained on the sample (with plots)."""
    out = tmp_path_factory.mktemp("model")
    opts = TrainOptions(**{**SMALL.__dict__, "plots": True, "kinds": ("lightgbm",)})
    train(taiwan_sample, TARGET, out, opts)
    return out


@pytest.fixture(scope="module")
def model() -> CreditModel:
    """The committed credit model (``onnx/credit``), loaded once per test module."""
    return CreditModel(COMMITTED)
