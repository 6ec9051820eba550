"""Non-linear VaR of an option book: delta-normal, delta-gamma(-vega) and full revaluation.

The risk factors and the book's expansion are those of :mod:`engine.options.book`:
``x = (r_1..r_U, e^v - 1)`` (log returns of the underlyings, relative change of implied
vol) over a horizon ``h``, and ``P&L ~ theta_h + delta @ x + 0.5 * sum_u gamma_u r_u^2``.
The vol factor enters as its relative change ``e^v - 1``, in which the vega term is exact
to first order in the vol (a log change would add a spurious convexity on VIX spikes of
+50% to +115% a day, which the real data have).

Methods (VaR is a positive loss in currency at confidence ``level``):

- ``delta-normal``: the linear part, normal: ``VaR = -theta_h + z sqrt(delta' C delta)``.
- ``delta-gamma-cf``: the quadratic under ``x ~ N(0, C)``, its first four cumulants in
  closed form (Mina and Ulmer 1999; Britten-Jones and Schaefer 1999) and the
  Cornish–Fisher expansion of its quantile: fast, no scenarios, but only as good as both
  approximations (normal factors, a four-cumulant quantile).
- ``delta-gamma-mc``: the quadratic evaluated on the scenarios themselves, empirical
  quantile: isolates the Taylor approximation's error from the distribution's.
- ``full``: every option repriced in every scenario (:func:`engine.options.book.revalue`),
  empirical quantile. The reference; the published gap of an approximation is
  ``VaR_approx - VaR_full`` (and relative to ``VaR_full``).

``C`` is the sample covariance of the scenarios, so every method sees the same factor risk.
Empirical quantiles are the lower ``1 - level`` quantile of P&L with numpy's default
(linear) interpolation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from engine.options.black import FloatArray
from engine.options.book import OptionBook, Sensitivities, revalue, sensitivities

VarMethod = Literal["delta-normal", "delta-gamma-cf", "delta-gamma-mc", "full"]
METHODS: tuple[VarMethod, ...] = ("delta-normal", "delta-gamma-cf", "delta-gamma-mc", "full")


@dataclass(frozen=True, slots=True)
class VarResult:
    """VaR of a book by one method, and its gap to full revaluation (currency units).

    ``gap`` is ``var - full_var`` (positive: the method overstates the risk) and
    ``relative_gap`` is ``gap / full_var``; both 0 for the full revaluation itself.
    """

    method: VarMethod
    level: float
    var: float
    full_var: float
    gap: float
    relative_gap: float


def delta_gamma_cumulants(
    sens: Sensitivities, cov: FloatArray
) -> tuple[float, float, float, float]:
    """Mean, variance, third and fourth cumulants of ``theta_h + d'x + x'Gx/2``, ``x ~ N(0, C)``.

    With ``G`` the diagonal of ``gamma`` (and 0 for the vol factor), ``A = G C``::

        k1 = theta_h + tr(A) / 2
        k2 = d'Cd + tr(A^2) / 2
        k3 = 3 d'C G C d + tr(A^3)
        k4 = 12 d'C G C G C d + 3 tr(A^4)

    >>> k = delta_gamma_cumulants(Sensitivities(np.array([1.0, 0.0]), np.array([0.0]), 0.0), np.eye(2))
    >>> [round(c, 12) for c in k]
    [0.0, 1.0, 0.0, 0.0]
    """
    n = len(sens.delta)
    g = np.zeros(n)
    g[: len(sens.gamma)] = sens.gamma
    a = g[:, None] * cov  # G C
    d = sens.delta
    cd = cov @ d
    a2 = a @ a
    k1 = sens.theta_h + 0.5 * float(np.trace(a))
    k2 = float(d @ cd) + 0.5 * float(np.trace(a2))
    gcd = g * cd  # G C d
    k3 = 3.0 * float(cd @ gcd) + float(np.sum(a2 * a.T))
    k4 = 12.0 * float(gcd @ cov @ gcd) + 3.0 * float(np.sum(a2 * a2.T))
    return k1, k2, k3, k4


def cornish_fisher_quantile(p: float, k1: float, k2: float, k3: float, k4: float) -> float:
    """The ``p`` quantile of a distribution with cumulants ``k1..k4`` (Cornish–Fisher, 4 terms).

    >>> round(cornish_fisher_quantile(0.01, 0.0, 1.0, 0.0, 0.0), 6)
    -2.326348
    """
    z = float(stats.norm.ppf(p))
    sigma = np.sqrt(k2)
    skew = k3 / sigma**3
    kurt = k4 / sigma**4
    w = (
        z
        + (z * z - 1.0) * skew / 6.0
        + (z**3 - 3.0 * z) * kurt / 24.0
        - (2.0 * z**3 - 5.0 * z) * skew * skew / 36.0
    )
    return float(k1 + sigma * w)


def quadratic_pnl(sens: Sensitivities, returns: FloatArray, vol_change: FloatArray) -> FloatArray:
    """The delta-gamma-vega P&L of each scenario (currency); vol moves enter as ``e^v - 1``."""
    n = len(sens.gamma)
    linear = returns @ sens.delta[:n] + np.expm1(vol_change) * sens.delta[n]
    return sens.theta_h + linear + 0.5 * (returns * returns) @ sens.gamma


def book_var(
    book: OptionBook,
    returns: FloatArray,
    vol_change: FloatArray,
    *,
    horizon: float,
    level: float = 0.99,
    full_pnl: FloatArray | None = None,
) -> list[VarResult]:
    """VaR of ``book`` at ``level`` by every method of :data:`METHODS`, with gaps to full.

    Parameters
    ----------
    returns : numpy.ndarray, shape (n_scenarios, n_underlyings)
        Scenario log returns of the underlyings over ``horizon``.
    vol_change : numpy.ndarray, shape (n_scenarios,)
        Scenario log changes of implied vol.
    horizon : float
        Years (1/365 for one calendar day).
    full_pnl : numpy.ndarray, optional
        Full-revaluation P&L already computed on these scenarios.
    """
    if not 0.5 < level < 1.0:
        raise ValueError("level must be strictly between 0.5 and 1")
    sens = sensitivities(book, book.greeks(), horizon)
    factors = np.column_stack([returns, np.expm1(vol_change)])
    cov = np.atleast_2d(np.cov(factors, rowvar=False))
    p = 1.0 - level
    full = revalue(book, returns, vol_change, horizon) if full_pnl is None else full_pnl
    full_var = -float(np.quantile(full, p))
    linear_sigma = float(np.sqrt(sens.delta @ cov @ sens.delta))
    values: dict[VarMethod, float] = {
        "delta-normal": -sens.theta_h + float(stats.norm.ppf(level)) * linear_sigma,
        "delta-gamma-cf": -cornish_fisher_quantile(p, *delta_gamma_cumulants(sens, cov)),
        "delta-gamma-mc": -float(np.quantile(quadratic_pnl(sens, returns, vol_change), p)),
        "full": full_var,
    }
    return [
        VarResult(
            m, level, float(v), full_var, float(v - full_var), float((v - full_var) / full_var)
        )
        for m, v in values.items()
    ]
