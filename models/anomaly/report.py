"""The evaluation report of ``riskstream anomaly evaluate``: Markdown tables, JSON, plots.

Writes into a directory: ``report.md`` (every table), ``results.json`` (the same
figures, machine-readable) and PNG plots: the transactions' precision-recall curves,
recall per kind of price anomaly, and one symbol's prices with the alerts and the
injected windows.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from models.anomaly.evaluate_prices import PriceEvaluation
from models.anomaly.evaluate_transactions import (
    BASELINE_CP100,
    BASELINES,
    SCENARIOS,
    THRESHOLDS,
    TransactionEvaluation,
)


def _f(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def transactions_markdown(ev: TransactionEvaluation) -> list[str]:
    lines = [
        "## Transactions: fraud-handbook data, published baseline split",
        "",
        f"Data: `{ev.data}` (sha256 `{ev.sha256[:16]}...`). Training week 2018-07-25..07-31: "
        f"{ev.train_rows:,} transactions, {ev.train_frauds} frauds; 7-day feedback delay; "
        f"test week 2018-08-08..08-14: {ev.rows:,} transactions, {ev.frauds} frauds. Features "
        "computed by the stream's own stage.",
        "",
        "| detector | ROC AUC | average precision | card precision@100 | us/row |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in sorted(ev.results, key=lambda r: -r.ap):
        lines.append(
            f"| {r.name} | {_f(r.auc)} | {_f(r.ap)} | {_f(r.cp100)} | {_f(r.seconds_per_row * 1e6, 1)} |"
        )
    for name, auc, ap in BASELINES:
        cp = _f(BASELINE_CP100, 2) if name.startswith("random") else ""
        lines.append(f"| {name} | {_f(auc)} | {_f(ap)} | {cp} | |")
    lines += [
        "",
        "Alerts on the test week at calibrated-score thresholds (alerts per day, precision, recall):",
        "",
        "| detector | " + " | ".join(f"{t}" for t in THRESHOLDS) + " |",
        "|---|" + "---|" * len(THRESHOLDS),
    ]
    for r in sorted(ev.results, key=lambda r: -r.ap):
        cells = [
            f"{a['alerts_per_day']:.1f}/d, P {_f(a['precision'], 2)}, R {_f(a['recall'], 2)}"
            for a in (r.alerts[t] for t in THRESHOLDS)
        ]
        lines.append(f"| {r.name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Recall per fraud scenario at score >= {THRESHOLDS[0]}:",
        "",
        "| detector | " + " | ".join(SCENARIOS.values()) + " |",
        "|---|" + "---:|" * len(SCENARIOS),
    ]
    for r in sorted(ev.results, key=lambda r: -r.ap):
        lines.append(
            f"| {r.name} | "
            + " | ".join(_f(r.scenario_recall.get(k, float("nan")), 2) for k in SCENARIOS)
            + " |"
        )
    return lines


def prices_markdown(ev: PriceEvaluation) -> list[str]:
    s = ev.setup
    kinds = list(ev.anomalies)
    lines = [
        "## Prices: seeded streams with injected, labelled anomalies",
        "",
        f"{s.symbols} symbols x {s.ticks:,} ticks (seed {s.seed}; {ev.ticks:,} ticks after stale "
        f"gaps), anomalies: "
        + ", ".join(f"{k} {n}" for k, n in ev.anomalies.items())
        + f"; jumps >= {s.min_jump:g} conditional sigmas. Calm run: {ev.calm_ticks:,} ticks "
        f"(seed {s.calm_seed}). Alert policy: score >= {ev.threshold}, one alert per episode "
        "(re-armed after 10 calm ticks).",
        "",
    ]
    if ev.validation:
        lines += [
            f"The threshold {ev.threshold} was chosen on validation streams (seeds {s.seed + 100} "
            f"and {s.calm_seed + 100}): the lowest whose calm false alarms stay within 0.8 per "
            "10,000 ticks.",
            "",
            "| threshold | validation false alarms /10k calm | validation jump recall@3 | "
            "validation flash_crash recall@3 |",
            "|---:|---:|---:|---:|",
        ]
        for row in ev.validation:
            lines.append(
                f"| {row['threshold']} | {_f(row['false_alarms_calm'], 2)} | "
                f"{_f(row.get('jump', float('nan')), 2)} | {_f(row.get('flash_crash', float('nan')), 2)} |"
            )
        lines.append("")
    for section, title in (
        ("stream", "Stream detectors (features from the book's step)"),
        (
            "series",
            f"Series detectors (`riskstream anomaly score` on each price series; first "
            f"{s.series_symbols} symbols)",
        ),
    ):
        runs = [r for r in ev.runs if r.section == section]
        if not runs:
            continue
        lines += [
            f"### {title}",
            "",
            "Recall within 3 ticks / recall (window + 20 ticks) / median delay in ticks:",
            "",
            "| detector | "
            + " | ".join(kinds)
            + " | precision | false alarms /10k calm | us/tick |",
            "|---|" + "---|" * len(kinds) + "---:|---:|---:|",
        ]
        for r in runs:
            cells = []
            for k in kinds:
                kr = r.kind(k)
                cells.append(
                    "-"
                    if kr is None
                    else f"{kr.recall_fast:.2f} / {kr.recall:.2f} / {_f(kr.delay_median, 0)}"
                )
            lines.append(
                f"| {r.name} | "
                + " | ".join(cells)
                + f" | {_f(r.precision, 3)} | {_f(r.false_alarms_calm, 2)} | {_f(r.us_per_tick, 1)} |"
            )
        lines.append("")
    default = next((r for r in ev.runs if r.section == "stream"), None)
    if default is not None and default.detail.get("sweep"):
        lines += [
            f"### Threshold sweep, stream detector `{default.name}`",
            "",
            "| threshold | false alarms /10k calm | precision | "
            + " | ".join(f"{k} recall@3" for k in kinds)
            + " |",
            "|---:|---:|---:|" + "---:|" * len(kinds),
        ]
        for row in default.detail["sweep"]:
            lines.append(
                f"| {row['threshold']} | {_f(row['false_alarms_calm'], 2)} | {_f(row['precision'])} | "
                + " | ".join(_f(row.get(k, float("nan")), 2) for k in kinds)
                + " |"
            )
        missed = default.detail.get("missed", {})
        lines += [
            "",
            "Sizes (conditional sigmas) of the jumps and flash crashes the default missed within "
            "3 ticks: " + (", ".join(f"{k}: {v}" for k, v in missed.items()) or "none") + ".",
        ]
    return lines


def _plots(
    out: Path, tx: TransactionEvaluation | None, prices: PriceEvaluation | None
) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    if tx is not None:
        fig, ax = plt.subplots(figsize=(6, 4.5))
        for r in sorted(tx.results, key=lambda r: -r.ap):
            recall, precision = r.curve
            ax.plot(recall, precision, label=f"{r.name} (AP {r.ap:.3f})", lw=1.2)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title("Fraud handbook, test week 2018-08-08..14")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "transactions_pr.png", dpi=110)
        plt.close(fig)
        files.append("transactions_pr.png")
    if prices is not None:
        runs = [r for r in prices.runs if r.section == "stream"]
        kinds = list(prices.anomalies)
        fig, ax = plt.subplots(figsize=(8, 4))
        width = 0.8 / max(len(runs), 1)
        for j, r in enumerate(runs):
            values = [(r.kind(k).recall_fast if r.kind(k) else 0.0) for k in kinds]
            ax.bar(np.arange(len(kinds)) + j * width, values, width, label=r.name)
        ax.set_xticks(np.arange(len(kinds)) + 0.4 - width / 2, kinds)
        ax.axhline(0.9, color="k", lw=0.8, ls="--")
        ax.set_ylabel("recall within 3 ticks")
        ax.set_title(f"Price anomalies: recall within 3 ticks (threshold {prices.threshold})")
        ax.legend(fontsize=7, ncol=3)
        fig.tight_layout()
        fig.savefig(out / "prices_recall.png", dpi=110)
        plt.close(fig)
        files.append("prices_recall.png")
        ex = prices.example
        if ex:
            fig, (a1, a2) = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True)
            a1.plot(ex["tick"], ex["price"], lw=0.6, color="k")
            colors = dict(zip(kinds, plt.cm.tab10.colors, strict=False))
            for kind, start, end in ex["windows"]:
                for ax in (a1, a2):
                    if end - start < 30:  # too narrow for a span at this scale: a line
                        ax.axvline(start, color=colors[kind], alpha=0.8, lw=2)
                    else:
                        ax.axvspan(start, end + 1, color=colors[kind], alpha=0.35, lw=0)
            fired = ex["fired"]
            a1.plot(ex["tick"][fired], ex["price"][fired], "rv", ms=5, label="alert")
            a2.plot(ex["tick"], -np.log10(np.maximum(1 - ex["score"], 1e-12)), lw=0.5)
            a2.axhline(-np.log10(1 - prices.threshold), color="r", lw=0.8, ls="--")
            a2.set_ylabel("surprisal -log10(1 - score)")
            a1.set_ylabel(f"{ex['symbol']} price")
            a2.set_xlabel("tick")
            handles = [plt.Rectangle((0, 0), 1, 1, color=colors[k], alpha=0.35) for k in kinds]
            a1.legend(handles, kinds, fontsize=7, ncol=6, loc="upper left")
            fig.tight_layout()
            fig.savefig(out / "prices_example.png", dpi=110)
            plt.close(fig)
            files.append("prices_example.png")
    return files


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    return obj


def write_report(
    out: Path, tx: TransactionEvaluation | None, prices: PriceEvaluation | None
) -> Path:
    """Write ``report.md``, ``results.json`` and the plots into ``out``; returns the report."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines = ["# Anomaly detection: evaluation", ""]
    results: dict[str, Any] = {}
    if tx is not None:
        lines += [*transactions_markdown(tx), ""]
        results["transactions"] = {
            "rows": tx.rows,
            "frauds": tx.frauds,
            "train_rows": tx.train_rows,
            "train_frauds": tx.train_frauds,
            "sha256": tx.sha256,
            "detectors": {
                r.name: {
                    "auc": r.auc,
                    "ap": r.ap,
                    "card_precision_at_100": r.cp100,
                    "alerts": r.alerts,
                    "scenario_recall": r.scenario_recall,
                    "us_per_row": r.seconds_per_row * 1e6,
                }
                for r in tx.results
            },
        }
    if prices is not None:
        lines += [*prices_markdown(prices), ""]
        results["prices"] = {
            "setup": vars(prices.setup),
            "threshold": prices.threshold,
            "validation": prices.validation,
            "ticks": prices.ticks,
            "calm_ticks": prices.calm_ticks,
            "anomalies": prices.anomalies,
            "runs": [
                {
                    "name": r.name,
                    "section": r.section,
                    "precision": r.precision,
                    "false_alarms_per_10k_calm": r.false_alarms_calm,
                    "false_alarms_per_10k_outside_windows": r.false_alarms_outside,
                    "alerts": r.alerts,
                    "us_per_tick": r.us_per_tick,
                    "kinds": [vars(k) for k in r.kinds],
                    "detail": r.detail,
                }
                for r in prices.runs
            ],
        }
    files = _plots(out, tx, prices)
    lines += ["## Plots", ""] + [f"![{f}]({f})" for f in files] + [""]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    (out / "results.json").write_bytes(
        orjson.dumps(_jsonable(results), option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
    )
    return report
