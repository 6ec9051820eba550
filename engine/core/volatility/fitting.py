"""Model fits on rolling windows, and where they run.

A volatility model with estimated parameters requests a fit every ``every`` returns
(from its ``first`` return on). The fit uses the returns up to and including the
request, and its parameters take effect ``delay`` returns later: a fixed number of
observations, so the numbers do not depend on when a fit happens to finish. With
``delay = 0`` the fit applies at the request itself, as in a textbook rolling backtest.

Fits run behind the :class:`Fitter` interface: :class:`SyncFitter` computes in the
caller (offline runs, tests), :class:`PoolFitter` in a pool of processes (the worker),
so a fit never holds up per-tick processing unless its result is due and not ready.
Both give identical results: a fit is a pure function of its :class:`FitJob`.

GARCH-family fits use ``arch`` on *percent* returns (``arch`` misbehaves on decimal
returns, whose scale is about 1e-4), zero mean, Student-t innovations, warm-started
from the previous parameters, except that the starting ``nu`` is capped at
:data:`WARM_NU_CAP`: the likelihood is nearly flat in ``nu`` when ``nu`` is large, and
SLSQP started there never comes back (measured on the S&P 500: uncapped, warm-started
GJR refits sat at ``nu`` near 369 in 96% of windows, where cold fits find 6 to 9).

Every fit is validated before use (:mod:`engine.core.volatility.validation`: the data
rules for stale stretches and extreme jumps, then convergence, positivity, persistence,
likelihood against EWMA and a band around recent moves); a rejected fit carries the
reason and the EWMA fallback, and the model decides which to use
(:meth:`~engine.core.volatility.refitted.RefittedVolatility.install`).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import threading
import time
import warnings
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from engine.core.volatility.validation import (
    EWMA_LAMBDA,
    REASONS,
    check_garch,
    check_har,
    clean_window,
    ewma_variance,
    t_loglik,
)

FitKind = Literal["garch", "gjr", "har"]

#: Largest starting ``nu`` of a warm-started GARCH fit (the fitted ``nu`` is not capped).
WARM_NU_CAP = 30.0

#: Parameter vector layouts (decimal units): garch/gjr: omega, alpha, gamma, beta, nu;
#: har: b0, b_day, b_week, b_month.
N_PARAMS = {"garch": 5, "gjr": 5, "har": 4}


@dataclass(frozen=True, slots=True)
class RefitSchedule:
    """When a model refits: first at ``first`` returns, then every ``every``; applies after ``delay``.

    >>> RefitSchedule(first=250, every=20, delay=5).requests_at(250), RefitSchedule(250, 20, 5).requests_at(260)
    (True, False)
    """

    first: int
    every: int
    delay: int

    def __post_init__(self) -> None:
        if self.first < 1 or self.every < 1:
            raise ValueError("refits need first >= 1 and every >= 1")
        if not 0 <= self.delay <= self.every:
            raise ValueError(
                f"refit delay {self.delay} must be between 0 and the refit interval {self.every}"
            )

    def requests_at(self, n: int) -> bool:
        return n >= self.first and (n - self.first) % self.every == 0

    def request_mask(self, counts: np.ndarray) -> np.ndarray:
        """For an array of return counts (after each return): which request a fit."""
        return (counts >= self.first) & ((counts - self.first) % self.every == 0)


@dataclass(frozen=True, slots=True)
class FitJob:
    """One fit: ``kind`` on ``data`` (decimal returns, or realized variances for HAR), warm start."""

    key: Hashable
    kind: FitKind
    data: np.ndarray
    warm: np.ndarray | None


@dataclass(frozen=True, slots=True)
class FitResult:
    """Fitted parameters (decimal units), the model's variance forecast for the return after the
    window's last one (GARCH family; NaN for HAR), and whether the fit passed every rule of
    :mod:`engine.core.volatility.validation` (``reason``: the code of the rule it broke).

    ``fallback``/``fallback_var``: the parameters and variance to use instead when the fit
    is rejected and no recent good fit exists: RiskMetrics EWMA written as the IGARCH
    ``omega = 0, alpha = 1 - lambda, beta = lambda`` (its ``nu`` fitted to the window), or
    for HAR the 22-observation mean of realized variance.
    """

    params: np.ndarray
    end_var: float
    ok: bool
    reason: int = 0
    fallback: np.ndarray | None = None
    fallback_var: float = float("nan")


def fit(job: FitJob) -> FitResult:
    """Run one fit (a pure function of the job; runs in any process)."""
    if job.kind == "har":
        return _fit_har(job.data)
    return _fit_garch(job.data, job.kind == "gjr", job.warm)


def _warm_up_fits() -> None:
    """One small GJR fit and one HAR fit on fixed synthetic data (loads what fits need)."""
    rng = np.random.default_rng(0)
    returns = 0.01 * rng.standard_t(5, 300)
    fit(FitJob("warm-up", "gjr", returns, None))
    fit(FitJob("warm-up", "har", returns**2, None))


def _ewma_fallback(raw: np.ndarray, clean: np.ndarray) -> tuple[np.ndarray, float]:
    """RiskMetrics as GARCH parameters, with the Student-t ``nu`` that fits it best."""
    from scipy.optimize import minimize_scalar

    path = ewma_variance(clean)[:-1]
    best = minimize_scalar(
        lambda nu: -t_loglik(clean, path, nu), bounds=(2.5, 100.0), method="bounded"
    )
    nu = float(best.x) if best.success else 8.0
    params = np.array([0.0, 1.0 - EWMA_LAMBDA, 0.0, EWMA_LAMBDA, nu])
    return params, float(ewma_variance(raw)[-1])


def _fit_garch(returns: np.ndarray, asymmetric: bool, warm: np.ndarray | None) -> FitResult:
    from arch import arch_model

    raw = np.asarray(returns, dtype=np.float64)
    nan5 = np.full(5, np.nan)
    if raw.size < 50 or not np.isfinite(raw).all():
        return FitResult(nan5, float("nan"), False, REASONS.index("too_few_returns"))
    clean = clean_window(raw)
    if clean.size < 50 or clean.std() == 0:
        return FitResult(nan5, float("nan"), False, REASONS.index("too_few_returns"))
    fallback, fallback_var = _ewma_fallback(raw, clean)

    def rejected(reason: str) -> FitResult:
        return FitResult(nan5, float("nan"), False, REASONS.index(reason), fallback, fallback_var)

    pct = clean * 100.0
    model = arch_model(
        pct, mean="Zero", vol="GARCH", p=1, o=1 if asymmetric else 0, q=1, dist="t", rescale=False
    )
    starting = None
    if warm is not None and np.isfinite(warm).all() and warm[0] > 0:
        omega, alpha, gamma, beta, nu = warm
        nu = min(nu, WARM_NU_CAP)
        starting = np.array(
            [omega * 1e4, alpha, gamma, beta, nu] if asymmetric else [omega * 1e4, alpha, beta, nu]
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            # show_warning=False: arch otherwise adds a global "always" filter for its
            # ConvergenceWarning ahead of the caller's; convergence_flag is checked below.
            res = model.fit(
                disp="off", starting_values=starting, options={"maxiter": 300}, show_warning=False
            )
        except (ValueError, np.linalg.LinAlgError, RuntimeError):
            return rejected("no_convergence")
        if res.convergence_flag != 0:
            return rejected("no_convergence")
        end_var = float(res.forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0]) / 1e4
    p = res.params.to_numpy()
    if asymmetric:
        params = np.array([p[0] / 1e4, p[1], p[2], p[3], p[4]])
    else:
        params = np.array([p[0] / 1e4, p[1], 0.0, p[2], p[3]])
    variance = np.append(np.asarray(res.conditional_volatility) ** 2 / 1e4, end_var)
    reason = check_garch(clean, params, variance, float(np.sqrt(fallback_var)))
    if reason is not None:
        return rejected(reason)
    return FitResult(params, end_var, True, 0, fallback, fallback_var)


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


def _fit_har(rv: np.ndarray) -> FitResult:
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


class Fitter(Protocol):
    """Where fits run. ``submit`` starts a job; ``result`` returns it, waiting if needed."""

    def submit(self, job: FitJob) -> None: ...

    def result(self, job: FitJob) -> FitResult: ...


class SyncFitter:
    """Fits in the calling thread, when the result is asked for."""

    def __init__(self) -> None:
        self.fits = 0

    def submit(self, job: FitJob) -> None:
        """Nothing to start: the fit runs in :meth:`result`."""

    def result(self, job: FitJob) -> FitResult:
        self.fits += 1
        return fit(job)


#: Seconds between a pool process's checks that its worker is still alive.
PARENT_CHECK_S = 0.5


def _exit_with_parent(parent: int) -> None:
    """Pool process initializer: exit as soon as the worker that started it is gone.

    A pool process waits on a queue whose writing end it holds itself, so it never sees
    the worker die: after a ``kill -9`` it would live on under PID 1 (about 290 MB, and
    with it multiprocessing's resource tracker). ``PR_SET_PDEATHSIG`` is no help here:
    it follows the *thread* that started the process, which may end long before the
    worker does. A daemon thread that notices the re-parenting is simple and certain.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class PoolFitter:
    """Fits in a pool of processes (spawned: the worker has threads, so no fork).

    The pool processes exit by themselves within :data:`PARENT_CHECK_S` of the worker's
    death, however it died (``kill -9`` included).
    """

    def __init__(self, workers: int = 1) -> None:
        self._pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_exit_with_parent,
            initargs=(os.getpid(),),
        )
        self._pending: dict[tuple[Hashable, str], concurrent.futures.Future[FitResult]] = {}
        self.fits = 0
        self.waits = 0

    def start(self) -> concurrent.futures.Future[None]:
        """Start the pool's process now and load the fitting code in it, without waiting.

        A spawned process imports the worker's modules, then ``arch`` and its compiled
        recursions on its first fit: a second or two. Left to the first real fit, that
        time fell on the stream (a restarted worker's first batch waits for the fits its
        checkpoint left pending); started while the worker joins its group, it runs on
        the other core. Returns the warm-up's future (done when the process is ready).
        """
        return self._pool.submit(_warm_up_fits)

    def submit(self, job: FitJob) -> None:
        key = (job.key, job.kind)
        if key not in self._pending:
            self._pending[key] = self._pool.submit(fit, job)

    def result(self, job: FitJob) -> FitResult:
        key = (job.key, job.kind)
        future = self._pending.pop(key, None)
        if future is None:  # e.g. a pending fit restored after a restart
            future = self._pool.submit(fit, job)
        if not future.done():
            self.waits += 1
        self.fits += 1
        return future.result()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
