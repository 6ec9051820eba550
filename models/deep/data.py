"""The training data: S&P 500 daily log returns with Oxford-Man realized variance.

:func:`load_series` reads the shared file (returns in percent, RV in percent^2, RV from
2000) into decimal units; :func:`make_samples` runs the engine's own feature recursion
(:func:`engine.core.volatility.deep_features.series_windows`) over it, so every training window is the
window the stream would hold after that day, and pairs it with the target, the log
realized variance of the next day that has one. A sample is dated by its *target* day,
so "the test period 2015-2018" means targets in it, forecast with data before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from engine.artifacts.cards import sha256_file
from engine.core.volatility.deep_features import FLOOR, FeatureParams, series_windows
from engine.errors import InputError
from engine.paths import shared_file

SP500_RV = "market/sp500_returns_realized_variance.csv"


@dataclass(frozen=True)
class Series:
    """One daily series from the first day with realized variance: decimal units."""

    dates: pd.DatetimeIndex
    returns: np.ndarray
    rv: np.ndarray
    source: str
    sha256: str


@dataclass(frozen=True)
class Samples:
    """Model inputs and targets: ``X[n, window, F]`` (raw features), ``y[n]`` log RV, ``dates[n]``."""

    X: np.ndarray
    y: np.ndarray
    dates: pd.DatetimeIndex

    def between(self, start: str | None, end: str | None) -> Samples:
        mask = np.ones(len(self.dates), bool)
        if start:
            mask &= self.dates >= pd.Timestamp(start)
        if end:
            mask &= self.dates <= pd.Timestamp(end)
        return Samples(self.X[mask], self.y[mask], self.dates[mask])

    def __len__(self) -> int:
        return int(self.y.shape[0])


def load_series(path: Path | str | None = None) -> Series:
    """Read the S&P 500 file from its first realized variance on (see the module docstring)."""
    file = Path(path) if path is not None else shared_file(SP500_RV)
    if not file.is_file():
        raise InputError(f"{file}: no such file")
    frame = pd.read_csv(file)
    for column in ("date", "return", "rv"):
        if column not in frame.columns:
            raise InputError(f"{file}: no {column!r} column")
    rv = pd.to_numeric(frame["rv"], errors="coerce").to_numpy(float) / 1e4
    first = int(np.flatnonzero(np.isfinite(rv))[0])
    frame = frame.iloc[first:]
    returns = pd.to_numeric(frame["return"], errors="coerce").to_numpy(float) / 100.0
    return Series(
        dates=pd.DatetimeIndex(pd.to_datetime(frame["date"])),
        returns=returns,
        rv=rv[first:],
        source=str(file),
        sha256=sha256_file(file),
    )


def squared_returns(series: Series) -> Series:
    """The returns-only view of ``series``: its squared log returns (decimal^2) stand in
    for realized variance, as features and as the target (the file's ``rv`` is not used).

    >>> s = Series(pd.DatetimeIndex(["2020-01-02", "2020-01-03"]), np.array([0.01, -0.02]),
    ...            np.array([1.0, 1.0]), "f", "")
    >>> squared_returns(s).rv.round(6).tolist()
    [0.0001, 0.0004]
    """
    return Series(series.dates, series.returns, series.returns**2, series.source, series.sha256)


def make_samples(series: Series, params: FeatureParams) -> Samples:
    """Windows after each day and the next day's log RV (see the module docstring)."""
    returns = series.returns.copy()
    returns[0] = np.nan  # the stream has no return on a symbol's first tick
    windows, ready = series_windows(returns, series.rv, params)
    used = np.flatnonzero(np.isfinite(returns) & np.isfinite(series.rv))
    # the target of the window after used day used[k] is the RV of used[k + 1]
    src, dst = used[:-1], used[1:]
    keep = ready[src]
    src, dst = src[keep], dst[keep]
    return Samples(
        X=windows[src],
        y=np.log(np.maximum(series.rv[dst], FLOOR)),
        dates=series.dates[dst],
    )


def fit_feature_params(
    series: Series, end: str, *, window: int, burn: int, lam: float
) -> FeatureParams:
    """GARCH(1,1) (zero mean, normal) estimated with ``arch`` on returns up to ``end``.

    Fitted on percent returns (arch's optimiser prefers them), converted to decimal.
    ``init_var`` is the mean squared return over the same days.
    """
    from arch import arch_model

    mask = series.dates <= pd.Timestamp(end)
    r = series.returns[mask]
    result = arch_model(100.0 * r, mean="Zero", vol="GARCH", p=1, q=1, dist="normal").fit(
        disp="off"
    )
    omega, alpha, beta = (float(result.params[k]) for k in ("omega", "alpha[1]", "beta[1]"))
    return FeatureParams(
        ewma_lambda=lam,
        garch_omega=omega / 1e4,
        garch_alpha=alpha,
        garch_beta=beta,
        init_var=float(np.mean(r * r)),
        window=window,
        burn=burn,
    )
