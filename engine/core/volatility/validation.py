"""Rules every model fit passes before it is used, and the data rules applied before fitting.

A fit that cannot be trusted must never be published silently. :func:`clean_window`
applies the two data rules to a fit's window; :func:`check_garch` and :func:`check_har`
judge a finished fit and return the first rule it breaks (``None`` when it passes).

Data rules (fit windows only; the per-tick recursions see every return as it is):

* **Stale prices.** Returns that are exactly zero (the price did not change: a halted,
  illiquid or forward-filled symbol, or a price on a coarse tick) are removed from the
  window. A continuous return distribution puts no mass at zero; left in, stale days
  make the Student-t likelihood peak at zero, ``nu`` collapses towards 2 and the
  unit-variance t quantiles with it (measured: a real index with 13% of its days made
  stale got a GARCH-t 99% VaR violated on 30% of days for years). Removing them can only
  raise the fitted scale, the prudent direction. A window left with fewer than 50
  returns is not fitted (``too_few_returns``).
* **Extreme jumps.** Returns larger in magnitude than :data:`JUMP_SCALES` robust
  standard deviations of the window (1.4826 times the median absolute deviation of the
  non-zero returns) are winsorised to that bound for the fit. The jump still enters the
  variance recursion in full when it happens; it just cannot set the parameters of
  every fit for the next ``window`` returns (a one-day drop of two thirds otherwise
  dominates a 1,000-return likelihood).

Fit rules (all in decimal units, for a window of decimal log returns ``r``):

``no_convergence``  the optimiser did not report success, or a parameter is not finite;
``not_positive``    ``omega <= 0``, ``alpha < 0``, ``beta < 0``, ``alpha + gamma < 0`` or ``nu <= 2``,
                    after :func:`snap_to_bounds` (arch keeps ``alpha >= 0`` and ``alpha +
                    gamma >= 0``; a fit that stops on one of them ends within 1e-10 to 1e-7
                    of it, on either side depending on the data's last digits: 18 of 88
                    refits of a large US stock were rejected that way. Snapped onto the
                    bound, both sides get one verdict);
``unresponsive``    ``alpha + gamma / 2 < MIN_NEWS``: the variance ignores returns and follows a
                    deterministic path until the next refit (measured: a fit with
                    ``alpha = 0, beta = 0.996`` took a GARCH-t 99% VaR to a third of the
                    realised volatility within two years);
``persistence``     ``alpha + gamma / 2 + beta > 1 - 1e-4`` (no finite unconditional
                    variance; the margin makes fits that stop on the bound 1 rejected
                    whichever side of it rounding leaves them, :data:`MAX_PERSISTENCE`);
``below_ewma``      the fit's Student-t log-likelihood on its window is below that of
                    RiskMetrics EWMA (lambda 0.94) with the same ``nu``: the fitted
                    dynamics explain the window worse than the model we fall back to;
``out_of_band``     the fit's next-return sigma is outside ``[1 / BAND, BAND]`` times
                    the EWMA sigma at the window's end (recent realised moves).

HAR fits (least squares on realized variances ``RV``, decimal^2) have their own rules,
:func:`check_har`: ``no_convergence``, then ``negative_variance`` (a fitted variance in the
window, or the forecast after it, is ``<= 0``: ordinary least squares does not keep a
linear combination of variances positive, and after a spike a negative monthly
coefficient can take it below zero), ``persistence`` and ``out_of_band``. The same
non-negativity rule holds at forecast time, for fits that passed: see
:mod:`engine.core.volatility.har`.

Time rule (any fit run in the worker's pool): ``fit_timeout``, the fit was not done when
the stream needed it, within the worker's bound (``RISKSTREAM_FIT_TIMEOUT_MS``,
:class:`~engine.core.volatility.fitting.PoolFitter`); it is rejected like a fit that
broke a rule, so a slow fit never holds the stream up. ``fit_deferred``: not a rejection
but the status of a model whose *first* fit was not done at its switch with
``RISKSTREAM_LATE_FITS=defer``: it runs on the EWMA fallback until the fit takes effect
(:meth:`~engine.core.book.PriceRiskBook` reopens the request when the fit is done).
"""

from __future__ import annotations

from typing import Final

import numpy as np
from scipy import special

from engine.core.riskmetrics import DEFAULT_LAMBDA, DEFAULT_WARMUP
from engine.core.volatility.ewma import ewma_next

