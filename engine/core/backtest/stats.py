"""Backtest statistics for VaR, ES and volatility forecasts: pure functions, vectorised.

Conventions: a VaR or ES at confidence ``level`` is a positive loss in log-return units;
``alpha = 1 - level`` is the expected violation rate; a violation ("hit") is a
realised loss strictly greater than the VaR forecast made before it. Functions take
counts or aligned arrays and never look ahead.

References: Kupiec (1995) proportion of failures; Christoffersen (1998) independence
and conditional coverage; Basel Committee (1996) traffic light; Acerbi and Szekely
(2014) test 2; Patton (2011) QLIKE; Diebold and Mariano (1995) with a Newey-West
variance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

Zone = Literal["green", "amber", "red"]


def _xlogy(x: np.ndarray | float, y: np.ndarray | float) -> np.ndarray:
    """x * log(y) with 0 * log(0) = 0."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(x == 0, 0.0, x * np.log(np.where(y > 0, y, 1.0)))
    return np.where((x > 0) & (y <= 0), -np.inf, out)


@dataclass(frozen=True, slots=True)
class TestResult:
    statistic: float
    p_value: float

    def rejects(self, significance: float = 0.05) -> bool:
        return bool(self.p_value < significance)


def _at_least_zero(lr: np.ndarray) -> np.ndarray:
    """``max(lr, 0)`` elementwise, keeping NaN (a likelihood ratio is never negative)."""
    return np.where(lr < 0.0, 0.0, lr)


def kupiec_lr(n: np.ndarray | int, x: np.ndarray | int, alpha: np.ndarray | float) -> np.ndarray:
    """Kupiec's statistic, elementwise over arrays of ``n > 0`` forecasts and ``x`` violations.

    :func:`kupiec` for one window; the rolling backtests judge many windows in one call,
    because a scipy distribution call costs tens of microseconds however long its array.
    """
    n = np.asarray(n, dtype=float)
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = x / n
    lr = -2.0 * (
        _xlogy(n - x, 1 - alpha) + _xlogy(x, alpha) - _xlogy(n - x, 1 - rate) - _xlogy(x, rate)
    )
    return _at_least_zero(lr)


def kupiec(n: int, x: int, alpha: float) -> TestResult:
    """Kupiec's proportion-of-failures likelihood ratio, chi-squared(1).

    ``n`` forecasts, ``x`` violations, expected rate ``alpha``.

    >>> round(kupiec(250, 2, 0.01).p_value, 3), round(kupiec(250, 8, 0.01).p_value, 4)
    (0.742, 0.0054)
    """
    if n <= 0:
        return TestResult(float("nan"), float("nan"))
    lr = float(kupiec_lr(n, x, alpha))
    return TestResult(lr, float(stats.chi2.sf(lr, 1)))


def transitions(hits: np.ndarray) -> tuple[int, int, int, int]:
    """``(n00, n01, n10, n11)``: counts of consecutive hit pairs (i -> j)."""
    h = np.asarray(hits, dtype=bool)
    prev, nxt = h[:-1], h[1:]
    return (
        int(np.count_nonzero(~prev & ~nxt)),
        int(np.count_nonzero(~prev & nxt)),
        int(np.count_nonzero(prev & ~nxt)),
        int(np.count_nonzero(prev & nxt)),
    )


def christoffersen_independence(n00: int, n01: int, n10: int, n11: int) -> TestResult:
    """Christoffersen's independence likelihood ratio, chi-squared(1), from transition counts.

    Defined whenever there is at least one transition; with no two consecutive
    violations (``n11 == 0``) the restricted and unrestricted likelihoods still differ,
    so the statistic is not a constant.

    >>> round(christoffersen_independence(230, 9, 9, 1).statistic, 4)
    0.7055
    """
    lr = float(independence_lr(n00, n01, n10, n11))  # NaN without a transition
    return TestResult(lr, float(stats.chi2.sf(lr, 1)))


