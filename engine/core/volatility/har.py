"""HAR-RV volatility (Corsi 2009), from realized variance supplied with the ticks.

With ``RV_t`` the realized variance of the return ending at tick ``t`` (decimal^2, e.g.
the sum of squared 5-minute returns of a day), the next period's variance forecast is

    RV_{t+1} = b0 + b_day * RV_t + b_week * mean(RV_{t-4..t}) + b_month * mean(RV_{t-21..t})

with coefficients from least squares on the last ``window`` observations, refitted on a
:class:`~engine.core.volatility.fitting.RefitSchedule` like the GARCH family. The
volatility forecast is the square root of the variance forecast. Ticks without realized
variance leave the model unchanged, and a symbol that never supplies it never gets a HAR
forecast (NaN). Forecasts use realized variances up to and including the current tick's.

Non-negativity. Least squares does not keep ``RV_{t+1}`` positive: a fit with a negative
monthly coefficient forecasts below zero when the daily variance collapses after a spike
that still lifts the monthly mean (the S&P 500 in late August 2015, on a 100-session
window). Two rules keep such a number from being published:

* at fit time, a fit whose fitted variances in its window, or whose forecast after it,
  are ``<= 0`` is rejected (reason ``negative_variance``,
  :func:`~engine.core.volatility.validation.check_har`) and falls back like every
  rejected fit: the last good fit, else the 22-observation mean of realized variance
  (:data:`HAR_FALLBACK`, HAR's counterpart of EWMA);
* at forecast time, an accepted fit can still meet regressors it never saw. When its
  variance forecast is ``<= 0`` the tick's forecast is that same fallback, the
  22-observation mean, and :meth:`HARVolatility.fit_status` reports ``fallback`` with
  reason ``negative_variance`` while it lasts. A fallback rather than a floor: a floor
  would publish a volatility of about zero, a VaR of about zero, exactly when the
  series has just moved most; the fallback is the forecast the model already trusts
  whenever a fit cannot be used. Only a series whose last 22 realized variances are all
  zero gets the floor (:data:`FLOOR`), the fallback's own value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

from engine.core.slots import Column
from engine.core.volatility.base import Build
from engine.core.volatility.fitting import FitResult, RefitSchedule
from engine.core.volatility.refit_clock import advance_clock, requests_at, switches_at
from engine.core.volatility.refitted import FALLBACK, STATUSES, RefittedVolatility
from engine.core.volatility.registry import register
from engine.core.volatility.validation import REASONS, check_har

HISTORY = 22
FLOOR = 1e-12
"""Smallest variance forecast (decimal^2): only reached when 22 realized variances are 0."""


def har_features(rv: np.ndarray) -> np.ndarray:
    """HAR regressors for each observation with 22 observations of history: 1, RV_t, mean of
    the last 5, mean of the last 22 (Corsi 2009). Row ``i`` uses ``rv[: i + 22]``."""
    rv = np.asarray(rv, dtype=np.float64)
    csum = np.concatenate([[0.0], np.cumsum(rv)])
    end = np.arange(22, rv.size + 1)
    week = (csum[end] - csum[end - 5]) / 5.0
    month = (csum[end] - csum[end - 22]) / 22.0
    return np.column_stack([np.ones(end.size), rv[end - 1], week, month])


#: HAR's fallback: the mean realized variance of the last 22 observations.
HAR_FALLBACK = np.array([0.0, 0.0, 0.0, 1.0])


def fit_har(rv: np.ndarray) -> FitResult:
    rv = np.asarray(rv, dtype=np.float64)
    if rv.size < 50 or not np.isfinite(rv).all():
        return FitResult(np.full(4, np.nan), float("nan"), False, REASONS.index("too_few_returns"))
    features = har_features(rv)
    coef, *_ = np.linalg.lstsq(features[:-1], rv[22:], rcond=None)  # RV at t + 1 on t's regressors
    reason = check_har(rv, features, coef)
    if reason is not None:
        return FitResult(
            np.full(4, np.nan), float("nan"), False, REASONS.index(reason), HAR_FALLBACK
        )
    return FitResult(coef, float("nan"), True, 0, HAR_FALLBACK)


@numba.njit(cache=True, nogil=True)
def _variance(coef, hist, pos, count):  # pragma: no cover - compiled
    """``(HAR variance forecast, 22-observation mean)`` from the last 22 RVs (ring
    ``hist``, newest at ``pos - 1``); NaNs before 22 observations. Either may be <= 0."""
    if count < HISTORY:
        return np.nan, np.nan
    day = hist[(pos - 1) % HISTORY]
    week = 0.0
    for j in range(1, 6):
        week += hist[(pos - j) % HISTORY]
    month = 0.0
    for j in range(HISTORY):
        month += hist[j]
    month /= HISTORY
    return coef[0] + coef[1] * day + coef[2] * week / 5.0 + coef[3] * month, month


@numba.njit(cache=True, nogil=True)
def _forecast(coef, hist, pos, count):  # pragma: no cover - compiled
    """HAR sigma forecast; a variance forecast ``<= 0`` is replaced by the 22-observation
    mean (the fallback, see the module's non-negativity rules), floored at :data:`FLOOR`."""
    f, month = _variance(coef, hist, pos, count)
    if not f > 0:
        f = month  # NaN stays NaN: no forecast before 22 observations
    return np.sqrt(max(f, FLOOR)) if not np.isnan(f) else np.nan


@numba.njit(cache=True, nogil=True)
def _har(
    slots, rv, nobs, has, params, req, warm, pend, ready, code, pend_code, hist, rq_clock, rclock,
    first, every, delay, before, after,
):  # fmt: skip  # pragma: no cover - compiled
    for i in range(slots.shape[0]):
        s = slots[i]
        n = nobs[s]
        before[i] = _forecast(params[s], hist[s], n, n) if has[s] else np.nan
        x = rv[i]
        if np.isnan(x):
            after[i] = before[i]
            continue
        hist[s, n % HISTORY] = x
        n += 1
        nobs[s] = n
        tick = advance_clock(n, rclock, s)  # HAR's clock: its observations (sessions' rv)
        # Not ready at its switch: deferred (see the GARCH kernel).
        if ready[s] and switches_at(n, n, tick, req[s], rq_clock[s], delay, first):
            if np.isfinite(pend[s, 0]):
                params[s] = pend[s]
                has[s] = 1
            code[s] = pend_code[s]
            req[s] = -1
            ready[s] = 0
        if requests_at(n, n, tick, req[s], rq_clock[s], first, every):
            req[s] = n
            rq_clock[s] = n
            warm[s] = params[s]
        after[i] = _forecast(params[s], hist[s], n, n) if has[s] else np.nan


@register("har")
class HARVolatility(RefittedVolatility):
    """HAR-RV, see the module docstring. ``update`` takes realized variances, not returns.

    Parameters: b0, b_day, b_week, b_month (variance units).
    """

    kind = "har"
    name = "har"
    needs = "rv"
    n_params = 4
    carries_variance = False

    def __init__(self, schedule: RefitSchedule, window: int = 1000) -> None:
        super().__init__(schedule, window)

    @classmethod
    def from_spec(cls, name: str, build: Build) -> HARVolatility:
        return cls(build.spec.har_refit, build.spec.har_window)

    @staticmethod
    def estimate(kind: str, data: np.ndarray, warm: np.ndarray | None) -> FitResult:
        return fit_har(data)

    @property
    def model_version(self) -> str:  # type: ignore[override]
        s = self.schedule
        return f"har-rv-window{self.window}-first{s.first}-refit{s.every}-delay{s.delay}"

    @property
    def data_length(self) -> int:
        return self.window + HISTORY

    def columns(self) -> Sequence[Column]:
        return (*self.refit_columns(), Column("hist", np.float64, np.nan, HISTORY))

    def update(self, slots: np.ndarray, rv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = slots.shape[0]
        before, after = np.empty(n), np.empty(n)
        st = self.state
        _har(
            slots,
            rv,
            st["nobs"],
            st["has"],
            st["params"],
            st["req"],
            st["warm"],
            st["pend"],
            st["ready"],
            st["code"],
            st["pend_code"],
            st["hist"],
            st["rq_clock"],
            st["rclock"],
            self.schedule.first,
            self.schedule.every,
            self.schedule.delay,
            before,
            after,
        )
        return before, after

    def quick_fallback(self, data: np.ndarray) -> tuple[np.ndarray, float] | None:
        """The 22-observation mean (:data:`HAR_FALLBACK`), as for any rejected fit."""
        return HAR_FALLBACK, float("nan")

    def switch_now(self, slot: int, result: FitResult) -> None:
        self.state["params"][slot] = result.params
        self.state["has"][slot] = 1

    def fit_status(self, slot: int) -> tuple[str, str]:
        """As :meth:`RefittedVolatility.fit_status`, except that while the installed
        parameters forecast a variance ``<= 0`` (so the 22-observation mean is published
        instead) it is ``("fallback", "negative_variance")``."""
        st = self.state
        params = st["params"][slot]
        if st["has"][slot] and not np.array_equal(params, HAR_FALLBACK):
            n = int(st["nobs"][slot])
            f, _ = _variance(params, st["hist"][slot], n, n)
            if f <= 0:
                return STATUSES[FALLBACK], "negative_variance"
        return super().fit_status(slot)

    def forecast(self, slot: int) -> tuple[float, float]:
        st = self.state
        if not st["has"][slot]:
            return float("nan"), float("nan")
        n = int(st["nobs"][slot])
        return float(_forecast(st["params"][slot], st["hist"][slot], n, n)), float("nan")
