"""Exported models through onnxruntime, the same way for every model the engine serves.

:func:`load_session` opens a graph (CPU, quiet, a set number of threads, a load failure
reported as :class:`~engine.errors.ModelMismatchError`); training uses it to check its
exports. :class:`ServedModel` is what the credit, deep volatility and anomaly models
share: a directory with a card and its graph, one session, the graph checked against the
card when loaded (each model states its own checks in :meth:`ServedModel.check`), one
onnxruntime call per batch (:meth:`ServedModel.call`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from engine.errors import ModelMismatchError

VERSION_KEY = "riskstream.version"
"""The graph metadata entry that names the model version its card must carry."""


def load_session(model: Path | bytes, *, threads: int = 1, label: Path | str | None = None) -> Any:
    """An ``onnxruntime.InferenceSession`` on the CPU with ``threads`` intra-op threads, quiet.

    ``model`` is a file or a serialised graph; ``threads`` 0 leaves the count to
    onnxruntime (one per physical core). A graph onnxruntime cannot load raises
    :class:`ModelMismatchError` naming ``label`` (default: the file, or "the ONNX graph").
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    source = model if isinstance(model, bytes) else str(model)
    try:
        return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        where = label if label is not None else model if isinstance(model, Path) else None
        raise ModelMismatchError(
            f"{where if where is not None else 'the ONNX graph'}: cannot load the ONNX model ({exc})"
        ) from None


class Card(Protocol):
    """What :class:`ServedModel` reads from a model card."""

    name: str
    version: str


CardT = TypeVar("CardT", bound=Card)


class ServedModel(Generic[CardT]):
    """A model directory's graph ``onnx_file`` served under its ``card``.

    The session is opened (``threads`` intra-op threads; a worker is one process per core,
    so 1 by default), then :meth:`check` refuses a graph the card does not describe with
    :class:`~engine.errors.ModelMismatchError` (naming ``label``, by default the graph's
    file). Loading blocks (file reads); calls are thread-safe (onnxruntime sessions are).
    """

    def __init__(
        self,
        directory: Path | str,
        card: CardT,
        onnx_file: str,
        *,
        threads: int = 1,
        label: Path | str | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.card = card
        self.onnx_path = self.directory / onnx_file
        self.session = load_session(self.onnx_path, threads=threads, label=label)
        self.check()
        self.input_name: str = self.session.get_inputs()[0].name

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def version(self) -> str:
        return self.card.version

    def check(self) -> None:
        """Raise :class:`~engine.errors.ModelMismatchError` unless the graph is the card's."""

    def describe_inputs(self) -> str:
        """The graph's inputs as ``name type shape``, comma-separated (for error messages)."""
        return ", ".join(f"{i.name} {i.type} {i.shape}" for i in self.session.get_inputs())

    def output_names(self) -> list[str]:
        return [o.name for o in self.session.get_outputs()]

    def check_embedded_version(self, where: Path | str) -> None:
        """The version written in the graph's metadata (:data:`VERSION_KEY`) is the card's."""
        embedded = self.session.get_modelmeta().custom_metadata_map.get(VERSION_KEY)
        if embedded != self.card.version:
            raise ModelMismatchError(
                f"{where}: the ONNX model is version {embedded!r}, "
                f"its card says {self.card.version!r}"
            )

    def call(self, output: str, x: np.ndarray) -> np.ndarray:
        """Output ``output`` of the graph for input ``x``: one onnxruntime call (blocking)."""
        return self.session.run([output], {self.input_name: x})[0]
