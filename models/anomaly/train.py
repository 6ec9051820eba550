"""``riskstream anomaly train``: fit the served anomaly models and write their artifacts.

Prices
    Isolation Forest, LOF and the autoencoder are fitted on the features of seeded calm
    GARCH-t streams (:mod:`producers.anomalies` with no anomalies, seed
    :data:`~engine.anomaly.reference.REFERENCE_SEED`, apart from the evaluation's
    seeds): price features are standardised (returns by their volatility forecast), so
    one model serves every symbol, each symbol calibrating its raw scores itself.
Transactions
    The fraud-handbook transactions are replayed through the stream's stage
    (:func:`~models.anomaly.data.replay_transactions`) and the models are fitted on the
    published baseline's training week, 2018-07-25 to 2018-07-31: the gradient-boosted
    trees on its labels (all known by the start of the test week, 2018-08-08, 7 days
    after its end), the unsupervised models on its transactions labelled genuine
    (novelty detection). Each model's global calibration is its raw scores' distribution
    over the training week, frozen.

Each model goes to ``<out>/<stream>-<detector>/`` (:mod:`engine.anomaly.artifacts`).
Deterministic: the same data and code give the same graphs and versions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.anomaly.artifacts import CARD_FILE, ONNX_FILE, ModelCard, artifact_dir, model_version
from engine.anomaly.calibration import RankCalibration
from engine.anomaly.detectors.model import ModelDetector
from engine.anomaly.detectors.robust import RobustDetector
from engine.anomaly.factory import (
    BLEND,
    PRICE_MODEL_INPUTS,
    TRANSACTION_CHANNELS,
    TRANSACTION_MODEL_INPUTS,
)
from engine.anomaly.features.prices import PRICE_FEATURES
from engine.anomaly.reference import REFERENCE_SEED
from engine.artifacts.onnx_session import load_session
from models.anomaly.data import TransactionReplay
from models.anomaly.fit import UNSUPERVISED, Fitted, fit_gbm, robust_scaling

TRAIN_WEEK = ("2018-07-25", "2018-08-01")
"""The published baseline's training week, ``[start, end)``."""
TEST_WEEK = ("2018-08-08", "2018-08-15")
"""Its test week: 7 days of feedback delay after the training week."""
DTYPES = {"lof": "float64", "gbm": "float64"}
"""Input dtype of each model's graph (float32 unless said)."""
PRICE_REFERENCE = {"symbols": 16, "ticks": 10_000, "seed": REFERENCE_SEED}

Progress = Callable[[str], None]


@dataclass
class TrainedModel:
    """A fitted model with its card (not yet written)."""

    fitted: Fitted | None
    card: ModelCard


def _encode(card: ModelCard, X: np.ndarray, features: tuple[str, ...]) -> np.ndarray:
    return card.encode(X, features)


def _card(
    name: str,
    stream: str,
    detector: str,
    inputs: tuple[str, ...],
    center: np.ndarray,
    scale: np.ndarray,
    dtype: str,
    training: dict[str, Any],
) -> ModelCard:
    return ModelCard(
        name=name,
        stream=stream,
        detector=detector,
        inputs=list(inputs),
        center=[float(v) for v in center],
        scale=[float(v) for v in scale],
        dtype=dtype,
        training=training,
    )


def _finish(
    trained: TrainedModel,
    X: np.ndarray,
    features: tuple[str, ...],
    calibration_rows: np.ndarray,
    *,
    per_key: bool,
) -> TrainedModel:
    """Version, ONNX parity and reference calibration of a fitted model."""
    fitted, card = trained.fitted, trained.card
    assert fitted is not None
    data = fitted.onnx.SerializeToString()
    card.version = model_version(data, card)
    Z = _encode(card, X, features)
    session = load_session(data, threads=0, label=f"the exported {card.name} model")
    sample = Z[: min(len(Z), 5000)]
    (onnx_raw,) = session.run(["raw"], {session.get_inputs()[0].name: sample})
    native = fitted.raw(sample)
    card.onnx = {
        "file": ONNX_FILE,
        "opset": {imp.domain or "ai.onnx": imp.version for imp in fitted.onnx.opset_import},
        "parity_max_abs": float(np.max(np.abs(np.asarray(onnx_raw, np.float64) - native))),
        "parity_rows": len(sample),
    }
    card.params = fitted.params or {}
    probe = ModelDetector(
        card.detector, card.version, lambda rows: rows, blend=BLEND.get(card.detector, False)
    )
    raw = fitted.raw(_encode(card, calibration_rows, features))
    if per_key:
        card.calibration = probe.reference_calibration(raw, 200.0)
    else:  # frozen and global: the exact rank among the reference week's scores
        card.calibration = RankCalibration.fit(raw).to_dict()
    return trained


def write(trained: TrainedModel, root: Path) -> Path:
    """Write a model's directory (card, ONNX graph, native trees where SHAP needs them)."""
    directory = artifact_dir(trained.card.stream, trained.card.detector, root)
    directory.mkdir(parents=True, exist_ok=True)
    if trained.fitted is not None:
        (directory / ONNX_FILE).write_bytes(trained.fitted.onnx.SerializeToString())
        if trained.fitted.kind == "gbm":
            trained.fitted.model.save_model(str(directory / "lightgbm.txt"))
    (directory / CARD_FILE).write_bytes(trained.card.to_json())
    return directory


