"""A served deep volatility model: ``model.onnx`` plus its card, one onnxruntime call per batch.

:class:`DeepVolModel` loads a model directory (:mod:`engine.deep.card`), checks that the
graph is the one the card describes (one float32 input ``window`` of shape
``[batch, window, features]`` with the card's window and feature count, one output ``y``,
the card's version and input names embedded in the graph's metadata) and refuses a
mismatch with :class:`~engine.errors.ModelMismatchError`. Inference is single-threaded by
default (a worker is one process per core).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.artifacts.onnx_session import ServedModel
from engine.deep.card import INPUT_NAME, OUTPUT_NAME, DeepCard
from engine.errors import ModelMismatchError
from engine.paths import REPO_ROOT

#: Where ``riskstream deep train`` writes the committed models (``onnx/deep/<name>``).
DEFAULT_DIR = REPO_ROOT / "onnx" / "deep"
DEEP_MODELS = ("lstm", "transformer")


def model_dir(name: str, root: Path | str | None = None) -> Path:
    """The directory of a named model under ``root`` (default :data:`DEFAULT_DIR`)."""
    return Path(root if root is not None else DEFAULT_DIR) / name


class DeepVolModel(ServedModel[DeepCard]):
    """See the module docstring. ``predict_log_var(windows)`` is the whole serving API."""

    def __init__(self, directory: Path | str, *, threads: int = 1) -> None:
        card = DeepCard.load(directory)
        super().__init__(directory, card, card.onnx_file, threads=threads, label=Path(directory))

    @property
    def window(self) -> int:
        return self.card.window

    def check(self) -> None:
        card, where = self.card, self.directory
        inputs = self.session.get_inputs()
        want = [card.window, len(card.inputs)]
        if (
            len(inputs) != 1
            or inputs[0].name != INPUT_NAME
            or inputs[0].type != "tensor(float)"
            or len(inputs[0].shape) != 3
            or list(inputs[0].shape[1:]) != want
        ):
            raise ModelMismatchError(
                f"{where}: the ONNX model takes {self.describe_inputs()}; its card expects one "
                f"float32 input {INPUT_NAME!r} of shape [batch, {want[0]}, {want[1]}] "
                f"(window {card.window}, inputs {', '.join(card.inputs)})"
            )
        outputs = self.output_names()
        if outputs != [OUTPUT_NAME]:
            raise ModelMismatchError(
                f"{where}: the ONNX model's outputs are {outputs}, expected [{OUTPUT_NAME!r}]"
            )
        self.check_embedded_version(where)
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("riskstream.inputs") != ",".join(card.inputs):
            raise ModelMismatchError(
                f"{where}: the ONNX model was trained on inputs {meta.get('riskstream.inputs')!r}, "
                f"its card lists {','.join(card.inputs)!r}"
            )

    def run(self, scaled: np.ndarray) -> np.ndarray:
        """The raw output ``y`` for standardised float32 windows: one onnxruntime call."""
        return self.call(OUTPUT_NAME, scaled)

    def predict_log_var(self, windows: np.ndarray) -> np.ndarray:
        """Log variance forecasts (decimal^2) for raw windows ``[n, window, F]``: one call."""
        if windows.shape[0] == 0:
            return np.empty(0)
        return self.card.log_variance(self.run(self.card.scale(windows)))


_CACHE: dict[tuple[str, str], DeepVolModel] = {}
"""Loaded models by directory and file time (a retrained model is loaded afresh)."""


def load_cached(name: str, root: Path | str | None = None) -> DeepVolModel:
    """:class:`DeepVolModel` of ``root/name``, loaded once per process (sessions are reusable)."""
    directory = model_dir(name, root)
    onnx_file = directory / "model.onnx"
    stamp = onnx_file.stat().st_mtime_ns if onnx_file.exists() else 0
    key = (str(directory.resolve()), str(stamp))
    if key not in _CACHE:
        _CACHE[key] = DeepVolModel(directory)
    return _CACHE[key]
