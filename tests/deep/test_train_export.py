"""Training, ONNX export, parity with torch and the card's contract (tiny models)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import onnx
from engine.core.volatility.deep_features import FEATURES
from engine.deep.card import DeepCard
from engine.deep.model import DeepVolModel
from engine.errors import ModelMismatchError
from models.deep.data import make_samples
from models.deep.export import parity
from models.deep.train import TrainResult


def test_training_writes_models_cards_and_report(tiny: tuple[TrainResult, Path]) -> None:
    result, out = tiny
    for kind in ("lstm", "transformer"):
        files = sorted(p.name for p in (out / kind).iterdir())
        assert files == ["card.json", "model.onnx"]  # one self-contained file, no .onnx.data
        card = json.loads((out / kind / "card.json").read_text())
        assert [f["name"] for f in card["inputs"]] == list(FEATURES)
        assert card["window"] == 22 and card["onnx"]["opset"] == 18
        assert card["training"]["data"]["sha256"] == result.series.sha256
        assert card["training"]["test_period"] == ["2015-01-01", "2018-04-30"]
        assert len(card["training"]["walk_forward"]["folds"]) == 1
        assert np.isfinite(card["metrics"]["test"]["qlike"])
        assert 1 <= card["training"]["epochs"] <= 2
    assert (out / "training_report.md").is_file()
    assert (out / "learning_curves_lstm.png").stat().st_size > 1000


def test_onnxruntime_agrees_with_torch(tiny: tuple[TrainResult, Path]) -> None:
    result, out = tiny
    rng = np.random.default_rng(0)
    for kind, fitted in result.final.items():
        real = make_samples(result.series, fitted.params).between("2015-01-01", "2018-04-30").X
        noisy = real[:64] + rng.normal(0, 0.5, real[:64].shape)
        assert parity(fitted, out / kind / "model.onnx", np.concatenate([real, noisy])) <= 1e-5
        served = DeepVolModel(out / kind).predict_log_var(real)
        np.testing.assert_allclose(served, fitted.log_var(real), atol=1e-5)


def test_training_is_reproducible(tiny: tuple[TrainResult, Path]) -> None:
    from models.deep.train import train
    from tests.deep.conftest import TINY

    again = train(
        TINY.__class__(**{**TINY.__dict__, "models": ("lstm",)}), None, echo=lambda line: None
    )
    assert again.test["lstm"] == tiny[0].test["lstm"]


def _copy(out: Path, tmp_path: Path, kind: str = "lstm") -> Path:
    target = tmp_path / kind
    shutil.copytree(out / kind, target)
    return target


def _edit_card(directory: Path, edit) -> None:  # type: ignore[no-untyped-def]
    path = directory / "card.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def test_card_with_inputs_in_another_order_is_refused(tiny, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    directory = _copy(tiny[1], tmp_path)
    _edit_card(directory, lambda d: d["inputs"].reverse())
    with pytest.raises(ModelMismatchError, match="the engine feeds"):
        DeepVolModel(directory)


def test_card_with_another_window_is_refused(tiny, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    directory = _copy(tiny[1], tmp_path)

    def edit(doc: dict) -> None:  # type: ignore[type-arg]
        doc["features"]["window"] = 10
        doc["window"] = 10

    _edit_card(directory, edit)
    with pytest.raises(ModelMismatchError, match=r"shape \[batch, 10, 4\]"):
        DeepVolModel(directory)


def test_model_of_another_version_is_refused(tiny, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    directory = _copy(tiny[1], tmp_path)
    _edit_card(directory, lambda d: d.update(version="lstm-99"))
    with pytest.raises(ModelMismatchError, match="version"):
        DeepVolModel(directory)


def test_model_file_changed_after_the_card_is_refused(tiny, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    directory = _copy(tiny[1], tmp_path)
    other = onnx.load(str(tiny[1] / "transformer" / "model.onnx"))
    onnx.save(other, str(directory / "model.onnx"))
    with pytest.raises(ModelMismatchError, match="sha256"):
        DeepCard.load(directory)
    with pytest.raises(ModelMismatchError):
        DeepVolModel(directory)
