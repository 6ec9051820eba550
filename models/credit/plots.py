"""Training plots written into the model directory: ROC curves, reliability diagram, SHAP summary."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from models.credit.metrics import ECE_BINS, ece, reliability


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def roc(path: Path, y: np.ndarray, curves: Mapping[str, np.ndarray], title: str) -> Path:
    """ROC curves of several models' probabilities on the same outcomes."""
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for label, p in curves.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{label} (AUC {roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def reliability_diagram(
    path: Path, y: np.ndarray, curves: Mapping[str, np.ndarray], title: str
) -> Path:
    """Observed default rate against mean predicted PD per bin (equal-width bins), with ECE."""
    plt = _pyplot()
    fig, (ax, hist) = plt.subplots(
        2, 1, figsize=(5.5, 6.5), gridspec_kw={"height_ratios": [3, 1]}, sharex=True
    )
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="perfect")
    for label, p in curves.items():
        mean_p, rate, _ = reliability(y, p)
        ax.plot(mean_p, rate, marker="o", label=f"{label} (ECE {ece(y, p):.4f})")
        hist.hist(p, bins=np.linspace(0, 1, 41), histtype="step", label=label)
    ax.set_ylabel("observed default rate")
    ax.set_title(f"{title} ({ECE_BINS} bins)")
    ax.legend(loc="upper left")
    hist.set_xlabel("predicted probability of default")
    hist.set_ylabel("rows")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def shap_summary(
    path: Path, values: np.ndarray, X: np.ndarray, names: list[str], title: str
) -> Path:
    """shap's beeswarm summary: each row's attribution per feature, coloured by the feature value."""
    from engine.explain.plots import beeswarm

    return beeswarm(values, X, names, path, title=title)
