"""Backtest evaluation of an offline run, and the report ``riskstream backtest`` writes.

For every symbol, method and VaR level, over the evaluation period: violation rate,
Kupiec POF, Christoffersen independence and conditional coverage, the Basel traffic
light over the whole period and the share of rolling windows (``rolling`` observations)
in the green zone, and the pinball loss of the VaR as a quantile forecast. For every
method at the ES level: the Acerbi-Szekely Z2 test. Where the prices carry realized
variance: QLIKE and squared error of each volatility model's variance forecast, with a
Diebold-Mariano test against GARCH(1,1).

Each method is judged on its own sample: rows in the period where it has a forecast.
The volatility table uses the rows where every model and the realized variance exist,
so its comparisons are paired.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.core.backtest.coverage import coverage, green_share
from engine.core.backtest.stats import (
    acerbi_szekely_z2,
    diebold_mariano,
    pinball_loss,
    qlike,
    squared_error,
)
from engine.core.var.horizon import horizon_factor, horizon_windows
from engine.offline.runs import OfflineRun, log_returns


@dataclass
class BacktestTables:
    var: pd.DataFrame
    es: pd.DataFrame
    vol: pd.DataFrame | None
    period: tuple[str, str]
    in_period: np.ndarray
    """Per row of the run: inside the evaluation period (the plots show only these rows)."""
    horizon: int = 1
    """Steps each VaR/ES in the tables is for (judged on non-overlapping windows when > 1)."""


def _period_mask(run: OfflineRun, start: str | None, end: str | None) -> np.ndarray:
    ts = run.frame["timestamp"]
    mask = np.ones(len(ts), bool)
    if start:
        mask &= (ts >= pd.Timestamp(start, tz="UTC")).to_numpy()
    if end:
        mask &= (
            ts <= pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1) - pd.Timedelta(milliseconds=1)
        ).to_numpy()
    return mask


def var_row(
    symbol: str,
    method: str,
    level: float,
    hits: np.ndarray,
    returns: np.ndarray,
    var: np.ndarray,
    rolling: int,
) -> dict[str, object]:
    """One row of the VaR table: a method's forecasts ``var`` at ``level`` for ``symbol``.

    ``hits`` (losses above the forecast made before them), ``returns`` and ``var`` are
    aligned, finite and in time order; the row holds the coverage tests
    (:func:`~engine.core.backtest.coverage.coverage`), the share of green rolling
    ``rolling``-long windows and the pinball loss.
    """
    alpha = 1 - level
    return {
        "symbol": symbol,
        "method": method,
        "level": level,
        **coverage(hits, alpha).row(),
        f"green_share_{rolling}": green_share(hits, rolling, alpha),
        "pinball": pinball_loss(returns, var, level),
    }


def evaluate(
    run: OfflineRun,
    *,
    start: str | None = None,
    end: str | None = None,
    rolling: int = 250,
    horizon: int = 1,
) -> BacktestTables:
    """Compute the backtest tables (see the module docstring).

    ``horizon`` > 1: each method's ``horizon``-step VaR/ES (:mod:`engine.core.var.horizon`)
    is judged against the realised ``horizon``-step return on non-overlapping windows
    (:func:`horizon_tables`); the volatility table stays one-step.
    """
    if horizon > 1:
        return horizon_tables(run, start=start, end=end, rolling=rolling, horizon=horizon)
    returns = log_returns(run)
    period = _period_mask(run, start, end) & np.isfinite(returns)
    symbols = run.frame["symbol"].to_numpy()
    var_rows, es_rows, vol_rows = [], [], []
    es_level = max(set(run.levels) - set(run.var_levels), default=run.levels[-1])
    es_i = run.level_index(es_level)
    for symbol in pd.unique(symbols):
        mine = period & (symbols == symbol)
        for j, method in enumerate(run.methods):
            for li, level in enumerate(run.var_levels):
                vb = run.var_before[:, j, run.level_index(level)]
                sample = mine & np.isfinite(vb)
                if not sample.any():
                    continue
                hits = run.hits[sample, j, li]
                var_rows.append(
                    var_row(symbol, method, level, hits, returns[sample], vb[sample], rolling)
                )
            vb, eb = run.var_before[:, j, es_i], run.es_before[:, j, es_i]
            sample = mine & np.isfinite(vb) & np.isfinite(eb)
            if sample.any():
                es_rows.append(
                    _es_row(symbol, method, es_level, returns[sample], vb[sample], eb[sample])
                )
        if "rv" in run.frame:
            vol_rows += _vol_rows(run, symbol, mine)
    var = pd.DataFrame(var_rows)
    vol = pd.DataFrame(vol_rows) if vol_rows else None
    ts = run.frame["timestamp"][period]
    span = (str(ts.min())[:10], str(ts.max())[:10]) if len(ts) else ("", "")
    return BacktestTables(var=var, es=pd.DataFrame(es_rows), vol=vol, period=span, in_period=period)


def horizon_tables(
    run: OfflineRun, *, start: str | None, end: str | None, rolling: int, horizon: int
) -> BacktestTables:
    """The VaR and ES tables of ``horizon``-step forecasts on non-overlapping windows.

    Per symbol, method and level: the forecast made at a window's first row (VaR/ES of
    the next step scaled by :func:`~engine.core.var.horizon.horizon_factor`) against the
    sum of the window's ``horizon`` returns; windows start at the method's first forecast
    in the period and every ``horizon`` rows after it, whole windows only. ``n`` in the
    tables counts windows, not rows.
    """
    returns = log_returns(run)
    period = _period_mask(run, start, end)
    symbols = run.frame["symbol"].to_numpy()
    factor = horizon_factor(horizon)
    var_rows, es_rows = [], []
    es_level = max(set(run.levels) - set(run.var_levels), default=run.levels[-1])
    es_i = run.level_index(es_level)
    for symbol in pd.unique(symbols):
        mine = np.flatnonzero(period & (symbols == symbol))
        r = returns[mine]
        for j, method in enumerate(run.methods):
            for level in run.var_levels:
                va = run.var[mine, j, run.level_index(level)] * factor
                _, realised, judged = horizon_windows(r, va, horizon)
                if judged.size == 0:
                    continue
                hits = -realised > judged
                var_rows.append(var_row(symbol, method, level, hits, realised, judged, rolling))
            va = run.var[mine, j, es_i] * factor
            ea = run.es[mine, j, es_i] * factor
            rows, realised, judged = horizon_windows(r, va, horizon)
            es_w = ea[rows]
            ok = np.isfinite(judged) & np.isfinite(es_w)
            if ok.any():
                es_rows.append(
                    _es_row(symbol, method, es_level, realised[ok], judged[ok], es_w[ok])
                )
    ts = run.frame["timestamp"][period]
    span = (str(ts.min())[:10], str(ts.max())[:10]) if len(ts) else ("", "")
    return BacktestTables(
        var=pd.DataFrame(var_rows),
        es=pd.DataFrame(es_rows),
        vol=None,
        period=span,
        in_period=period,
    )


def _vol_rows(run: OfflineRun, symbol: str, mine: np.ndarray) -> list[dict[str, object]]:
    rv = run.frame["rv"].to_numpy(dtype=float)
    forecasts = {v: run.sigma_before[v] ** 2 for v in run.sigma_before}
    sample = mine & np.isfinite(rv) & (rv > 0)
    for var in forecasts.values():
        sample &= np.isfinite(var) & (var > 0)
    if not sample.any():
        return []
    losses = {v: qlike(rv[sample], f[sample]) for v, f in forecasts.items()}
    errors = {v: squared_error(rv[sample], f[sample]) for v, f in forecasts.items()}
    rows = []
    for v in forecasts:
        dm = (
            diebold_mariano(losses[v], losses["garch"])
            if "garch" in losses and v != "garch"
            else None
        )
        rows.append(
            {
                "symbol": symbol,
                "model": v,
                "n": int(sample.sum()),
                "qlike": float(losses[v].mean()),
                "mse": float(errors[v].mean()),
                "dm_vs_garch": None if dm is None else dm.statistic,
                "dm_p_vs_garch": None if dm is None else dm.p_value,
            }
        )
    ranked = sorted(rows, key=lambda r: r["qlike"])  # type: ignore[arg-type,return-value]
    for rank, row in enumerate(ranked, start=1):
        row["qlike_rank"] = rank
    return rows


# --- the report ---------------------------------------------------------------------------


def _markdown(frame: pd.DataFrame, floats: str = "{:.4g}") -> str:
    def cell(value: object) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        if isinstance(value, float):
            return floats.format(value)
        return str(value)

    head = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def _horizon_note(run: OfflineRun, tables: BacktestTables) -> list[str]:
    """What one observation of the tables is, when it is not one row of the file."""
    step = "session" if run.bars == "session" else "row"
    lines = []
    if run.bars == "session":
        lines.append(
            "Session bars: one observation per session close, its close-to-close log return."
        )
    if tables.horizon > 1:
        lines.append(
            f"Horizon {tables.horizon} {step}s: each VaR/ES (the one-step forecast times "
            f"sqrt({tables.horizon})) is judged against the realised {tables.horizon}-{step} "
            "return on non-overlapping windows; n counts windows. The plots show one-step "
            "forecasts."
        )
    return lines


def write_report(
    run: OfflineRun,
    tables: BacktestTables,
    out: Path,
    *,
    published: str,
    rolling: int = 250,
    sections: list[str] | None = None,
) -> list[Path]:
    """Write CSV and Markdown tables and the plots to ``out``; returns the files written.

    ``sections``: Markdown lines appended to the report (e.g. the model comparison).
    """
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in (
        ("var_backtest", tables.var),
        ("es_backtest", tables.es),
        ("vol_forecasts", tables.vol),
    ):
        if frame is not None and not frame.empty:
            path = out / f"{name}.csv"
            frame.to_csv(path, index=False)
            written.append(path)
    lines = [
        "# Backtest report",
        "",
        f"Evaluation period {tables.period[0]} to {tables.period[1]}; published method `{published}`.",
        "Each VaR is the forecast made before the return it is judged against. p-values below 0.05",
        f"reject; zone is the Basel traffic light over the whole period; green share is over rolling {rolling}-observation windows.",
        *_missing_note(run, tables),
        *_horizon_note(run, tables),
        "",
        "## VaR",
        "",
        _markdown(tables.var),
        "",
        "## Expected shortfall (Acerbi-Szekely Z2; negative means ES too small)",
        "",
        _markdown(tables.es),
    ]
    if tables.vol is not None:
        lines += [
            "",
            "## Volatility against realized variance (QLIKE: lower is better)",
            "",
            _markdown(tables.vol.sort_values(["symbol", "qlike_rank"])),
        ]
    if sections:
        lines += ["", *sections]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    written.append(path)
    written += _plots(run, out, published, tables.in_period)
    return written


def _missing_note(run: OfflineRun, tables: BacktestTables) -> list[str]:
    """A line naming the methods that made no forecast in the period, and why HAR would not."""
    missing = [m for m in run.methods if m not in set(tables.var["method"])]
    if not missing:
        return []
    why = (
        " (HAR-RV needs realized variance: the file has no 'rv' column)"
        if "rv" not in run.frame and any(m.startswith("har-") for m in missing)
        else ""
    )
    return ["", f"No forecast in the period for: {', '.join(missing)}{why}."]


#: VaR line colours by position in ``run.var_levels`` (lowest level first): dark, saturated,
#: drawn above the returns and the breach markers so a breach never hides its line.
VAR_COLORS = ("#E65100", "#B71C1C", "#4A148C")


def _plots(run: OfflineRun, out: Path, published: str, in_period: np.ndarray) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    returns = log_returns(run)
    symbols = run.frame["symbol"].to_numpy()
    ts = run.frame["timestamp"].to_numpy()
    j = run.method_index(published)
    written = []
    for symbol in pd.unique(symbols[in_period]):
        mine = (symbols == symbol) & in_period
        fig, ax = plt.subplots(figsize=(12, 5))
        ax.plot(ts[mine], returns[mine], lw=0.4, color="0.6", label="log return", zorder=1)
        for li, level in enumerate(run.var_levels):
            color = VAR_COLORS[li % len(VAR_COLORS)]
            vb = run.var_before[mine, j, run.level_index(level)]
            hit = run.hits[mine, j, li]
            # Breaches: hollow markers under the line, so the VaR stays visible through them.
            ax.scatter(
                ts[mine][hit],
                returns[mine][hit],
                s=22 + 14 * li,
                marker="o",
                facecolors="none",
                edgecolors=color,
                linewidths=0.8,
                zorder=2,
                label=f"breach of VaR {level:.0%} ({hit.sum()})",
            )
            ax.plot(
                ts[mine],
                -vb,
                lw=1.1,
                color=color,
                zorder=3,
                label=f"-VaR {level:.0%} ({published})",
            )
        ax.axhline(0.0, color="0.8", lw=0.5, zorder=0)
        ax.set_ylabel("log return")
        ax.set_title(f"{symbol}: returns, VaR and breaches ({published})")
        ax.legend(loc="lower left", fontsize=8, ncols=2)
        path = out / f"var_{symbol}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
        if "rv" in run.frame and np.isfinite(run.frame["rv"].to_numpy(dtype=float)[mine]).any():
            path = out / f"vol_{symbol}.png"
            _vol_panels(
                run, mine, f"{symbol}: one-step volatility forecasts against realised", path
            )
            written.append(path)
    return written


def _vol_panels(run: OfflineRun, mine: np.ndarray, title: str, path: Path) -> None:
    """One panel per volatility model, all on the same axes, over the realised volatility."""
    import matplotlib.pyplot as plt

    ts = run.frame["timestamp"].to_numpy()[mine]
    realised = np.sqrt(run.frame["rv"].to_numpy(dtype=float)[mine])
    models = list(run.sigma_before)
    cols = 1 if len(models) <= 3 else 2
    rows = -(-len(models) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(12, 1.9 * rows + 1.0), sharex=True, sharey=True, squeeze=False
    )
    for ax, model in zip(axes.flat, models, strict=False):
        ax.plot(ts, realised, lw=0.5, color="0.7", label="realised (sqrt rv)")
        ax.plot(ts, run.sigma_before[model][mine], lw=0.9, color="#1565C0", label="forecast")
        ax.set_yscale("log")
        ax.set_title(model, fontsize=9, loc="left")
    for k in range(len(models), rows * cols):  # an empty slot: the panel above shows the dates
        axes.flat[k].set_visible(False)
        axes.flat[k - cols].xaxis.set_tick_params(labelbottom=True)
    axes.flat[0].legend(loc="upper right", fontsize=7)
    fig.supylabel("standard deviation of the next log return (log scale)", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _es_row(
    symbol: str,
    method: str,
    es_level: float,
    returns: np.ndarray,
    var: np.ndarray,
    es: np.ndarray,
) -> dict[str, Any]:
    """One ES backtest row: Acerbi-Szekely Z2 of the losses ``-returns`` against the
    forecasts ``var`` and ``es`` made before them (positive amounts, the same rows)."""
    z2 = acerbi_szekely_z2(-returns, var, es, 1 - es_level)
    return {
        "symbol": symbol,
        "method": method,
        "level": es_level,
        "n": int(returns.size),
        "z2": z2.statistic,
        "z2_p": z2.p_value,
        "rejected_5pct": z2.rejects(),
    }
