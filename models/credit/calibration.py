"""Probability calibration of a tree model's score: Platt scaling or isotonic regression.

A calibrator maps the model's uncalibrated *score* (LightGBM: the log-odds margin; a
random forest: its vote share) to a probability of default. Both kinds are fitted on
out-of-fold scores of the training part (as scikit-learn's ``CalibratedClassifierCV``
with ``ensemble=False`` does), so the tree model itself is trained once, on all of it.

* ``platt``: ``pd = 1 / (1 + exp(-(a * score + b)))``, ``a`` and ``b`` by maximum
  likelihood (an unpenalised logistic regression on the score, Platt 1999);
* ``isotonic``: the monotone step-wise fit of scikit-learn's ``IsotonicRegression``, read
  as the piecewise-linear interpolation through ``(x, y)`` knots, clipped outside them;
* ``none``: the model's own probability (the logistic of the margin, or the vote share).

:func:`choose` compares them by cross-validation on the out-of-fold scores (each
calibrator is fitted on k-1 folds and scored on the held-out fold) and picks, between
Platt and isotonic, the lowest mean Brier score (a proper scoring rule; ties: lower ECE).
The uncalibrated score is evaluated beside them as the reference, with ECE and log loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.special import expit

from models.credit.metrics import binary_metrics

Method = Literal["none", "platt", "isotonic"]
METHODS: tuple[Method, ...] = ("none", "platt", "isotonic")
#: The methods :func:`choose` picks from; ``none`` is evaluated as the reference only.
CANDIDATES: tuple[Method, ...] = ("platt", "isotonic")


@dataclass(frozen=True)
class Calibrator:
    """A fitted calibration map; ``apply`` is what the ONNX graph computes, in float64."""

    method: Method
    score: Literal["log-odds", "probability"]
    """What the input score is: a log-odds margin or already a probability."""
    a: float = 1.0
    b: float = 0.0
    x: np.ndarray = field(default_factory=lambda: np.empty(0))
    y: np.ndarray = field(default_factory=lambda: np.empty(0))

    def apply(self, score: np.ndarray) -> np.ndarray:
        score = np.asarray(score, dtype=np.float64)
        if self.method == "platt":
            return expit(self.a * score + self.b)
        if self.method == "isotonic":
            return np.interp(score, self.x, self.y)
        return expit(score) if self.score == "log-odds" else score

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"method": self.method, "input": self.score}
        if self.method == "platt":
            doc["params"] = {"a": self.a, "b": self.b, "formula": "1 / (1 + exp(-(a * s + b)))"}
        elif self.method == "isotonic":
            doc["params"] = {
                "knots": len(self.x),
                "x": self.x.tolist(),
                "y": self.y.tolist(),
                "formula": "linear interpolation through (x, y), clipped to [x0, x_last]",
            }
        return doc


def fit(method: Method, score: np.ndarray, y: np.ndarray, kind: str) -> Calibrator:
    """Fit one calibrator on scores and 0/1 labels; ``kind`` is ``"log-odds"`` or ``"probability"``."""
    score = np.asarray(score, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if method == "platt":
        a, b = _platt(score, y)
        return Calibrator("platt", kind, a=a, b=b)  # type: ignore[arg-type]
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(score, y)
        return Calibrator(
            "isotonic",
            kind,  # type: ignore[arg-type]
            x=np.asarray(iso.X_thresholds_, dtype=np.float64),
            y=np.asarray(iso.y_thresholds_, dtype=np.float64),
        )
    return Calibrator("none", kind)  # type: ignore[arg-type]


def _platt(score: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood ``(a, b)`` of ``P(y=1) = expit(a * score + b)`` (no penalty)."""
    from scipy.optimize import minimize

    centre = float(score.mean())
    scale = float(score.std()) or 1.0
    s = (score - centre) / scale

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = theta[0] * s + theta[1]
        p = expit(z)
        value = float(np.sum(np.logaddexp(0.0, z) - y * z))
        g = p - y
        return value, np.array([float(g @ s), float(g.sum())])

    found = minimize(loss, np.array([1.0, 0.0]), jac=True, method="BFGS")
    a_std, b_std = (float(v) for v in found.x)
    return a_std / scale, b_std - a_std * centre / scale


def choose(
    score: np.ndarray, y: np.ndarray, kind: str, folds: np.ndarray
) -> tuple[Method, dict[str, dict[str, float]]]:
    """Cross-validate every method on out-of-fold ``score``; return the chosen one and the evidence.

    ``folds`` gives each row's fold number (the same folds that produced the scores).
    The evidence holds, per method, the mean over held-out folds of Brier score, ECE,
    log loss and ROC AUC.
    """
    evidence: dict[str, dict[str, float]] = {}
    for method in METHODS:
        rows = []
        for k in np.unique(folds):
            held = folds == k
            calibrator = fit(method, score[~held], y[~held], kind)
            m = binary_metrics(y[held], calibrator.apply(score[held]))
            rows.append((m["brier"], m["ece"], m["log_loss"], m["roc_auc"]))
        mean = np.mean(rows, axis=0)
        evidence[method] = {
            "brier": float(mean[0]),
            "ece": float(mean[1]),
            "log_loss": float(mean[2]),
            "roc_auc": float(mean[3]),
        }
    best = min(CANDIDATES, key=lambda m: (evidence[m]["brier"], evidence[m]["ece"]))
    return best, evidence
