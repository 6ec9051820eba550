"""Plots of explanations with shap's own renderers: waterfall (PNG), force (HTML), summaries (PNG)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    explanation: Explanation,
    out: Path,
    *,
    alert_id: str | None = None,
    max_display: int = 12,
    to_probability: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Path:
    """The waterfall of one explanation, from the base value to the model output.

    With ``to_probability`` (the model's calibration: raw score -> PD), the plot reads in
    probability (:func:`probability_waterfall`): it ends at the PD the alert states.
    Without it, shap's own waterfall in the explanation's units (log-odds for LightGBM).
    """
    if to_probability is not None:
        return probability_waterfall(
            explanation, out, to_probability, alert_id=alert_id, max_display=max_display
        )
    shap = import_shap()
    plt = _pyplot()
    shap.plots.waterfall(_shap_explanation(explanation), max_display=max_display, show=False)
    fig = plt.gcf()
    fig.suptitle(_title(explanation, alert_id), fontsize=10)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out


def probability_path(
    explanation: Explanation,
    to_probability: Callable[[np.ndarray], np.ndarray],
    max_display: int = 12,
) -> tuple[list[str], np.ndarray]:
    """Labels of the steps and the PD after each, from the base value to the output.

    The attributions are added to the base value one at a time, largest ``|SHAP|`` first
    (the last ``len - max_display + 1`` together as "N other features" when there are more
    than ``max_display``), and each partial sum is read as a PD through ``to_probability``.
    Element 0 of the PDs is the base value's, the last the output's: the steps add up
    exactly to the difference. (In log-odds each step is the feature's SHAP value; in
    probability it depends on the order, because the calibration is not linear.)

    >>> e = Explanation("m", "1", ("a", "b"), (1.0, "x"), (1.0, -0.5), 0.0, 0.5, "log-odds")
    >>> labels, pd_path = probability_path(e, lambda s: 1 / (1 + np.exp(-s)))
    >>> labels, pd_path.round(3).tolist()
    (['a = 1', 'b = x'], [0.5, 0.731, 0.622])
    """
    shap_values = np.asarray(explanation.shap, dtype=np.float64)
    order = sorted(range(len(shap_values)), key=lambda i: (-abs(shap_values[i]), i))
    shown = order if len(order) <= max_display else order[: max_display - 1]
    labels = [f"{explanation.features[i]} = {_value_text(explanation.values[i])}" for i in shown]
    steps = [shap_values[i] for i in shown]
    if len(shown) < len(order):
        labels.append(f"{len(order) - len(shown)} other features")
        steps.append(float(shap_values[order[len(shown) :]].sum()))
    scores = explanation.base + np.concatenate([[0.0], np.cumsum(steps)])
    scores[-1] = explanation.output  # the alert's number exactly (additivity holds to 1e-6)
    return labels, np.asarray(to_probability(scores), dtype=np.float64)


def probability_waterfall(
    explanation: Explanation,
    out: Path,
    to_probability: Callable[[np.ndarray], np.ndarray],
    *,
    alert_id: str | None = None,
    max_display: int = 12,
) -> Path:
    """A waterfall in probability: from the PD at the base value to the row's PD.

    One bar per feature (largest ``|SHAP|`` first, :func:`probability_path`), red where it
    raises the PD and blue where it lowers it, labelled with its change in percentage
    points; the x axis is the PD in percent and the last line is the PD the alert states.
    """
    from matplotlib.ticker import PercentFormatter

    plt = _pyplot()
    labels, path = probability_path(explanation, to_probability, max_display)
    n = len(labels)
    fig, ax = plt.subplots(figsize=(8.5, 0.42 * n + 2.2))
    y = np.arange(n)[::-1] + 1.0  # the first step on top, the PD at the bottom (y = 0)
    lo, hi = float(path.min()), float(path.max())
    pad = max(hi - lo, 0.01) * 0.18
    for k in range(n):
        before, after = path[k], path[k + 1]
        color = "#D81B60" if after >= before else "#1E88E5"
        ax.barh(y[k], after - before, left=before, height=0.6, color=color)
        ax.text(
            max(before, after) + pad * 0.08,
            y[k],
            f"{(after - before) * 100:+.1f} pp",
            va="center",
            ha="left",
            fontsize=8,
            color=color,
        )
        if k:
            ax.plot([before, before], [y[k - 1] - 0.3, y[k] + 0.3], color="0.6", lw=0.6)
    ax.plot([path[-1], path[-1]], [y[-1] - 0.3, 0.3], color="0.6", lw=0.6)
    ax.barh(0.0, path[-1] - path[0], left=path[0], height=0.6, color="0.35")
    ax.text(
        path[-1] + pad * 0.08 if path[-1] >= path[0] else path[-1] - pad * 0.08,
        0.0,
        f"PD {path[-1]:.1%}",
        va="center",
        ha="left" if path[-1] >= path[0] else "right",
        fontsize=9,
        fontweight="bold",
    )
    ax.axvline(path[0], color="0.5", lw=0.8, ls="--", zorder=0)
    ax.axvline(path[-1], color="0.2", lw=0.8, ls=":", zorder=0)
    ax.set_yticks([0.0, *y], [f"PD {path[-1]:.1%}", *labels], fontsize=9)
    ax.set_ylim(-0.7, n + 0.7)
    ax.set_xlim(max(0.0, lo - pad), min(1.0, hi + 2.5 * pad))
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0 if hi - lo > 0.05 else 1))
    ax.set_xlabel(
        f"probability of default (dashed: {path[0]:.1%} at the model's base value; "
        "steps in order, largest |SHAP| first)",
        fontsize=8,
    )
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    head = f"{explanation.model} {explanation.model_version}"
    subject = f" - {alert_id}" if alert_id else ""
    ax.set_title(
        f"{head}{subject}: PD {path[-1]:.1%} (base {path[0]:.1%})", fontsize=10, loc="left"
    )
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _value_text(value: float | str | None) -> str:
    """A feature value for a label: numbers without trailing zeros, text as is."""
    if value is None:
        return "missing"
    if isinstance(value, str):
        return value
    return f"{value:,.6g}" if abs(value) >= 1e4 else f"{value:.6g}"


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