# --- prices -----------------------------------------------------------------------------


def price_reference_rows() -> np.ndarray:
    """Features of the calm reference streams (see the module docstring), warm-up dropped."""
    from engine.anomaly.reference import price_feature_rows
    from producers.anomalies import labelled_prices

    stream = labelled_prices(
        PRICE_REFERENCE["symbols"], PRICE_REFERENCE["ticks"], kinds=(), seed=PRICE_REFERENCE["seed"]
    )
    rows = price_feature_rows(stream.frame)
    return rows[stream.frame["tick"].to_numpy() >= 50]


def _fit_unsupervised(
    stream: str,
    rows: np.ndarray,
    features: tuple[str, ...],
    inputs: tuple[str, ...],
    training: dict[str, Any],
    *,
    scored: np.ndarray,
    per_key: bool,
    progress: Progress,
    rows_are: str,
) -> list[TrainedModel]:
    """Fit every unsupervised detector of :data:`UNSUPERVISED` on ``rows`` (seed 0).

    ``rows`` has one column per name in ``features``; the models see ``inputs``, centred
    and scaled by their median and robust scale over ``rows``. Each model is calibrated
    by :func:`_finish` on ``scored`` (the rows it will be judged against).
    """
    idx = [features.index(f) for f in inputs]
    center, scale = robust_scaling(rows[:, idx])
    out = []
    for detector, fit in UNSUPERVISED.items():
        progress(f"{stream}: fitting {detector} on {len(rows):,} {rows_are}")
        card = _card(
            f"{stream}-{detector}",
            stream,
            detector,
            inputs,
            center,
            scale,
            DTYPES.get(detector, "float32"),
            training,
        )
        fitted = fit(_encode(card, rows, features), seed=0)
        out.append(_finish(TrainedModel(fitted, card), rows, features, scored, per_key=per_key))
    return out


def train_prices(progress: Progress = lambda _: None) -> list[TrainedModel]:
    X = price_reference_rows()
    training = {
        "data": "calm GARCH-t streams (producers.anomalies.labelled_prices, kinds=())",
        **PRICE_REFERENCE,
        "rows": len(X),
    }
    return _fit_unsupervised(
        "prices",
        X,
        PRICE_FEATURES,
        PRICE_MODEL_INPUTS,
        training,
        scored=X,
        per_key=True,
        progress=progress,
        rows_are="calm feature rows",
    )


# --- transactions -----------------------------------------------------------------------


def train_transactions(
    replay: TransactionReplay, progress: Progress = lambda _: None
) -> list[TrainedModel]:
    from engine.anomaly.stages import TRANSACTION_FEATURES as F

    train = replay.between(*TRAIN_WEEK)
    X, y = replay.X[train], replay.labels[train]
    if len(X) == 0 or np.isnan(y).any():
        raise ValueError("the training week has no rows, or rows without labels")
    genuine = X[y == 0]
    training = {
        "data": replay.source,
        "sha256": replay.sha256,
        "period": list(TRAIN_WEEK),
        "rows": len(X),
        "frauds": int(y.sum()),
        "features": "computed by the stream's stage (models.anomaly.data.replay_transactions)",
    }
    out = []
    progress(f"transactions: fitting gbm on {len(X):,} labelled rows ({int(y.sum())} frauds)")
    card = _card(
        "transactions-gbm",
        "transactions",
        "gbm",
        F,
        np.zeros(len(F)),
        np.ones(len(F)),
        "float64",
        training,
    )
    fitted = fit_gbm(_encode(card, X, F), y, seed=0)
    out.append(_finish(TrainedModel(fitted, card), X, F, X, per_key=False))
    out += _fit_unsupervised(
        "transactions",
        genuine,
        F,
        TRANSACTION_MODEL_INPUTS,
        {**training, "rows": len(genuine), "fitted_on": "rows labelled genuine"},
        scored=X,
        per_key=False,
        progress=progress,
        rows_are="genuine rows",
    )
    # the robust detector has no model, only its frozen calibration over the week
    robust = RobustDetector(F, TRANSACTION_CHANNELS, scope="global")
    names = [c.feature for c in TRANSACTION_CHANNELS]
    card = ModelCard(
        name="transactions-robust",
        stream="transactions",
        detector="robust",
        inputs=names,
        center=[0.0] * len(names),
        scale=[1.0] * len(names),
        training=training,
        calibration=robust.reference_calibration(X),
    )
    card.version = model_version(b"robust", card)
    out.append(TrainedModel(None, card))
    return out


def train(
    root: Path,
    *,
    streams: tuple[str, ...] = ("prices", "transactions"),
    transactions_file: Path | None = None,
    progress: Progress = lambda _: None,
) -> list[Path]:
    """Fit every served model of ``streams`` and write them under ``root``."""
    from models.anomaly.data import replay_transactions

    models: list[TrainedModel] = []
    if "prices" in streams:
        models += train_prices(progress)
    if "transactions" in streams:
        progress("transactions: replaying the fraud-handbook file through the stream's stage")
        replay = replay_transactions(transactions_file, end=TRAIN_WEEK[1])
        models += train_transactions(replay, progress)
    return [write(m, root) for m in models]
