"""Deep volatility against GARCH(1,1) on the breadth benchmark's daily series: QLIKE and Diebold-Mariano.

For each daily series (:func:`~.data.load_series` over :data:`~.sources.SOURCES`, the
most recent ``max_obs`` closes), ``riskstream vol forecast`` runs once per model (the
public CLI, in process) and every model is judged on the same rows: those where each
model has a forecast and the next close exists.

Alignment (the contract's): the ``sigma`` of row ``t`` forecasts the log return from
``t`` to the series' next row, ``r_{t+1}``, using closes up to and including ``t``. The
proxy of the variance is ``r_{t+1}^2`` (decimal^2): noisy but conditionally unbiased,
and QLIKE ranks variance forecasts consistently under it (Patton 2011). The loss is
QLIKE in the form ``r^2 / h + log h`` (``h = sigma^2``): it differs from
``r^2/h - log(r^2/h) - 1`` by a term that does not depend on the forecast, so means
rank and Diebold-Mariano statistics are identical, and it is finite on days with a
zero return. Diebold-Mariano (:func:`engine.core.backtest.stats.diebold_mariano`:
two-sided, Newey-West variance with ``floor(T^(1/3))`` lags) is computed on the loss
differences *deep minus GARCH*: negative means the deep model has the lower loss; a
series counts as *beaten* when the statistic is negative with ``p < 0.05``.

``python -m engine.bench.breadth.deep_vs_garch --models lstm_r --half hold-out`` prints the
per-series table and the share of series beaten, and writes the CSV (``--out``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from engine.bench.breadth.data import PriceSeries, load_series
from engine.bench.breadth.sources import SOURCES
from engine.bench.breadth.split import half
from engine.core.backtest.stats import diebold_mariano

BASELINE = "garch"
SIGNIFICANCE = 0.05
HalfChoice = Literal["all", "development", "hold-out"]


def qlike_loss(squared_return: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """QLIKE per day, ``r^2 / h + log h`` (decimal^2 inputs; see the module docstring).

    >>> qlike_loss(np.array([0.0, 1e-4]), np.array([1e-4, 1e-4])).round(3).tolist()
    [-9.21, -8.21]
    """
    h = np.asarray(variance, dtype=float)
    return np.asarray(squared_return, dtype=float) / h + np.log(h)


def vol_forecast(prices_csv: Path, model: str, workdir: Path) -> np.ndarray:
    """``riskstream vol forecast --model model`` on ``prices_csv``: sigma per row (NaN where none).

    Raises ``RuntimeError`` with the CLI's message when the command fails (a model that
    cannot forecast the file says why, and the series' row reports it).
    """
    from typer.testing import CliRunner

    from engine.cli import app

    out = workdir / f"vol_{model}.csv"
    args = ["vol", "forecast", "--prices", str(prices_csv), "--out", str(out), "--quiet"]
    result = CliRunner().invoke(app, [*args, "--model", model])
    if result.exit_code != 0:
        message = result.output.strip() or repr(result.exception)
        raise RuntimeError(f"vol forecast --model {model}: {message[-400:]}")
    return pd.read_csv(out)["sigma"].to_numpy(dtype=float)


def next_returns(prices: np.ndarray) -> np.ndarray:
    """Log return from each row to the next (decimal; NaN for the last row).

    >>> next_returns(np.array([100.0, 110.0, 99.0])).round(4).tolist()
    [0.0953, -0.1054, nan]
    """
    logp = np.log(np.asarray(prices, dtype=float))
    return np.append(logp[1:] - logp[:-1], np.nan)


def score(
    returns: np.ndarray, sigma: dict[str, np.ndarray], deep: Sequence[str], baseline: str = BASELINE
) -> dict[str, float | int | bool]:
    """Mean QLIKE of every model and DM of each deep model against ``baseline``, paired rows.

    ``returns[t]`` is ``r_{t+1}`` and ``sigma[m][t]`` its forecast made at ``t``. The
    columns are ``n``, ``qlike_<model>`` for every model, and per deep model ``d``:
    ``dm_<d>`` (negative: ``d`` has the lower loss), ``dm_p_<d>`` and ``beats_<d>``.
    """
    r = np.asarray(returns, dtype=float)
    sample = np.isfinite(r)
    for s in sigma.values():
        sample &= np.isfinite(s) & (s > 0)
    row: dict[str, float | int | bool] = {"n": int(sample.sum())}
    losses = {m: qlike_loss(r[sample] ** 2, s[sample] ** 2) for m, s in sigma.items()}
    for m, loss in losses.items():
        row[f"qlike_{m}"] = float(loss.mean()) if loss.size else float("nan")
    for d in deep:
        test = diebold_mariano(losses[d], losses[baseline])
        row[f"dm_{d}"] = test.statistic
        row[f"dm_p_{d}"] = test.p_value
        row[f"beats_{d}"] = bool(test.statistic < 0 and test.p_value < SIGNIFICANCE)
    return row


@dataclass(frozen=True, slots=True)
class Config:
    """What the evaluation runs: deep models, baseline, series, length cap, output."""

    out: Path = Path(".run/breadth/deep_vs_garch.csv")
    deep: tuple[str, ...] = ("lstm_r",)
    baseline: str = BASELINE
    pattern: str = "*"
    which: HalfChoice = "all"
    max_obs: int = 3000
    min_obs: int = 800


def evaluate_series(series: PriceSeries, config: Config, workdir: Path) -> dict[str, object]:
    """One series' row: its identity, then :func:`score`, or ``error`` when a model failed."""
    started = time.perf_counter()
    prices_csv = workdir / series.name / "prices.csv"
    series.to_price_csv(prices_csv, config.max_obs)
    kept = series.prices.iloc[-config.max_obs :]
    row: dict[str, object] = {
        "series": series.name,
        "class": series.asset_class,
        "half": half(series.name),
        "start": kept.index[0].strftime("%Y-%m-%d"),
        "end": kept.index[-1].strftime("%Y-%m-%d"),
        "prices": len(kept),
    }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the table reports what the CLI publishes
            sigma = {
                m: vol_forecast(prices_csv, m, prices_csv.parent)
                for m in (config.baseline, *config.deep)
            }
        row |= score(next_returns(kept.to_numpy()), sigma, config.deep, config.baseline)
    except (
        RuntimeError
    ) as exc:  # reported in the table, not raised: one series must not stop the run
        row["error"] = str(exc)
    row["seconds"] = round(time.perf_counter() - started, 1)
    return row