JUMP_SCALES: Final = 10.0
"""Robust standard deviations beyond which a return is winsorised in a fit window."""
BAND: Final = 4.0
"""A fit's sigma must lie within a factor of this of the EWMA sigma at the window's end."""
MIN_NEWS: Final = 1e-3
"""Smallest ``alpha + gamma / 2`` of an accepted GARCH-family fit."""
BOUND_TOL: Final = 1e-6
"""How far past a lower bound (``alpha >= 0``, ``beta >= 0``, ``alpha + gamma >= 0``) the
optimiser may stop and the fit still be read as on it: :func:`snap_to_bounds` moves it
onto the bound, so ``-1e-10`` and ``+1e-10`` give the same fit and the same verdict."""
MAX_PERSISTENCE: Final = 1.0 - 1e-4
"""Largest ``alpha + gamma / 2 + beta`` of an accepted GARCH-family fit. The optimiser
stops integrated fits on the constraint ``persistence <= 1`` within rounding, on either
side of 1 depending on the data's last digits (measured: a float32 rounding of the same
returns flipped 25 of 88 GJR fits of USDTHB ticks between accepted and rejected); a
margin of 1e-4 (a shock's half-life of about 6,900 returns) rejects them all alike."""
EWMA_LAMBDA: Final = DEFAULT_LAMBDA
"""Decay of the RiskMetrics model a fit is compared with (and falls back to)."""
EWMA_WARMUP: Final = DEFAULT_WARMUP
"""Returns whose mean square starts that model's recursion."""

#: Why a fit was rejected; the position is the code kept in per-symbol state (0: accepted).
REASONS: Final = (
    "",
    "no_convergence",
    "not_positive",
    "persistence",
    "below_ewma",
    "out_of_band",
    "too_few_returns",
    "unresponsive",
    "negative_variance",
    "fit_timeout",
    "fit_deferred",
)


def clean_window(returns: np.ndarray) -> np.ndarray:
    """The window with the stale-price and jump rules applied (see the module).

    >>> r = np.array([0.01, 0, 0, 0, 0, 0, -0.01, 0.0, 0.02, 5.0, -0.015, 0.012])
    >>> clean_window(r).round(4).tolist()
    [0.01, -0.01, 0.02, 0.2224, -0.015, 0.012]
    """
    r = np.asarray(returns, dtype=np.float64)
    r = r[r != 0.0]
    if r.size:
        scale = 1.4826 * float(np.median(np.abs(r - np.median(r))))
        if scale > 0:
            bound = JUMP_SCALES * scale
            r = np.clip(r, -bound, bound)
    return r


def ewma_variance(returns: np.ndarray) -> np.ndarray:
    """RiskMetrics variance forecasts: entry ``i`` is for ``returns[i]`` (made before it);
    the last entry is the forecast for the return after the window (length ``n + 1``)."""
    r = np.asarray(returns, dtype=np.float64)
    out = np.empty(r.size + 1)
    m = min(EWMA_WARMUP, r.size)
    v = float(np.mean(r[:m] ** 2)) if m else 0.0
    out[0] = v
    for i, x in enumerate(r):
        v = ewma_next(v, x, EWMA_LAMBDA)
        out[i + 1] = v
    return out


def t_loglik(returns: np.ndarray, variance: np.ndarray, nu: float) -> float:
    """Log-likelihood of zero-mean returns under unit-variance Student-t(``nu``) scaled by
    ``sqrt(variance)`` (both arrays aligned; decimal units)."""
    r = np.asarray(returns, dtype=np.float64)
    v = np.maximum(np.asarray(variance, dtype=np.float64), 1e-300)
    c = special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2) - 0.5 * np.log(np.pi * (nu - 2))
    terms = c - 0.5 * np.log(v) - (nu + 1) / 2 * np.log1p(r * r / (v * (nu - 2)))
    return float(np.sum(terms))


def garch_variance(returns: np.ndarray, params: np.ndarray, start: float) -> np.ndarray:
    """GJR recursion from variance ``start``: entry ``i`` is the forecast for ``returns[i]``."""
    omega, alpha, gamma, beta = (float(p) for p in params[:4])
    r = np.asarray(returns, dtype=np.float64)
    out = np.empty(r.size + 1)
    v = start
    out[0] = v
    for i, x in enumerate(r):
        v = omega + (alpha + (gamma if x < 0 else 0.0)) * x * x + beta * v
        out[i + 1] = v
    return out


