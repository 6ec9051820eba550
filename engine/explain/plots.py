"""Plots of explanations with shap's own renderers: waterfall (PNG), force (HTML), summaries (PNG)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.explain.cache import Explanation
from engine.explain.shap_import import import_shap


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _shap_explanation(explanation: Explanation) -> Any:
    shap = import_shap()
    data = np.array(
        [np.nan if v is None else v for v in explanation.values], dtype=object
    )  # category text stays text in the labels
    return shap.Explanation(
        values=np.asarray(explanation.shap, dtype=np.float64),
        base_values=explanation.base,
        data=data,
        feature_names=list(explanation.features),
    )


def _title(explanation: Explanation, alert_id: str | None) -> str:
    head = f"{explanation.model} {explanation.model_version}"
    return (
        f"{head} - {alert_id} ({explanation.units})"
        if alert_id
        else f"{head} ({explanation.units})"
    )


def waterfall(
    explanation: Explanation, out: Path, *, alert_id: str | None = None, max_display: int = 12
) -> Path:
    """shap's waterfall plot: from the base value to the model output, one bar per feature."""
    shap = import_shap()
    plt = _pyplot()
    shap.plots.waterfall(_shap_explanation(explanation), max_display=max_display, show=False)
    fig = plt.gcf()
    fig.suptitle(_title(explanation, alert_id), fontsize=10)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out


def force(explanation: Explanation, out: Path, *, alert_id: str | None = None) -> Path:
    """shap's interactive force plot as a self-contained HTML page."""
    shap = import_shap()
    plot = shap.plots.force(
        explanation.base,
        np.asarray(explanation.shap, dtype=np.float64),
        features=np.array(["" if v is None else v for v in explanation.values], dtype=object),
        feature_names=list(explanation.features),
        out_names=_title(explanation, alert_id),
        matplotlib=False,
    )
    shap.save_html(str(out), plot)
    return out


def importance_bar(
    importance: Sequence[dict[str, Any]], out: Path, *, title: str, max_display: int = 20
) -> Path:
    """Global importance (mean |SHAP| per feature) as a horizontal bar chart."""
    plt = _pyplot()
    top = list(importance)[:max_display][::-1]
    fig, ax = plt.subplots(figsize=(6.5, 0.3 * len(top) + 1.2))
    ax.barh([d["feature"] for d in top], [d["mean_abs_shap"] for d in top], color="#1E88E5")
    ax.set_xlabel("mean |SHAP value|")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def beeswarm(values: np.ndarray, X: np.ndarray, names: list[str], out: Path, *, title: str) -> Path:
    """shap's summary (beeswarm) plot: every row's attribution per feature, coloured by value."""
    shap = import_shap()
    plt = _pyplot()
    # an explicit generator: the jitter is reproducible, whoever seeded the global RNG
    shap.summary_plot(
        values, X, feature_names=names, show=False, max_display=20, rng=np.random.default_rng(0)
    )
    fig = plt.gcf()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
