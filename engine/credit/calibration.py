"""The calibration map of a credit model, read from its card: raw score -> probability of default.

The served ONNX graph computes ``pd = calibrate(score)`` where ``score`` is the native tree
model's raw output, the quantity SHAP attributions add up to (log-odds for LightGBM). The
card records the map (``calibration``: ``method``, ``input``, ``params``); this module
applies it in float64, so any point on an explanation's log-odds path (the base value,
the base plus the first few attributions, the output) can be read as a PD. At the output it
is the PD that ``credit score`` writes and that a ``credit_pd`` alert states (to the
ONNX parity tolerance, 1e-5; float64 throughout, in practice ~1e-16).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from scipy.special import expit

from engine.errors import ModelMismatchError

Calibration = Callable[[np.ndarray], np.ndarray]


def calibration_from_card(doc: Mapping[str, Any], source: object = "model card") -> Calibration:
    """The map ``raw score -> PD`` the card's ``calibration`` section describes.

    Parameters
    ----------
    doc
        The card's ``calibration`` section: ``method`` (``platt``, ``isotonic`` or ``none``),
        ``input`` (``log-odds`` or ``probability``) and ``params``.
    source
        What to name in the error message.

    Raises
    ------
    ModelMismatchError
        If the section is missing or malformed.

    Examples
    --------
    >>> platt = calibration_from_card({"method": "platt", "input": "log-odds",
    ...                                "params": {"a": 1.0, "b": 0.0}})
    >>> platt(np.array([0.0, np.log(3.0)])).round(6).tolist()
    [0.5, 0.75]
    """
    try:
        method, kind = doc["method"], doc["input"]
        params = doc.get("params", {})
        if method == "platt":
            a, b = float(params["a"]), float(params["b"])
            return lambda s: expit(a * np.asarray(s, dtype=np.float64) + b)
        if method == "isotonic":
            x = np.asarray(params["x"], dtype=np.float64)
            y = np.asarray(params["y"], dtype=np.float64)
            return lambda s: np.interp(np.asarray(s, dtype=np.float64), x, y)
        if method == "none":
            if kind == "log-odds":
                return lambda s: expit(np.asarray(s, dtype=np.float64))
            return lambda s: np.asarray(s, dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        pass
    raise ModelMismatchError(f"{source}: no readable calibration (method, input, params)")
