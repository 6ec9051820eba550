"""The training report: learning curves (PNG) and a Markdown summary beside the models."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from models.deep.train import TrainResult


def plot_curves(result: TrainResult, out: Path) -> list[Path]:
    """One PNG per model: each fold's training and validation QLIKE per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for kind, fits in result.folds.items():
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for year, fit in zip(result.options.folds, fits, strict=True):
            epochs = range(1, len(fit.val_curve) + 1)
            (line,) = ax.plot(epochs, fit.val_curve, lw=1.2, label=f"validation {year}")
            ax.plot(epochs, fit.train_curve, lw=0.8, ls="--", color=line.get_color())
        final = result.final[kind].train_curve
        ax.plot(range(1, len(final) + 1), final, lw=1.5, color="k", label="final fit (train)")
        ax.axvline(result.chosen_epochs[kind], color="0.5", ls=":", label="epochs chosen")
        ax.set_xlabel("epoch")
        ax.set_ylabel("QLIKE (dashed: training)")
        ax.set_title(f"{kind}: walk-forward learning curves")
        ax.legend(fontsize=8)
        path = out / f"learning_curves_{kind}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def write_report(result: TrainResult, out: Path) -> list[Path]:
    """``out/training_report.md`` and (``options.plots``) the learning curves."""
    o = result.options
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Deep volatility models: training report",
        "",
        "Written by `riskstream deep train --out onnx/deep"
        + (f" --models lstm --target returns --epochs {o.epochs}" if o.target == "returns" else "")
        + "` (seed "
        f"{o.seed}, {o.threads} thread(s)). Target: next-day "
        + (
            "squared log return of the S&P 500 (returns only, its RV unused)"
            if o.target == "returns"
            else "log realized variance of the S&P 500 (Oxford-Man, 5-minute)"
        )
        + f"; loss `{o.loss}`; window {o.window} days; "
        f"training targets up to {o.train_end}; test {o.test_start} to {o.test_end}, "
        "scored once.",
        "",
        f"Data: `{Path(result.series.source).name}`, sha256 `{result.series.sha256}`.",
        "",
        "## Walk-forward validation (QLIKE per validation year)",
        "",
        "| model | " + " | ".join(str(y) for y in o.folds) + " | mean | epochs chosen |",
        "|---|" + "---|" * (len(o.folds) + 2),
    ]
    for kind, fits in result.folds.items():
        e = result.chosen_epochs[kind]
        vals = [f.val_curve[e - 1] for f in fits]
        lines.append(
            f"| {kind} | "
            + " | ".join(f"{v:.4f}" for v in vals)
            + f" | {sum(vals) / len(vals):.4f} | {e} |"
        )
    lines += [
        "",
        "## Test period (targets in it; the exported models)",
        "",
        "| model | n | QLIKE | MSE (%^2) | MSE of log | DM vs GARCH feature | p | training s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind, m in result.test.items():
        lines.append(
            f"| {kind} | {m['n']} | {m['qlike']:.4f} | {m['mse_pct2']:.4f} | {m['mse_log']:.4f} | "
            f"{m['dm_vs_garch_feature']:.2f} | {m['dm_p_vs_garch_feature']:.3g} | "
            f"{result.seconds[kind]:.0f} |"
        )
    b = result.baseline_test
    lines += [
        f"| GARCH(1,1) feature (fixed parameters) | {b['n']} | {b['qlike']:.4f} | "
        f"{b['mse_pct2']:.4f} | {b['mse_log']:.4f} | | | |",
        "",
        "The full comparison with the engine's refitted models (EWMA, GARCH, GJR, HAR-RV) and the",
        "VaR each implies is `riskstream deep compare`.",
        "",
    ]
    written = []
    if o.plots:
        for path in plot_curves(result, out):
            lines.append(f"![{path.stem}]({path.name})")
            written.append(path)
    path = out / "training_report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [path, *written]
