"""Anomaly model artifacts: an ONNX graph and its card, checked before serving.

A model directory (``onnx/anomaly/<stream>-<detector>/``, written by
``riskstream anomaly train``) holds::

    card.json    the card (JSON): inputs, scaling, training data, metrics, calibration
    model.onnx   features (N x F, float32 or float64, the card's inputs in order) -> raw (N)
    lightgbm.txt the native trees, for SHAP (gradient-boosted models only)

The card is the contract between training and serving: ``inputs`` names the feature
columns in the order of the model's input tensor; ``center`` and ``scale`` standardise
them (``(x - center) / scale``, then NaN -> 0: a feature not defined yet is neutral);
``raw`` is the graph's output, larger meaning more anomalous; ``calibration`` is the
state of a :class:`~engine.anomaly.calibration.TailCalibrator` after the model's
reference window (the starting point of every key's calibration, or the frozen global
calibration of a stream). :class:`OnnxModel` refuses a graph that does not match its
card (input width, output name, version) with
:class:`~engine.errors.ModelMismatchError`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from engine.anomaly.detectors.base import column_index
from engine.artifacts.onnx_session import ServedModel
from engine.errors import ModelMismatchError
from engine.paths import REPO_ROOT

CARD_SCHEMA = "riskstream.anomaly.card/1"
CARD_FILE = "card.json"
ONNX_FILE = "model.onnx"
ARTIFACTS = REPO_ROOT / "onnx" / "anomaly"
"""Where ``riskstream anomaly train`` writes the committed models."""


@dataclass
class ModelCard:
    """What a model expects and what it is (see the module docstring)."""

    name: str
    stream: str
    detector: str
    inputs: list[str]
    center: list[float]
    scale: list[float]
    dtype: str = "float32"
    version: str = ""
    onnx: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, list[float]] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    schema: str = CARD_SCHEMA

    def __post_init__(self) -> None:
        if not (len(self.inputs) == len(self.center) == len(self.scale)):
            raise ModelMismatchError(f"{self.name}: inputs, center and scale differ in length")
        if self.dtype not in ("float32", "float64"):
            raise ModelMismatchError(f"{self.name}: unknown input dtype {self.dtype!r}")

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)

    @classmethod
    def load(cls, directory: Path) -> ModelCard:
        path = Path(directory) / CARD_FILE
        try:
            doc = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            raise ModelMismatchError(f"{path}: no model card") from None
        except orjson.JSONDecodeError as exc:
            raise ModelMismatchError(f"{path}: not a JSON model card ({exc})") from None
        if doc.get("schema") != CARD_SCHEMA:
            raise ModelMismatchError(f"{path}: not an anomaly model card ({doc.get('schema')!r})")
        try:
            return cls(**doc)
        except TypeError as exc:
            raise ModelMismatchError(f"{path}: malformed model card ({exc})") from None

    def encode(self, X: np.ndarray, features: Sequence[str]) -> np.ndarray:
        """The model's input tensor from feature rows with columns ``features``."""
        try:
            cols = column_index(features, self.inputs)
        except ValueError as exc:
            raise ModelMismatchError(f"model {self.name}: {exc}") from None
        x = (np.asarray(X, dtype=np.float64)[:, cols] - np.asarray(self.center)) / np.asarray(
            self.scale
        )
        x = np.nan_to_num(x, nan=0.0, posinf=1e6, neginf=-1e6)
        return x.astype(self.dtype)


def model_version(onnx_bytes: bytes, card: ModelCard) -> str:
    """12 hex digits naming a model: its graph and what it is fed."""
    h = hashlib.blake2b(digest_size=6)
    h.update(onnx_bytes)
    h.update(orjson.dumps([card.inputs, card.center, card.scale, card.dtype]))
    return h.hexdigest()


class OnnxModel(ServedModel[ModelCard]):
    """A served anomaly model: ``raw(X, features)`` through onnxruntime, one call per batch."""

    def __init__(self, directory: Path | str) -> None:
        super().__init__(directory, ModelCard.load(Path(directory)), ONNX_FILE)

    def check(self) -> None:
        path = self.onnx_path
        inputs = self.session.get_inputs()
        width = inputs[0].shape[-1] if inputs else None
        if len(inputs) != 1 or width != len(self.card.inputs):
            raise ModelMismatchError(
                f"{path}: the graph takes {width} features, the card lists {len(self.card.inputs)}"
            )
        if "raw" not in self.output_names():
            raise ModelMismatchError(f"{path}: the graph has no 'raw' output")
        if model_version(path.read_bytes(), self.card) != self.card.version:
            raise ModelMismatchError(
                f"{path}: the graph or its inputs are not the ones card version "
                f"{self.card.version} describes"
            )

    def raw(self, X: np.ndarray, features: Sequence[str]) -> np.ndarray:
        """Raw anomaly scores (larger: more anomalous) of feature rows."""
        if len(X) == 0:
            return np.empty(0)
        out = self.call("raw", self.card.encode(X, features))
        return np.asarray(out, dtype=np.float64).reshape(-1)


def artifact_dir(stream: str, detector: str, root: Path | None = None) -> Path:
    """``onnx/anomaly/<stream>-<detector>`` (or under ``root``)."""
    return (root if root is not None else ARTIFACTS) / f"{stream}-{detector}"
