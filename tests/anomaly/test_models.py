"""Model detectors: fitted seeded, exported to ONNX with parity, served behind their cards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.anomaly.artifacts import ModelCard, OnnxModel, model_version
from engine.anomaly.calibration import RankCalibration
from engine.anomaly.detectors.model import ModelDetector
from engine.errors import ModelMismatchError
from models.anomaly.fit import UNSUPERVISED, fit_gbm

FEATURES = ("a", "b", "c", "d")


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1500, 4))
    X[:, 1] += 0.8 * X[:, 0]
    return X


def write_model(tmp: Path, fitted, dtype: str) -> Path:  # type: ignore[no-untyped-def]
    card = ModelCard(
        name=f"test-{fitted.kind}",
        stream="prices",
        detector=fitted.kind,
        inputs=list(FEATURES),
        center=[0.0] * 4,
        scale=[1.0] * 4,
        dtype=dtype,
    )
    data = fitted.onnx.SerializeToString()
    card.version = model_version(data, card)
    (tmp / "model.onnx").write_bytes(data)
    (tmp / "card.json").write_bytes(card.to_json())
    return tmp


@pytest.mark.parametrize("kind", sorted(UNSUPERVISED))
def test_unsupervised_models_export_with_parity_and_rank_outliers_high(
    kind: str, rows: np.ndarray, tmp_path: Path
) -> None:
    fitted = UNSUPERVISED[kind](rows, seed=0, **({"epochs": 5} if kind == "autoencoder" else {}))
    again = UNSUPERVISED[kind](rows, seed=0, **({"epochs": 5} if kind == "autoencoder" else {}))
    probe = np.vstack([rows[:200], [[6.0, -6.0, 0.0, 0.0]]])
    np.testing.assert_array_equal(fitted.raw(probe), again.raw(probe))  # seeded
    if kind == "iforest":  # the same rows give the same graph, byte for byte (LOF's tensor
        # names come from a per-process counter of skl2onnx: equal across fresh processes)
        assert fitted.onnx.SerializeToString() == again.onnx.SerializeToString()
    model = OnnxModel(write_model(tmp_path, fitted, "float64" if kind == "lof" else "float32"))
    served = model.raw(probe, FEATURES)
    np.testing.assert_allclose(served, fitted.raw(probe), rtol=1e-4, atol=1e-4)
    assert served[-1] > np.quantile(served[:-1], 0.99)


def test_a_card_that_does_not_match_its_graph_is_refused(rows: np.ndarray, tmp_path: Path) -> None:
    fitted = UNSUPERVISED["iforest"](rows, seed=0)
    directory = write_model(tmp_path, fitted, "float32")
    card = ModelCard.load(directory)
    card.center = [1.0] * 4  # the graph was not built for this scaling
    (directory / "card.json").write_bytes(card.to_json())
    with pytest.raises(ModelMismatchError, match="not the ones card version"):
        OnnxModel(directory)
    with pytest.raises(ModelMismatchError, match="no model card"):
        OnnxModel(tmp_path / "missing")


def test_gbm_export_and_frozen_rank_calibration(rows: np.ndarray) -> None:
    y = (rows[:, 0] + 0.3 * rows[:, 2] > 1.8).astype(int)
    fitted = fit_gbm(rows, y, seed=0)
    import onnxruntime

    session = onnxruntime.InferenceSession(
        fitted.onnx.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    (out,) = session.run(["raw"], {"features": rows})
    np.testing.assert_allclose(out, fitted.raw(rows), rtol=0, atol=1e-9)
    rank = RankCalibration.fit(fitted.raw(rows))
    det = ModelDetector(
        "gbm",
        "v",
        fitted.raw,
        scope="global",
        calibration=rank.to_dict(),
        learn_calibration=False,
    )
    scores = det.update(np.zeros(len(rows), np.int64), rows)
    # the share of reference rows at or above a surprisal s is about 10**-s
    for s in (1.0, 2.0):
        assert (scores.surprisal >= s).mean() == pytest.approx(10**-s, rel=0.35)
    with pytest.raises(ValueError, match="frozen and global"):
        ModelDetector("gbm", "v", fitted.raw, calibration=rank.to_dict())