def independence_lr(
    n00: np.ndarray | int, n01: np.ndarray | int, n10: np.ndarray | int, n11: np.ndarray | int
) -> np.ndarray:
    """Christoffersen's independence statistic, elementwise over transition counts.

    NaN where there is no transition; see :func:`christoffersen_independence`.
    """
    n00, n01, n10, n11 = (np.asarray(v, dtype=float) for v in (n00, n01, n10, n11))
    total = n00 + n01 + n10 + n11
    with np.errstate(divide="ignore", invalid="ignore"):
        pi = (n01 + n11) / total
        pi01 = np.where(n00 + n01 > 0, n01 / (n00 + n01), 0.0)
        pi11 = np.where(n10 + n11 > 0, n11 / (n10 + n11), 0.0)
    restricted = _xlogy(n00 + n10, 1 - pi) + _xlogy(n01 + n11, pi)
    unrestricted = (
        _xlogy(n00, 1 - pi01) + _xlogy(n01, pi01) + _xlogy(n10, 1 - pi11) + _xlogy(n11, pi11)
    )
    return np.where(total == 0, np.nan, _at_least_zero(-2.0 * (restricted - unrestricted)))


def christoffersen(hits: np.ndarray, alpha: float) -> tuple[TestResult, TestResult]:
    """``(independence, conditional coverage)`` for a hit sequence; CC = POF + IND, chi-squared(2)."""
    h = np.asarray(hits, dtype=bool)
    ind = christoffersen_independence(*transitions(h))
    pof = kupiec(h.size, int(h.sum()), alpha)
    lr = pof.statistic + ind.statistic
    return ind, TestResult(lr, float(stats.chi2.sf(lr, 2)))


@dataclass(frozen=True, slots=True)
class TrafficLight:
    zone: Zone
    cumulative: float
    """P(X <= violations) under the binomial(n, alpha) of a correct model."""


def traffic_light(
    n: int, x: int, alpha: float, amber: float = 0.95, red: float = 0.9999
) -> TrafficLight:
    """Basel traffic light from binomial probabilities, for any window length and level.

    Green while the cumulative probability of at most ``x`` violations is below 95%,
    amber below 99.99%, red from there (Basel 1996). For 250 days at 99% this gives the
    familiar 0-4 green, 5-9 amber, 10+ red.

    >>> [traffic_light(250, x, 0.01).zone for x in (4, 5, 9, 10)]
    ['green', 'amber', 'amber', 'red']
    """
    cumulative = float(stats.binom.cdf(x, n, alpha))
    return TrafficLight(zone_of(cumulative, amber, red), cumulative)


def zone_of(cumulative: float, amber: float = 0.95, red: float = 0.9999) -> Zone:
    """The traffic light's zone for ``P(X <= violations)`` (see :func:`traffic_light`)."""
    return "green" if cumulative < amber else "amber" if cumulative < red else "red"


def zone_thresholds(
    n: int, alpha: float, amber: float = 0.95, red: float = 0.9999
) -> tuple[int, int]:
    """Smallest violation counts that turn the light amber and red for a window of ``n``.

    >>> zone_thresholds(250, 0.01)
    (5, 10)
    """
    counts = np.arange(n + 1)
    cdf = stats.binom.cdf(counts, n, alpha)
    return int(counts[np.argmax(cdf >= amber)]), int(counts[np.argmax(cdf >= red)])


