"""Stressed VaR and ES: the worst 12-month window of history, found by a vectorised search.

A simplification of the Basel 2.5 stressed VaR and of the FRTB expected shortfall
calibrated to a period of stress, documented here because it is not the regulation:

* **P&L history.** Today's exposures ``x`` (quantity x price) revalued on every past
  day's returns: ``pnl_t = sum_i x_i (exp(r_it) - 1)`` with ``r_it`` the daily log
  returns on the days every held symbol has a price (full revaluation of a linear book;
  no missing-factor proxies, FRTB's reduced set of risk factors is the full set).
* **Empirical quantiles.** In a window of ``n`` daily P&Ls, ``VaR_a`` is minus the
  ``k``-th smallest P&L with ``k = ceil(n (1 - a))`` (``n = 250``, ``a = 0.99``: the third
  worst day) and ``ES_a`` minus the mean of the ``k`` smallest (``a = 0.975``: the seven
  worst days). Both are positive numbers for losses, in currency units.
* **Stress period.** The window of ``window`` consecutive days (250, twelve months)
  whose 1-day 99% VaR is largest; ties go to the earliest. Basel 2.5 asks for the period
  of significant stress *for the bank's portfolio*, which is this one; FRTB selects on
  ES over a reduced set of factors instead (:func:`window_risk` returns both scores).
* **10 days.** The 1-day figures scaled by ``sqrt(10)`` (square-root-of-time, as Basel
  2.5 allows), not overlapping 10-day P&Ls and not FRTB's liquidity horizons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from engine.errors import InputError


@dataclass(frozen=True, slots=True)
class StressedRisk:
    """Stressed VaR/ES of one book (currency units, losses positive).

    ``start``/``end`` index the first and last P&L day of the stress window (inclusive);
    ``var_1d``/``es_1d`` are 1-day figures in that window, ``var``/``es`` scaled to
    ``horizon`` days.
    """

    start: int
    end: int
    window: int
    var_level: float
    es_level: float
    horizon: int
    var_1d: float
    es_1d: float
    var: float
    es: float


def tail_count(n: int, level: float) -> int:
    """How many worst observations of ``n`` make the tail beyond ``level``.

    >>> tail_count(250, 0.99), tail_count(250, 0.975), tail_count(100, 0.99)
    (3, 7, 1)
    """
    return max(1, math.ceil(round(n * (1.0 - level), 9)))


def linear_pnl(log_returns: np.ndarray, exposure: np.ndarray) -> np.ndarray:
    """Daily P&L (days,) of exposures ``x`` on (days x symbols) log returns: ``expm1(r) @ x``."""
    return np.expm1(log_returns) @ exposure


def window_risk(
    pnl: np.ndarray, window: int, var_level: float = 0.99, es_level: float = 0.975
) -> tuple[np.ndarray, np.ndarray]:
    """1-day VaR and ES of every window of ``window`` consecutive P&Ls (vectorised).

    Returns two arrays of length ``len(pnl) - window + 1``; entry ``s`` is the window
    ``pnl[s : s + window]``.
    """
    if window < 2 or window > len(pnl):
        raise InputError(f"window of {window} days needs 2 <= window <= {len(pnl)} P&L days")
    k_var, k_es = tail_count(window, var_level), tail_count(window, es_level)
    k = max(k_var, k_es)
    views = sliding_window_view(pnl, window)
    worst = np.partition(views, k - 1, axis=1)[:, :k]
    worst.sort(axis=1)
    return -worst[:, k_var - 1], -worst[:, :k_es].mean(axis=1)


def stressed_risk(
    pnl: np.ndarray,
    *,
    window: int = 250,
    var_level: float = 0.99,
    es_level: float = 0.975,
    horizon: int = 10,
) -> StressedRisk:
    """Stressed VaR and ES of a daily P&L history (see the module docstring).

    >>> pnl = np.r_[np.full(300, 1.0), -np.arange(1.0, 11.0), np.full(300, 1.0)]
    >>> r = stressed_risk(pnl, window=100, horizon=1)
    >>> r.start, r.var_1d, r.es_1d
    (210, 10.0, 9.0)
    """
    if horizon < 1:
        raise InputError(f"horizon must be at least 1 day, got {horizon}")
    var, es = window_risk(pnl, window, var_level, es_level)
    start = int(np.argmax(var))
    scale = math.sqrt(horizon)
    return StressedRisk(
        start,
        start + window - 1,
        window,
        var_level,
        es_level,
        horizon,
        float(var[start]),
        float(es[start]),
        float(var[start]) * scale,
        float(es[start]) * scale,
    )
