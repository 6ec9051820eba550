"""The model comparison of ``riskstream deep compare``: every volatility model, one period.

One offline run of the stream's risk book (:func:`engine.offline.runs.run_prices`) with EWMA,
GARCH(1,1), GJR-GARCH, HAR-RV, the LSTM, the Transformer and ``combo`` (the
equal-weight average of the six variance forecasts), evaluated on the period by
:func:`engine.offline.backtest_report.evaluate`: QLIKE and MSE against realized variance with
Diebold-Mariano tests against GARCH(1,1) (paired: the days where every model and RV
exist), and the backtests of every VaR method each model implies. Machine-learned
quantile VaR (:mod:`engine.deep.quantile`) joins the VaR table when requested. The
report states which model wins on each criterion, whatever wins.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from engine.core import RiskSpec
from engine.errors import InputError
from engine.offline.backtest_report import BacktestTables, _markdown, evaluate, write_report
from engine.offline.runs import OfflineRun

COMPARED = ("ewma", "garch", "gjr", "har", "lstm", "transformer", "combo")
SHOWN_DISTRIBUTIONS = ("normal", "t", "fhs", "mix", "quantile")


@dataclass
class Comparison:
    run: OfflineRun
    tables: BacktestTables
    learned_var: pd.DataFrame | None = None
    """Rows of the machine-learned VaR models in the layout of ``tables.var``."""
    start: str | None = None
    """First day of the evaluation period (rows before it are the past the models knew)."""

    @property
    def vol(self) -> pd.DataFrame:
        assert self.tables.vol is not None
        return self.tables.vol.sort_values("qlike_rank").reset_index(drop=True)

    @property
    def var(self) -> pd.DataFrame:
        parts = [self.tables.var]
        if self.learned_var is not None and not self.learned_var.empty:
            parts.append(self.learned_var)
        return pd.concat(parts, ignore_index=True)


def comparison_spec(spec: RiskSpec, models: tuple[str, ...] = COMPARED) -> RiskSpec:
    """``spec`` with the compared models (GARCH(1,1)-normal as the nominal published method)."""
    method = "garch-normal" if "garch" in models else f"{models[0]}-normal"
    return replace(spec, vol_models=models, method=method)


def compare(
    run: OfflineRun, *, start: str | None, end: str | None, rolling: int = 250
) -> Comparison:
    """Evaluate a run of :func:`comparison_spec` (see the module docstring)."""
    if "rv" not in run.frame or not np.isfinite(run.frame["rv"].to_numpy(dtype=float)).any():
        raise InputError("the comparison needs realized variance: the prices have no 'rv' column")
    return Comparison(run, evaluate(run, start=start, end=end, rolling=rolling), start=start)


def rescaled_check(comparison: Comparison, start: str | None) -> dict[str, float] | None:
    """GARCH(1,1) rescaled to the level of realized variance, against the best learned model.

    Realized variance measures the trading day (no overnight move) while GARCH forecasts
    the close-to-close return's variance, so part of any QLIKE gap is a level difference.
    ``c = mean(RV / h_garch)`` over the rows *before* the period (the QLIKE-optimal
    constant, known in advance) puts GARCH on the RV level; the result is the rescaled
    GARCH's QLIKE on the comparison's paired sample and the Diebold-Mariano test of the
    best learned model against it. ``None`` without GARCH, a learned model or earlier rows.
    """
    from engine.core.backtest.stats import diebold_mariano, qlike

    run, vol = comparison.run, comparison.vol
    learned = vol[vol["model"].isin(["lstm", "transformer"])]
    if "garch" not in run.sigma_before or learned.empty or not start:
        return None
    best = str(learned.sort_values("qlike").iloc[0]["model"])
    rv = run.frame["rv"].to_numpy(dtype=float)
    ts = run.frame["timestamp"]
    h = run.sigma_before["garch"] ** 2
    before = (ts < pd.Timestamp(start, tz="UTC")).to_numpy() & np.isfinite(rv) & (rv > 0)
    before &= np.isfinite(h) & (h > 0)
    if before.sum() < 250:
        return None
    c = float(np.mean(rv[before] / h[before]))
    sample = comparison.tables.in_period & np.isfinite(rv) & (rv > 0)
    for v in comparison.vol["model"]:
        f = run.sigma_before[str(v)] ** 2
        sample &= np.isfinite(f) & (f > 0)
    scaled = qlike(rv[sample], c * h[sample])
    ours = qlike(rv[sample], run.sigma_before[best][sample] ** 2)
    dm = diebold_mariano(ours, scaled)
    return {
        "model": best,  # type: ignore[dict-item]
        "scale": c,
        "qlike_rescaled_garch": float(scaled.mean()),
        "qlike_best": float(ours.mean()),
        "dm": dm.statistic,
        "dm_p": dm.p_value,
    }


def var_summary(var: pd.DataFrame) -> pd.DataFrame:
    """One row per method: violation rate, Kupiec and CC p-values per level, zone and pinball at the top level."""
    rows = []
    levels = sorted(var["level"].unique())
    for (symbol, method), group in var.groupby(["symbol", "method"], sort=False):
        row: dict[str, object] = {"symbol": symbol, "method": method, "n": int(group["n"].max())}
        for level in levels:
            g = group[group["level"] == level]
            if g.empty:
                continue
            tag = f"{level * 100:g}"
            r = g.iloc[0]
            row[f"rate_{tag}"] = float(r["rate"])
            row[f"kupiec_p_{tag}"] = float(r["kupiec_p"])
            row[f"cc_p_{tag}"] = float(r["cc_p"])
            row[f"pinball_{tag}"] = float(r["pinball"])
        top = group[group["level"] == levels[-1]]
        if not top.empty:
            row["zone"] = top.iloc[0]["zone"]
        rows.append(row)
    return pd.DataFrame(rows)


def _passes(row: pd.Series, levels: list[str]) -> bool:
    return all(
        row.get(f"kupiec_p_{t}", 0) >= 0.05 and row.get(f"cc_p_{t}", 0) >= 0.05 for t in levels
    )


def verdict(comparison: Comparison) -> list[str]:
    """What wins, in words, from the tables (no judgement beyond the numbers)."""
    vol = comparison.vol
    lines = []
    best = vol.iloc[0]
    garch = vol[vol["model"] == "garch"].iloc[0] if (vol["model"] == "garch").any() else None
    lines.append(
        f"- Lowest QLIKE: **{best['model']}** ({best['qlike']:.4f}"
        + (
            f"; GARCH(1,1) {garch['qlike']:.4f}, Diebold-Mariano p = {best['dm_p_vs_garch']:.3g})."
            if garch is not None and best["model"] != "garch"
            else ")."
        )
    )
    best_mse = vol.sort_values("mse").iloc[0]
    lines.append(f"- Lowest MSE: **{best_mse['model']}** ({best_mse['mse']:.3g}).")
    learned = vol[vol["model"].isin(["lstm", "transformer"])]
    if garch is not None and not learned.empty:
        top = learned.sort_values("qlike").iloc[0]
        beats = top["qlike"] < garch["qlike"] and top["dm_p_vs_garch"] < 0.05
        lines.append(
            f"- Best learned model ({top['model']}) against GARCH(1,1) on QLIKE: "
            + (
                f"**beats it** (DM statistic {top['dm_vs_garch']:.2f}, p = {top['dm_p_vs_garch']:.3g})."
                if beats
                else f"does **not** beat it at 5% (QLIKE {top['qlike']:.4f} vs {garch['qlike']:.4f}, "
                f"p = {top['dm_p_vs_garch']:.3g})."
            )
        )
        har = vol[vol["model"] == "har"]
        if not har.empty:
            h = har.iloc[0]
            lines.append(
                f"- Against HAR-RV (QLIKE {h['qlike']:.4f}) the best learned model is "
                f"{'better' if top['qlike'] < h['qlike'] else 'worse'} ({top['qlike']:.4f})."
            )
    check = rescaled_check(comparison, comparison.start)
    if check is not None:
        lines.append(
            f"- Level check: GARCH(1,1) times {check['scale']:.3f} (mean RV / GARCH variance before "
            f"the period; RV leaves out the overnight move) has QLIKE {check['qlike_rescaled_garch']:.4f}; "
            f"{check['model']} ({check['qlike_best']:.4f}) against it: DM {check['dm']:.2f}, "
            f"p = {check['dm_p']:.3g}."
        )
    summary = var_summary(comparison.var)
    tags = [c.removeprefix("kupiec_p_") for c in summary.columns if c.startswith("kupiec_p_")]
    passing = summary[summary.apply(lambda r: _passes(r, tags), axis=1)]
    if tags:
        best_var = summary.sort_values(f"pinball_{tags[-1]}").iloc[0]
        lines.append(
            f"- VaR: {len(passing)} of {len(summary)} methods pass Kupiec and Christoffersen CC at "
            f"every level (p >= 0.05); lowest {tags[-1]}% pinball loss: **{best_var['method']}**"
            f" ({best_var[f'pinball_{tags[-1]}']:.3g})."
        )
    return lines


def write(comparison: Comparison, out: Path, *, rolling: int = 250) -> list[Path]:
    """The full backtest report plus ``comparison.md`` and its CSV tables."""
    run, tables = comparison.run, comparison.tables
    tables = replace(tables, var=comparison.var)
    sections = comparison_section(comparison)
    files = write_report(
        run, tables, out, published=run.methods[0], rolling=rolling, sections=sections
    )
    vol_csv, var_csv = out / "comparison_vol.csv", out / "comparison_var.csv"
    comparison.vol.to_csv(vol_csv, index=False)
    var_summary(comparison.var).to_csv(var_csv, index=False)
    path = out / "comparison.md"
    path.write_text("\n".join(sections) + "\n", encoding="utf-8")
    return [*files, vol_csv, var_csv, path]


def comparison_section(comparison: Comparison) -> list[str]:
    tables = comparison.tables
    vol = comparison.vol[
        ["model", "n", "qlike", "mse", "dm_vs_garch", "dm_p_vs_garch", "qlike_rank"]
    ].copy()
    vol["mse"] = vol["mse"] * 1e8  # decimal^4 -> percent^4
    vol = vol.rename(columns={"mse": "mse_pct4"})
    summary = var_summary(comparison.var)
    shown = summary[
        summary["method"].map(
            lambda m: m == "hs" or "-" not in m or m.split("-", 1)[1] in SHOWN_DISTRIBUTIONS
        )
    ]
    return [
        "## Model comparison: volatility and the VaR it implies",
        "",
        f"Period {tables.period[0]} to {tables.period[1]}. Volatility: one-step variance forecasts "
        "against realized variance on the days where every model has one (paired); QLIKE "
        "(lower is better), MSE in percent^4, Diebold-Mariano on QLIKE against GARCH(1,1) "
        "(negative: better than GARCH). combo is the equal-weight average of the other "
        "models' variances.",
        "",
        *verdict(comparison),
        "",
        _markdown(vol),
        "",
        "VaR (95% and 99%): violation rate, Kupiec and Christoffersen conditional-coverage "
        "p-values, pinball loss, Basel zone at the top level. Rows for the normal, t, FHS and mix "
        "methods of each model, historical simulation and the machine-learned quantile models "
        "(every method is in var_backtest.csv and comparison_var.csv).",
        "",
        _markdown(shown),
    ]
