"""The deep volatility model card: the contract between training and serving.

A model directory (``onnx/deep/<name>/``, written by ``riskstream deep train``) holds::

    card.json    this card
    model.onnx   one self-contained ONNX graph (no external data file):
                 input  ``window``  float32 [batch, window, features], *standardised*;
                 output ``y``       float32 [batch], the standardised log-variance forecast

The card lists the inputs in the order of the tensor's last axis with their scaling
constants (``x_std = (x - mean) / std``), the window length, the feature recursions'
constants (:class:`~engine.core.volatility.deep_features.FeatureParams`), the output's scaling
(``log RV_{t+1} = target_mean + target_std * y``, decimal^2 units), the training and
test periods, the SHA-256 of the training data and of the ONNX file, the metrics, the
opset and the version. :meth:`DeepCard.load` refuses a card whose inputs are not the
engine's features, in the engine's order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.artifacts.cards import (
    card_fields,
    card_json,
    read_card,
    verify_artifact,
    write_card,
)
from engine.core.volatility.deep_features import FEATURES, RETURNS_FEATURES, FeatureParams
from engine.errors import ModelMismatchError

ONNX_FILE = "model.onnx"
CARD_SCHEMA = "riskstream.deep.card/1"
INPUT_NAME = "window"
OUTPUT_NAME = "y"


#: The deep card's own top-level fields (besides the header and the ``onnx`` section).
DEEP_FIELDS = (
    "inputs",
    "input_tensor",
    "output_tensor",
    "target_mean",
    "target_std",
    "window",
    "features",
)


@dataclass(slots=True)
class DeepCard:
    """A deep volatility model's card (see the module docstring)."""

    name: str
    kind: str
    version: str
    inputs: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    target_mean: float
    target_std: float
    features: FeatureParams
    opset: int
    onnx_file: str = ONNX_FILE
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def window(self) -> int:
        return self.features.window

    def check_inputs(self, where: str) -> None:
        """Refuse inputs the engine does not compute, or computes in another order."""
        if tuple(self.inputs) not in (FEATURES, RETURNS_FEATURES):
            raise ModelMismatchError(
                f"{where}: the card's inputs are {list(self.inputs)}; the engine feeds "
                f"{list(FEATURES)} or, returns-only, {list(RETURNS_FEATURES)} in that order"
            )
        if len(self.mean) != len(self.inputs) or len(self.std) != len(self.inputs):
            raise ModelMismatchError(
                f"{where}: the card has {len(self.mean)} means and {len(self.std)} scales "
                f"for {len(self.inputs)} inputs"
            )
        if not all(s > 0 for s in self.std) or self.target_std <= 0:
            raise ModelMismatchError(f"{where}: a scaling constant is not positive")

    def scale(self, windows: np.ndarray) -> np.ndarray:
        """Standardise raw windows (``[n, window, F]``) as the model expects: float32."""
        mean = np.asarray(self.mean)
        std = np.asarray(self.std)
        return ((windows - mean) / std).astype(np.float32)

    def log_variance(self, y: np.ndarray) -> np.ndarray:
        """The model's output as log variance (decimal^2), float64."""
        return self.target_mean + self.target_std * y.astype(np.float64)

    # --- files ----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return card_json(
            CARD_SCHEMA,
            self,
            fields={
                "inputs": [
                    {"name": n, "mean": m, "std": s}
                    for n, m, s in zip(self.inputs, self.mean, self.std, strict=True)
                ],
                "input_tensor": {
                    "name": INPUT_NAME,
                    "dtype": "float32",
                    "shape": ["batch", self.window, len(self.inputs)],
                    "scaling": "(x - mean) / std per input",
                },
                "output_tensor": {
                    "name": OUTPUT_NAME,
                    "dtype": "float32",
                    "shape": ["batch"],
                    "meaning": "log RV_{t+1} = target_mean + target_std * y (decimal^2)",
                },
                "target_mean": self.target_mean,
                "target_std": self.target_std,
                "window": self.window,
                "features": self.features.to_json(),
            },
            artifacts={"onnx": {"file": self.onnx_file, "opset": self.opset}},
        )

    def save(self, directory: Path) -> Path:
        return write_card(self.to_json(), directory)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> DeepCard:
        header, extra = card_fields(doc, CARD_SCHEMA, "deep", DEEP_FIELDS)
        features = FeatureParams.from_json(doc["features"])
        if doc.get("window", features.window) != features.window:
            raise ModelMismatchError("the card's window differs from its features' window")
        return cls(
            **header,
            inputs=tuple(f["name"] for f in doc["inputs"]),
            mean=tuple(float(f["mean"]) for f in doc["inputs"]),
            std=tuple(float(f["std"]) for f in doc["inputs"]),
            target_mean=float(doc["target_mean"]),
            target_std=float(doc["target_std"]),
            features=features,
            opset=int(doc["onnx"]["opset"]),
            onnx_file=doc["onnx"]["file"],
            extra=extra,
        )

    @classmethod
    def load(cls, directory: Path | str, *, verify: bool = True) -> DeepCard:
        """Read ``DIR/card.json``, check its inputs and (``verify``) the ONNX file's SHA-256.

        :class:`InputError` when the directory or card is missing,
        :class:`ModelMismatchError` when the card is malformed or does not match.
        """
        directory = Path(directory)
        path, doc = read_card(directory, "deep")
        try:
            card = cls.from_json(doc)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ModelMismatchError):
                raise
            raise ModelMismatchError(f"{path}: malformed model card ({exc})") from None
        card.check_inputs(str(path))
        if verify:
            verify_artifact(directory, card.onnx_file, card.extra.get("onnx", {}).get("sha256"))
        return card
