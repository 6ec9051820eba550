"""The served credit model: ``model.onnx`` and its card, scored through onnxruntime.

:class:`CreditModel` loads a model directory (see :mod:`engine.credit.card`), checks that
the ONNX graph is the one the card describes (its input takes exactly the card's features,
it has a ``pd`` output, its embedded version equals the card's) and refuses a mismatched
model with :class:`~engine.errors.ModelMismatchError`. :meth:`CreditModel.predict` is one
``InferenceSession.run`` for a whole batch, single-threaded (a worker is one process per
core; the explanation thread and the event loop share it).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.artifacts.onnx_session import ServedModel
from engine.credit.card import ModelCard
from engine.errors import ModelMismatchError
from engine.paths import REPO_ROOT

if TYPE_CHECKING:
    from engine.credit.calibration import Calibration
    from engine.explain.tree import TreeShap

#: Where ``riskstream credit train`` wrote the committed Taiwan model (see onnx/credit/README.md).
DEFAULT_MODEL_DIR = REPO_ROOT / "onnx" / "credit"


class CreditModel(ServedModel[ModelCard]):
    """A calibrated credit model ready to score; see the module docstring."""

    def __init__(self, directory: Path | str, *, threads: int = 1) -> None:
        card = ModelCard.load(directory)
        super().__init__(directory, card, card.onnx_file, threads=threads, label=Path(directory))
        self._shap: TreeShap | None = None
        self._calibration: Calibration | None = None

    def check(self) -> None:
        inputs = self.session.get_inputs()
        n = len(self.card.inputs)
        if len(inputs) != 1 or inputs[0].type != "tensor(double)" or inputs[0].shape[-1] != n:
            raise ModelMismatchError(
                f"{self.directory}: the ONNX model takes {self.describe_inputs()}; its card "
                f"lists {n} features (expected one float64 input of shape [N, features])"
            )
        if "pd" not in self.output_names():
            raise ModelMismatchError(f"{self.directory}: the ONNX model has no 'pd' output")
        self.check_embedded_version(self.directory)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Probability of default of each row of ``X`` (float64, card order): one ONNX call."""
        if X.shape[0] == 0:
            return np.empty(0, dtype=np.float64)
        return self.call("pd", np.ascontiguousarray(X, dtype=np.float64))

    def calibrate(self, score: np.ndarray) -> np.ndarray:
        """PD of raw scores (the native model's output, SHAP's units), as the ONNX graph maps them."""
        if self._calibration is None:
            from engine.credit.calibration import calibration_from_card

            self._calibration = calibration_from_card(
                self.card.extra.get("calibration", {}), self.directory / "card.json"
            )
        return self._calibration(score)

    def explainer(self) -> TreeShap:
        """SHAP over the native tree model (loaded on first use; log-odds for LightGBM)."""
        if self._shap is None:
            from engine.explain.tree import TreeShap

            native = self.directory / self.card.native_file
            if self.card.kind == "lightgbm":
                self._shap = TreeShap.lightgbm(native)
            else:
                import joblib

                self._shap = TreeShap.forest(joblib.load(native))
        return self._shap
