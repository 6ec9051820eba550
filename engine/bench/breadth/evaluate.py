"""One series of the breadth benchmark: the public CLI's forecasts, scored.

:func:`forecast` runs ``riskstream var forecast`` (the documented contract, in process
through typer's runner: CSV in, CSV out) for the default method and each comparator;
:func:`score` judges the 99% VaR and the 97.5% ES of the default method and the
pinball losses of all of them, with the tests of :mod:`engine.core.backtest.coverage`
and :mod:`engine.core.backtest.stats`.

Alignment (the contract's): the row at ``t`` forecasts the log return from ``t`` to the
symbol's next row, so a violation at ``t`` is ``-log(p_{t+1} / p_t) > VaR_t``. Every
method is judged on the same rows: those where all methods have a 99% forecast
(historical simulation starts after 250 returns, the GARCH family after its first fit).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from engine.core.backtest.coverage import coverage
from engine.core.backtest.stats import acerbi_szekely_z2, pinball_loss

DEFAULT = "default"
"""The method ``var forecast`` uses without ``--method`` (the engine's recommended one)."""
COMPARATORS = ("ewma-normal", "hs")
"""RiskMetrics (EWMA lambda 0.94, normal) and historical simulation over 1,000 returns."""
VAR_LEVEL, ES_LEVEL = 0.99, 0.975


@dataclass(frozen=True, slots=True)
class Forecasts:
    """The CLI's output per method: ``var``/``es`` columns per level, one row per price row."""

    returns: np.ndarray
    """Log return from each row to the next (NaN for the last row)."""
    var: dict[str, dict[float, np.ndarray]]
    es: dict[str, dict[float, np.ndarray]]
    method_names: dict[str, str]
    """The name each method's rows carry (the default's resolves to the recommended one)."""


def forecast(prices_csv: Path, workdir: Path, methods: tuple[str, ...]) -> Forecasts:
    """Run ``riskstream var forecast --levels 0.975,0.99`` once per method on ``prices_csv``."""
    from typer.testing import CliRunner

    from engine.cli import app

    prices = pd.read_csv(prices_csv)["price"].to_numpy(dtype=float)
    logp = np.log(prices)
    returns = np.append(logp[1:] - logp[:-1], np.nan)
    var: dict[str, dict[float, np.ndarray]] = {}
    es: dict[str, dict[float, np.ndarray]] = {}
    names: dict[str, str] = {}
    runner = CliRunner()
    for method in methods:
        out = workdir / f"var_{method}.csv"
        args = ["var", "forecast", "--prices", str(prices_csv), "--out", str(out)]
        args += ["--levels", f"{ES_LEVEL},{VAR_LEVEL}", "--quiet"]
        if method != DEFAULT:
            args += ["--method", method]
        result = runner.invoke(app, args)
        if result.exit_code != 0:
            raise RuntimeError(f"var forecast --method {method} failed: {result.output[-500:]}")
        table = pd.read_csv(out)
        names[method] = str(table["method"].iloc[0])
        var[method], es[method] = {}, {}
        for level in (ES_LEVEL, VAR_LEVEL):
            rows = table[np.isclose(table["level"], level)]
            if len(rows) != len(prices):
                raise RuntimeError(
                    f"{out}: {len(rows)} rows at level {level}, {len(prices)} prices"
                )
            var[method][level] = rows["var"].to_numpy(dtype=float)
            es[method][level] = rows["es"].to_numpy(dtype=float)
    return Forecasts(returns, var, es, names)


def longest_constant_run(values: np.ndarray) -> int:
    """Most consecutive finite forecasts equal to the one before (a stuck model).

    >>> longest_constant_run(np.array([1.0, 1.0, 1.0, 2.0, np.nan, 2.0, 2.0]))
    2
    """
    v = np.asarray(values, dtype=float)
    same = np.isfinite(v[1:]) & (v[1:] == v[:-1])
    best = run = 0
    for flag in same.tolist():
        run = run + 1 if flag else 0
        best = max(best, run)
    return best


def score(f: Forecasts, methods: tuple[str, ...]) -> dict[str, float | int | str]:
    """The per-series row of the benchmark (see the module docstring for the sample)."""
    r = f.returns
    sample = np.isfinite(r)
    for m in methods:
        sample &= np.isfinite(f.var[m][VAR_LEVEL])
    n = int(sample.sum())
    row: dict[str, float | int | str] = {"n": n, "default_method": f.method_names[DEFAULT]}
    if n == 0:
        return row
    var = f.var[DEFAULT][VAR_LEVEL]
    tests = coverage(-r[sample] > var[sample], 1.0 - VAR_LEVEL)
    row |= {
        "violations": tests.violations,
        "rate": tests.rate,
        "kupiec_p": tests.kupiec_p,
        "christoffersen_ind_p": tests.christoffersen_p,
        "christoffersen_cc_p": tests.cc_p,
        "longest_constant_var": longest_constant_run(var[np.isfinite(var)]),
    }
    for m in methods:
        row[f"pinball_{m}"] = pinball_loss(r[sample], f.var[m][VAR_LEVEL][sample], VAR_LEVEL)
    v975, e975 = f.var[DEFAULT][ES_LEVEL], f.es[DEFAULT][ES_LEVEL]
    es_sample = sample & np.isfinite(v975) & np.isfinite(e975)
    z2 = acerbi_szekely_z2(-r[es_sample], v975[es_sample], e975[es_sample], 1.0 - ES_LEVEL)
    row |= {"z2": z2.statistic, "z2_p": z2.p_value}
    return row


def passes(row: pd.Series | dict, significance: float = 0.05) -> dict[str, bool]:  # type: ignore[type-arg]
    """The issue's per-series targets for one scored row (``row`` from :func:`score`)."""
    ok_tests = all(
        float(row[k]) >= significance
        for k in ("kupiec_p", "christoffersen_ind_p", "christoffersen_cc_p")
    )
    return {
        "tests_pass": bool(ok_tests),
        "rate_ok": bool(float(row["rate"]) <= 0.025),
        "constant_ok": bool(int(row["longest_constant_var"]) <= 60),
        "beats_riskmetrics": bool(
            float(row["pinball_default"]) < float(row["pinball_ewma-normal"])
        ),
        "beats_hs": bool(float(row["pinball_default"]) < float(row["pinball_hs"])),
        "es_ok": bool(float(row["z2_p"]) >= significance),
    }
