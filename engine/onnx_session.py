"""Opening an exported model with onnxruntime, the same way for every model the engine serves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.errors import ModelMismatchError


def load_session(path: Path, *, threads: int = 1, label: Path | str | None = None) -> Any:
    """An ``onnxruntime.InferenceSession`` on the CPU with ``threads`` intra-op threads, quiet.

    A file onnxruntime cannot load raises :class:`ModelMismatchError` naming ``label``
    (default: the file).
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelMismatchError(
            f"{label if label is not None else path}: cannot load the ONNX model ({exc})"
        ) from None