def snap_to_bounds(params: np.ndarray) -> np.ndarray:
    """``params`` (omega, alpha, gamma, beta, nu) with ``alpha`` and ``beta`` in
    ``[-BOUND_TOL, 0)`` set to 0, and ``gamma`` set to ``-alpha`` when ``alpha + gamma``
    is in ``[-BOUND_TOL, 0)``: the optimiser stops on a bound within rounding, on either
    side of it (a copy; the rest unchanged). Such a fit's variance ignores losses
    (``alpha + gamma = 0``) or gains (``alpha = 0``); it is judged by the other rules.

    >>> snap_to_bounds(np.array([1e-6, -1e-12, 0.1, 0.9, 8.0])).tolist()
    [1e-06, 0.0, 0.1, 0.9, 8.0]
    >>> snap_to_bounds(np.array([1e-6, -1e-3, 0.1, 0.9, 8.0]))[1]
    np.float64(-0.001)
    """
    out = np.array(params, dtype=np.float64)
    for i in (1, 3):
        if -BOUND_TOL <= out[i] < 0.0:
            out[i] = 0.0
    if -BOUND_TOL <= out[1] + out[2] < 0.0:
        out[2] = -out[1]
    return out


def check_garch(
    window: np.ndarray, params: np.ndarray, variance: np.ndarray, raw_end_sigma: float
) -> str | None:
    """The first fit rule a GARCH/GJR fit breaks, or ``None``.

    ``window``: the cleaned decimal returns the fit used; ``params``: omega, alpha,
    gamma, beta, nu (decimal units); ``variance``: the fit's conditional variances for
    ``window`` and the forecast after it (``len(window) + 1``); ``raw_end_sigma``: the
    EWMA sigma at the end of the uncleaned window.
    """
    if not (np.isfinite(params).all() and np.isfinite(variance).all()):
        return "no_convergence"
    omega, alpha, gamma, beta, nu = (float(p) for p in params)
    if omega <= 0 or alpha < 0 or beta < 0 or alpha + gamma < 0 or nu <= 2:
        return "not_positive"
    if alpha + gamma / 2 < MIN_NEWS:
        return "unresponsive"
    if alpha + gamma / 2 + beta > MAX_PERSISTENCE:
        return "persistence"
    ewma = ewma_variance(window)
    if t_loglik(window, variance[:-1], nu) < t_loglik(window, ewma[:-1], nu):
        return "below_ewma"
    sigma = float(np.sqrt(variance[-1]))
    if raw_end_sigma > 0 and not 1.0 / BAND <= sigma / raw_end_sigma <= BAND:
        return "out_of_band"
    return None


def check_har(rv: np.ndarray, features: np.ndarray, coef: np.ndarray) -> str | None:
    """The first rule a HAR fit breaks, or ``None``.

    ``rv``: the window's realized variances (decimal^2, oldest first); ``features``: its
    HAR regressors (:func:`~engine.core.volatility.har.har_features`; row ``i`` uses
    ``rv`` up to and including observation ``i + 21``, so the last row gives the forecast
    for the observation after the window); ``coef``: b0, b_day, b_week, b_month.

    Rules, in order: finite coefficients (``no_convergence``); every fitted variance in
    the window and the forecast after it ``> 0`` (``negative_variance``: a variance
    forecast at or below zero is never usable, and a fit that produced one on its own
    window is not trusted); persistence ``b_day + b_week + b_month < 1``
    (``persistence``); the next forecast within ``BAND`` of the mean realized variance
    of the last 22 observations, in sigma terms (``out_of_band``).

    >>> rv = np.array([1e-4] * 30 + [9e-4] + [1e-4] * 5)
    >>> from engine.core.volatility.har import har_features
    >>> check_har(rv, har_features(rv), np.array([2e-4, 0.5, 0.0, -2.0]))
    'negative_variance'
    """
    if not np.isfinite(coef).all():
        return "no_convergence"
    fitted = features @ coef
    if np.any(fitted <= 0):  # fitted[:-1] in the window, fitted[-1] the next forecast
        return "negative_variance"
    if float(np.sum(coef[1:])) >= 1.0:
        return "persistence"
    recent = float(np.mean(rv[-22:]))
    if recent > 0 and not 1.0 / BAND <= np.sqrt(fitted[-1] / recent) <= BAND:
        return "out_of_band"
    return None