def daily_series(config: Config) -> list[PriceSeries]:
    """The daily breadth series matching the pattern and half, in the sources' order."""
    found, _missing = load_series(SOURCES, config.pattern, config.min_obs)
    return [
        s
        for s in found
        if s.frequency == "daily" and (config.which == "all" or half(s.name) == config.which)
    ]


def run(config: Config, series: Sequence[PriceSeries] | None = None, echo=print) -> pd.DataFrame:
    """Evaluate every series (default :func:`daily_series`); writes ``config.out`` as rows arrive."""
    chosen = daily_series(config) if series is None else list(series)
    config.out.parent.mkdir(parents=True, exist_ok=True)
    workdir = config.out.parent / "deep_vs_garch"
    rows: list[dict[str, object]] = []
    for i, s in enumerate(chosen, 1):
        rows.append(evaluate_series(s, config, workdir))
        pd.DataFrame(rows).to_csv(config.out, index=False)
        echo(f"[{i}/{len(chosen)}] {s.name}: {rows[-1].get('error', 'ok')}", file=sys.stderr)
    return pd.DataFrame(rows)


def summary(table: pd.DataFrame, deep: Sequence[str], baseline: str = BASELINE) -> list[str]:
    """One line per deep model: on how many scored series it beats the baseline at 5%."""
    scored = table[table["n"].notna()] if "n" in table else table.iloc[:0]
    lines = [f"{len(scored)} of {len(table)} series scored"]
    for d in deep:
        if f"beats_{d}" not in scored or scored.empty:
            lines.append(f"{d}: no series scored")
            continue
        beats = scored[f"beats_{d}"].astype(bool)
        worse = (scored[f"dm_{d}"] > 0) & (scored[f"dm_p_{d}"] < SIGNIFICANCE)
        lower = scored[f"qlike_{d}"] < scored[f"qlike_{baseline}"]
        lines.append(
            f"{d}: beats {baseline} by Diebold-Mariano at 5% on {int(beats.sum())} of "
            f"{len(scored)} series ({beats.mean():.0%}); significantly worse on "
            f"{int(worse.sum())}; lower mean QLIKE on {int(lower.sum())}"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.bench.breadth.deep_vs_garch")
    parser.add_argument("--models", default="lstm_r", help="deep models, comma-separated")
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--pattern", default="*", help="series names (fnmatch)")
    parser.add_argument("--half", default="all", choices=("all", "development", "hold-out"))
    parser.add_argument("--max-obs", type=int, default=3000, help="most recent closes per series")
    parser.add_argument("--out", type=Path, default=Config.out)
    parser.add_argument("--nice", type=int, default=10, help="niceness added to this process")
    args = parser.parse_args(argv)
    if args.nice:
        os.nice(args.nice)
    config = Config(
        out=args.out,
        deep=tuple(m for m in args.models.split(",") if m),
        baseline=args.baseline,
        pattern=args.pattern,
        which=args.half,
        max_obs=args.max_obs,
    )
    table = run(config)
    columns = [c for c in table.columns if c not in ("start", "end", "class")]
    if "error" in table:
        table["error"] = table["error"].fillna("").str.slice(0, 60)
    with pd.option_context("display.width", 200, "display.max_rows", None):
        print(table[columns].to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    print("\n".join(summary(table, config.deep, config.baseline)))
    print(f"wrote {config.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
