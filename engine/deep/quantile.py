"""Machine-learned VaR: quantile models of the next return, for the comparison's VaR table.

Two learners predict the ``1 - level`` quantile of a symbol's next log return directly
(no volatility-times-distribution step), for each VaR level, from features known at the
row (data up to and including it), in percent units (:func:`features`):

* the volatilities forecast by the run's models (``sigma_<model>``, every model of the run),
* ``|r_t|`` and ``r_t`` (lagged return), ``sqrt(RV_t)`` (lagged realized volatility),
* the root mean squared return over the last 5 and 22 rows.

``lgbm-quantile``  LightGBM with the quantile (pinball) objective, refitted at the start of
                   every calendar year of the evaluation period on every earlier row
                   (walk-forward; nothing from the year it forecasts);
``river-quantile`` river's online linear regression with the quantile loss on standardised
                   features, updated per tick: at each row it first learns the previous
                   row's features against this row's return, then predicts the next.

VaR is minus the predicted quantile, in log-return units. Rows in the layout of the
backtest's VaR table (:func:`engine.offline.backtest_report.evaluate`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from engine.offline.backtest_report import _period_mask, var_row
from engine.offline.runs import OfflineRun, log_returns

LGBM_PARAMS: dict[str, Any] = {
    "n_estimators": 300,
    "learning_rate": 0.03,
    "num_leaves": 8,
    "min_child_samples": 50,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "verbose": -1,
}


def features(run: OfflineRun) -> pd.DataFrame:
    """The features of every row (see the module docstring); NaN where not yet known."""
    frame = run.frame
    symbols = frame["symbol"].to_numpy()
    r = log_returns(run)
    out = pd.DataFrame(index=frame.index)
    for name, sigma in run.sigma.items():
        out[f"sigma_{name}"] = 100.0 * sigma
    out["abs_ret"] = 100.0 * np.abs(r)
    out["ret"] = 100.0 * r
    if "rv" in frame:
        out["sqrt_rv"] = 100.0 * np.sqrt(frame["rv"].to_numpy(dtype=float))
    sq = pd.Series(1e4 * r * r)
    for n in (5, 22):
        out[f"rms_{n}"] = np.sqrt(
            sq.groupby(symbols).transform(lambda s, n=n: s.rolling(n, min_periods=n).mean())
        )
    return out


def _next_returns(run: OfflineRun) -> np.ndarray:
    """Each row's symbol's next log return (NaN for its last row)."""
    r = pd.Series(log_returns(run))
    return r.groupby(run.frame["symbol"].to_numpy()).shift(-1).to_numpy()


def lgbm_var(
    run: OfflineRun, X: pd.DataFrame, target: np.ndarray, level: float, period: np.ndarray
) -> np.ndarray:
    """LightGBM quantile VaR for the rows in ``period``, refitted each calendar year."""
    import lightgbm

    years = run.frame["timestamp"].dt.year.to_numpy()
    var = np.full(len(X), np.nan)
    values = X.to_numpy(dtype=float)
    usable = np.isfinite(target) & np.isfinite(values).any(axis=1)
    for year in np.unique(years[period]):
        ts = run.frame["timestamp"]
        before = (ts < pd.Timestamp(f"{year}-01-01", tz="UTC")).to_numpy()
        # a row's target is the next return: drop the last row before the year from training
        # only if its target lies in the year (the next row is the year's first)
        train = usable & before & np.concatenate([before[1:], [False]])
        rows = period & (years == year)
        if train.sum() < 500 or not rows.any():
            continue
        model = lightgbm.LGBMRegressor(
            objective="quantile", alpha=1.0 - level, random_state=0, n_jobs=1, **LGBM_PARAMS
        )
        model.fit(values[train], 100.0 * target[train])
        var[rows] = -np.asarray(model.predict(values[rows]), dtype=float) / 100.0
    return var


def river_var(
    X: pd.DataFrame, returns_next: np.ndarray, symbols: np.ndarray, level: float
) -> np.ndarray:
    """river online quantile regression VaR for every row (learns per tick, per symbol)."""
    from river import linear_model, optim, preprocessing

    var = np.full(len(X), np.nan)
    names = list(X.columns)
    values = X.to_numpy(dtype=float)
    models: dict[str, object] = {}
    previous: dict[str, dict[str, float]] = {}
    r_pct = 100.0 * returns_next
    for i in range(len(values)):
        s = symbols[i]
        model = models.get(s)
        if model is None:
            model = preprocessing.StandardScaler() | linear_model.LinearRegression(
                optimizer=optim.SGD(0.01),
                loss=optim.losses.Quantile(1.0 - level),
                intercept_lr=0.01,
            )
            models[s] = model
        x = dict(zip(names, values[i].tolist(), strict=True))
        if not all(np.isfinite(v) for v in x.values()):
            previous.pop(s, None)
            continue
        var[i] = -model.predict_one(x) / 100.0  # type: ignore[attr-defined]
        previous[s] = x
        if np.isfinite(r_pct[i]):  # this row's target is known once the next row arrives;
            model.learn_one(x, r_pct[i])  # type: ignore[attr-defined]  # learned before it is predicted again
    return var


def var_rows(
    symbol: str, method: str, level: float, returns: np.ndarray, var: np.ndarray, rolling: int
) -> dict[str, object] | None:
    """One row of the VaR table for forecasts ``var`` of the returns ``returns`` (aligned)."""
    ok = np.isfinite(var) & np.isfinite(returns)
    if not ok.any():
        return None
    hits = -returns[ok] > var[ok]
    return var_row(symbol, method, level, hits, returns[ok], var[ok], rolling)


def learned_var_rows(
    run: OfflineRun, *, start: str | None, end: str | None, rolling: int = 250
) -> pd.DataFrame:
    """VaR backtest rows of both learners for every symbol and VaR level of the run.

    A forecast made at row ``t`` is judged against the symbol's next return, and counted
    in the period when that return's row is in it (as the book's ``var_before``).
    """
    X = features(run)
    target = _next_returns(run)
    symbols = run.frame["symbol"].to_numpy()
    in_period = _period_mask(run, start, end)
    # forecast rows: the row before a return in the period (per symbol)
    judged = pd.Series(in_period).groupby(symbols).shift(-1).fillna(False).to_numpy(dtype=bool)
    rows = []
    for level in run.var_levels:
        forecasts = {
            "lgbm-quantile": lgbm_var(run, X, target, level, judged),
            "river-quantile": river_var(X, target, symbols, level),
        }
        for method, var in forecasts.items():
            for symbol in pd.unique(symbols):
                mine = judged & (symbols == symbol)
                row = var_rows(symbol, method, level, target[mine], var[mine], rolling)
                if row is not None:
                    rows.append(row)
    return pd.DataFrame(rows)
