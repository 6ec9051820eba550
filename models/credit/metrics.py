"""Scores of a probability of default against 0/1 outcomes.

* ``roc_auc``: area under the ROC curve (ranking; 0.5 = chance);
* ``pr_auc``: average precision, the area under the precision-recall curve (step-wise,
  scikit-learn's ``average_precision_score``); chance level is the default rate;
* ``ks``: Kolmogorov-Smirnov statistic, the largest gap between the score distributions
  of defaulters and non-defaulters, ``max |TPR - FPR|`` over thresholds;
* ``brier``: mean squared error of the probability;
* ``ece``: expected calibration error with ``bins`` equal-width bins on [0, 1]:
  ``sum_b n_b / n * |mean(y in b) - mean(p in b)|`` (a probability of exactly 1 falls in
  the last bin);
* ``log_loss``: mean negative log-likelihood, probabilities clipped to [1e-15, 1 - 1e-15].
"""

from __future__ import annotations

import numpy as np

ECE_BINS = 10


def _bins(p: np.ndarray, bins: int) -> np.ndarray:
    return np.minimum((p * bins).astype(np.int64), bins - 1)


def ece(y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error (module docstring).

    >>> round(ece(np.array([0, 1, 1, 0]), np.array([0.1, 0.9, 0.7, 0.3])), 6)
    0.2
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    b = _bins(p, bins)
    gap = np.abs(np.bincount(b, y, minlength=bins) - np.bincount(b, p, minlength=bins))
    return float(gap.sum() / len(y))


def reliability(
    y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per non-empty bin: mean predicted probability, observed default rate, count."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    b = _bins(p, bins)
    n = np.bincount(b, minlength=bins)
    keep = n > 0
    mean_p = np.bincount(b, p, minlength=bins)[keep] / n[keep]
    rate = np.bincount(b, y, minlength=bins)[keep] / n[keep]
    return mean_p, rate, n[keep]


def ks(y: np.ndarray, p: np.ndarray) -> float:
    """Kolmogorov-Smirnov statistic between the scores of positives and negatives."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, p)
    return float(np.max(tpr - fpr))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-15, 1 - 1e-15)
    y = np.asarray(y, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Every metric of the module docstring, plus the mean PD and the observed default rate."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "ks": ks(y, p),
        "brier": float(np.mean((p - y) ** 2)),
        "ece": ece(y, p),
        "log_loss": log_loss(y, p),
        "mean_pd": float(p.mean()),
        "default_rate": float(np.mean(y)),
    }