def acerbi_szekely_z2(
    losses: np.ndarray, var: np.ndarray, es: np.ndarray, alpha: float
) -> TestResult:
    """Acerbi-Szekely test 2 for ES, with an asymptotic one-sided p-value.

    ``Z2 = 1 - sum(L_t * I_t / ES_t) / (T * alpha)``, with ``I_t = L_t > VaR_t`` at the
    ES level. Zero in expectation for a correct model; negative when ES is too small.
    The p-value treats ``mean(L I / ES)`` as asymptotically normal with its sample
    variance (a Wald test of ``E[L I / ES] = alpha``); Acerbi and Szekely's simulated
    5% critical value for 250 days is about -0.70.
    """
    loss = np.asarray(losses, dtype=float)
    var = np.asarray(var, dtype=float)
    es = np.asarray(es, dtype=float)
    ok = np.isfinite(loss) & np.isfinite(var) & np.isfinite(es) & (es > 0)
    if not ok.any():
        return TestResult(float("nan"), float("nan"))
    terms = np.where(loss[ok] > var[ok], loss[ok] / es[ok], 0.0)
    return z2_from_sums(terms.size, float(terms.sum()), float(terms @ terms), alpha)


def z2_from_sums(n: int, total: float, total_sq: float, alpha: float) -> TestResult:
    """:func:`acerbi_szekely_z2` from ``n`` terms ``L_t I_t / ES_t``, their sum and sum of squares.

    The rolling backtests keep these sums per window; the batch test sums its arrays.

    >>> z2_from_sums(250, 0.0, 0.0, 0.025)  # no violation: ES cannot be too small
    TestResult(statistic=1.0, p_value=1.0)
    """
    if n <= 0:
        return TestResult(float("nan"), float("nan"))
    z2 = 1.0 - total / (n * alpha)
    variance = (total_sq - total * total / n) / (n - 1) if n > 1 else 0.0
    sd = float(np.sqrt(variance)) if variance > 0 else 0.0
    if sd == 0:
        return TestResult(float(z2), 1.0 if z2 >= 0 else 0.0)
    score = (z2 * alpha) / (sd / np.sqrt(n))  # = (alpha - mean(terms)) / se
    return TestResult(float(z2), float(stats.norm.cdf(score)))


def pinball_loss(returns: np.ndarray, var: np.ndarray, level: float) -> float:
    """Mean quantile (pinball) loss of the VaR as the ``1 - level`` return quantile; lower is better."""
    r = np.asarray(returns, dtype=float)
    q = -np.asarray(var, dtype=float)
    ok = np.isfinite(r) & np.isfinite(q)
    tau = 1.0 - level
    u = r[ok] - q[ok]
    return float(np.mean((tau - (u < 0)) * u))


def qlike(realized: np.ndarray, forecast_var: np.ndarray) -> np.ndarray:
    """Patton's QLIKE loss per observation: ``rv / h - log(rv / h) - 1`` (0 when exact)."""
    ratio = np.asarray(realized, dtype=float) / np.asarray(forecast_var, dtype=float)
    return ratio - np.log(ratio) - 1.0


def squared_error(realized: np.ndarray, forecast_var: np.ndarray) -> np.ndarray:
    """Squared error of a variance forecast, per observation."""
    return (np.asarray(realized, dtype=float) - np.asarray(forecast_var, dtype=float)) ** 2


def diebold_mariano(loss_a: np.ndarray, loss_b: np.ndarray, lags: int | None = None) -> TestResult:
    """Diebold-Mariano test of equal predictive accuracy, two-sided, Newey-West variance.

    The statistic is negative when model ``a`` has the lower mean loss.
    """
    d = np.asarray(loss_a, dtype=float) - np.asarray(loss_b, dtype=float)
    d = d[np.isfinite(d)]
    t = d.size
    if t < 3:
        return TestResult(float("nan"), float("nan"))
    lags = int(np.floor(t ** (1 / 3))) if lags is None else lags
    dc = d - d.mean()
    lrv = dc @ dc / t
    for k in range(1, lags + 1):
        weight = 1 - k / (lags + 1)
        lrv += 2 * weight * (dc[k:] @ dc[:-k]) / t
    if lrv <= 0:
        return TestResult(float("nan"), float("nan"))
    stat = d.mean() / np.sqrt(lrv / t)
    return TestResult(float(stat), float(2 * stats.norm.sf(abs(stat))))
