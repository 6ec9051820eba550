"""Tables and plots of a breadth sweep, and the issue's targets judged on them.

``per_series.csv`` / ``per_series.md``: one row per series (tests, rates, losses, flags).
``aggregate.csv`` / ``aggregate.md``: shares of series meeting each target, overall and
per asset class, and the mean pinball losses. ``missing.csv``: sources and series that
gave nothing, and why. Plots: violation rates, pinball-loss ratios, Z2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from engine.bench.breadth.data import Missing
from engine.bench.breadth.evaluate import passes

TARGETS = {
    "tests_pass": ("Kupiec and Christoffersen (ind., cc) pass at 5%", 0.90),
    "rate_ok": ("99% violation rate <= 2.5%", 1.0),
    "constant_ok": ("constant VaR <= 60 observations", 1.0),
    "beats_both": ("pinball below RiskMetrics and HS-1000", 0.80),
    "es_ok": ("97.5% ES not rejected by Z2 at 5%", 0.80),
}


def markdown(frame: pd.DataFrame) -> str:
    """A GitHub table of ``frame``; floats with 4 significant digits.

    >>> print(markdown(pd.DataFrame({"a": [1.23456], "b": ["x"]})))
    | a | b |
    |---|---|
    | 1.235 | x |
    """

    def cell(v: object) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def flag(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the per-series target columns of :func:`~.evaluate.passes`."""
    flags = pd.DataFrame([passes(row) for _, row in table.iterrows()], index=table.index)
    flags["beats_both"] = flags["beats_riskmetrics"] & flags["beats_hs"]
    return pd.concat([table, flags], axis=1)


def aggregate(flagged: pd.DataFrame) -> pd.DataFrame:
    """Share of series meeting each target (all, then per class) and mean pinball losses."""
    rows = []
    for name, part in [("all", flagged), *flagged.groupby("class")]:
        row: dict[str, object] = {"group": name, "series": len(part)}
        for key in (*TARGETS, "beats_riskmetrics", "beats_hs"):
            row[key] = float(part[key].mean())
        row["mean_rate"] = float(part["rate"].mean())
        for col in [c for c in flagged.columns if c.startswith("pinball_")]:
            row[f"mean_{col}"] = float(part[col].mean())
        rows.append(row)
    return pd.DataFrame(rows)


def verdict(agg: pd.DataFrame) -> list[str]:
    """One line per target of the issue: measured share, required share, met or not."""
    overall = agg.iloc[0]
    lines = []
    for key, (label, need) in TARGETS.items():
        got = float(overall[key])
        lines.append(f"- {label}: {got:.1%} of series (target {need:.0%}): "
                     f"{'met' if got >= need else 'NOT met'}")  # fmt: skip
    mean_default = float(overall["mean_pinball_default"])
    others = {k: float(overall[f"mean_pinball_{k}"]) for k in ("ewma-normal", "hs")}
    below = all(mean_default < v for v in others.values())
    lines.append(
        f"- mean pinball loss {mean_default:.3e} vs RiskMetrics {others['ewma-normal']:.3e}, "
        f"HS-1000 {others['hs']:.3e}: {'met' if below else 'NOT met'}"
    )
    return lines


def _plots(flagged: pd.DataFrame, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.hist(flagged["rate"] * 100, bins=30, color="tab:blue")
    ax.axvline(1.0, color="k", ls="--", label="expected 1%")
    ax.axvline(2.5, color="r", ls=":", label="target ceiling 2.5%")
    ax.set(xlabel="99% VaR violation rate (%)", ylabel="series",
           title="Default method: violation rate per series")  # fmt: skip
    ax.legend()
    files.append(out / "violation_rates.png")
    fig.savefig(files[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 6))
    for cls, part in flagged.groupby("class"):
        ax.scatter(part["pinball_default"] / part["pinball_ewma-normal"],
                   part["pinball_default"] / part["pinball_hs"], label=cls, s=18)  # fmt: skip
    ax.axvline(1.0, color="k", lw=0.8)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set(xlabel="pinball loss: default / RiskMetrics", ylabel="pinball loss: default / HS-1000",
           title="Below 1 on both axes: the default beats both")  # fmt: skip
    ax.legend(fontsize=7)
    files.append(out / "pinball_ratios.png")
    fig.savefig(files[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.hist(np.clip(flagged["z2"].astype(float), -3, 1), bins=30, color="tab:green")
    ax.set(xlabel="Acerbi-Szekely Z2 (97.5% ES; negative: ES too small)", ylabel="series")
    files.append(out / "z2.png")
    fig.savefig(files[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)
    return files


def write(table: pd.DataFrame, missing: list[Missing], out: Path, title: str) -> list[str]:
    """Write the tables and plots into ``out``; returns the verdict lines."""
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        [{"source": m.source, "reason": m.reason, "install": m.install} for m in missing]
    ).to_csv(out / "missing.csv", index=False)
    flagged = flag(table)
    flagged.to_csv(out / "per_series.csv", index=False)
    agg = aggregate(flagged)
    agg.to_csv(out / "aggregate.csv", index=False)
    lines = verdict(agg)
    shown = ["series", "class", "frequency", "n", "default_method", "rate", "kupiec_p",
             "christoffersen_ind_p", "christoffersen_cc_p", "longest_constant_var",
             "pinball_default", "pinball_ewma-normal", "pinball_hs", "z2_p"]  # fmt: skip
    (out / "per_series.md").write_text(f"# {title}: per series\n\n" + markdown(flagged[shown]))
    (out / "aggregate.md").write_text(
        f"# {title}: aggregate\n\n{len(table)} series; {len(missing)} sources or series missing "
        f"(missing.csv).\n\n" + "\n".join(lines) + "\n\n"
        + markdown(agg) + "\n"
    )  # fmt: skip
    _plots(flagged, out)
    return lines
