"""Model fits on rolling windows, and where they run.

A volatility model with estimated parameters requests its first fit at its ``first``
return. On the ``sessions`` clock (the default) it then requests a fit at the first
return of a trading session once ``every`` sessions have closed since its last request,
and a fit requested in session ``d`` takes effect at the first return of session
``d + delay`` (:mod:`engine.core.volatility.refit_clock`); on the ``returns`` clock
the same counts are returns. Either way the switch point is fixed by the data, so the
numbers do not depend on when a fit happens to finish. On a daily-close feed every
return opens a session and the two clocks are the same schedule. With ``delay = 0`` the
fit applies at the request itself, as in a textbook rolling backtest.

Fits run behind the :class:`Fitter` interface: :class:`SyncFitter` computes in the
caller (offline runs, tests), :class:`PoolFitter` in a pool of processes (the worker),
so a fit never holds up per-tick processing unless its result is due and not ready.
Both give identical results: a fit is a pure function of its :class:`FitJob`. A pool that
*defers* (the worker's default, ``RISKSTREAM_LATE_FITS=defer``) does not wait even then:
a due fit that is not done stays pending, the model keeps its parameters, and the fit
takes effect at its first switch point after it is done (the rules above hold from any
later return on: a first fit switches at the symbol's next return, a refit at the first
return of a later session). Only then can the numbers depend on timing.

What a fit computes belongs to the model: :func:`fit` runs the ``estimate`` of the
model registered under the job's ``kind`` (the GARCH family's ``arch`` fits in
:mod:`engine.core.volatility.garch`, HAR's least squares in
:mod:`engine.core.volatility.har`).

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
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from engine.core.volatility.validation import REASONS

#: What ``every`` and ``delay`` count: trading sessions of the symbol, or returns.
RefitClock = Literal["returns", "sessions"]
REFIT_CLOCKS: tuple[RefitClock, ...] = ("returns", "sessions")

#: Returns after a request by which the book builds the fit's job on the ``sessions``
#: clock (the return window keeps that many beyond the fit window); at least ``delay``.
#: Small, so that the default windows' return ring keeps its width (1,088 values: a
#: checkpoint written before the session clock restores the window) and a micro-batch
#: gains at most one split per request.
JOB_REACH = 16


@dataclass(frozen=True, slots=True)
class RefitSchedule:
    """When a model refits: first at ``first`` returns, then every ``every``; applies after ``delay``.

    ``every`` and ``delay`` count ``clock`` units: sessions of the symbol's trading
    calendar (the default) or returns (see the module docstring).

    >>> RefitSchedule(first=250, every=20, delay=5).requests_at(250), RefitSchedule(250, 20, 5).requests_at(260)
    (True, False)
    """

    first: int
    every: int
    delay: int
    clock: RefitClock = "sessions"

    def __post_init__(self) -> None:
        if self.first < 1 or self.every < 1:
            raise ValueError("refits need first >= 1 and every >= 1")
        if not 0 <= self.delay <= self.every:
            raise ValueError(
                f"refit delay {self.delay} must be between 0 and the refit interval {self.every}"
            )
        if self.clock not in REFIT_CLOCKS:
            raise ValueError(f"refit clock {self.clock!r} must be one of {', '.join(REFIT_CLOCKS)}")

    @property
    def reach(self) -> int:
        """Most returns after a request before the fit's job is built (the book's windows
        keep them): ``delay`` on the returns clock, :data:`JOB_REACH` (or ``delay``) on the
        sessions clock, whose sessions hold any number of returns."""
        return self.delay if self.clock == "returns" else max(self.delay, JOB_REACH)

    def requests_at(self, n: int) -> bool:
        """Whether the ``n``-th observation requests a fit on the returns clock."""
        return n >= self.first and (n - self.first) % self.every == 0

    def request_mask(self, counts: np.ndarray) -> np.ndarray:
        """For an array of return counts (after each return): which request a fit (returns clock)."""
        return (counts >= self.first) & ((counts - self.first) % self.every == 0)


@dataclass(frozen=True, slots=True)
class FitJob:
    """One fit: the model registered as ``kind`` on ``data`` (what the model needs: decimal
    returns, or realized variances for HAR), warm-started from ``warm`` (or cold)."""

    key: Hashable
    kind: str
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
    """Run one fit (a pure function of the job; runs in any process).

    The estimator is the one of the model registered as ``job.kind``
    (:meth:`~engine.core.volatility.refitted.RefittedVolatility.estimate`).
    """
    from engine.core.volatility.registry import vol_model  # registry -> models -> this module

    return vol_model(job.kind).estimate(job.kind, job.data, job.warm)  # type: ignore[attr-defined]


def _warm_up_fits() -> None:
    """One small GJR fit and one HAR fit on fixed synthetic data (loads what fits need)."""
    rng = np.random.default_rng(0)
    returns = 0.01 * rng.standard_t(5, 300)
    fit(FitJob("warm-up", "gjr", returns, None))
    fit(FitJob("warm-up", "har", returns**2, None))


class Fitter(Protocol):
    """Where fits run. ``submit`` starts a job; ``result`` returns it, waiting if needed;
    ``ready`` says whether the book should install it now or defer it (``False``: the
    fit is not done and this fitter defers rather than waits)."""

    def submit(self, job: FitJob) -> None: ...

    def result(self, job: FitJob) -> FitResult: ...

    def ready(self, job: FitJob) -> bool: ...


class SyncFitter:
    """Fits in the calling thread, when the result is asked for."""

    def __init__(self) -> None:
        self.fits = 0

    def submit(self, job: FitJob) -> None:
        """Nothing to start: the fit runs in :meth:`result`."""

    def result(self, job: FitJob) -> FitResult:
        self.fits += 1
        return fit(job)

    def ready(self, job: FitJob) -> bool:
        """Always: the fit is computed when its result is asked for."""
        return True


#: Seconds between a pool process's checks that its worker is still alive.
PARENT_CHECK_S = 0.5


#: Niceness added to the fit pool's processes: a backlog of fits (a replay, a restart)
#: takes the CPU the stream leaves rather than half of it (the stream never waits for a
#: deferred fit, so slower fits cost it nothing).
POOL_NICENESS = 10


def _pool_process(parent: int) -> None:
    """Pool process initializer: a lower priority than the stream, and gone with its worker."""
    os.nice(POOL_NICENESS)
    _exit_with_parent(parent)


def _exit_with_parent(parent: int) -> None:
    """Exit the pool process as soon as the worker that started it is gone.

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


def timed_out() -> FitResult:
    """The rejected result of a fit that did not finish in time (reason ``fit_timeout``).

    It carries no fallback: the model keeps its last accepted fit (if recent enough) or
    the parameters it has (:meth:`~engine.core.volatility.refitted.RefittedVolatility.install`).
    """
    return FitResult(np.empty(0), float("nan"), False, REASONS.index("fit_timeout"))


def deferred(fallback: tuple[np.ndarray, float]) -> FitResult:
    """What a first fit that is not done at its switch installs meanwhile (``defer``): no
    parameters of its own, the given fallback (reason ``fit_deferred``)."""
    params, var = fallback
    return FitResult(np.empty(0), float("nan"), False, REASONS.index("fit_deferred"), params, var)


class PoolFitter:
    """Fits in a pool of processes (spawned: the worker has threads, so no fork).

    The pool processes exit by themselves within :data:`PARENT_CHECK_S` of the worker's
    death, however it died (``kill -9`` included).

    Parameters
    ----------
    workers : int
        Processes in the pool.
    timeout_s : float, optional
        Longest a fit may take, counted from its submission (seconds): a fit that is due
        and not done by then is rejected (:func:`timed_out`, counted in :attr:`timeouts`)
        and cancelled if it has not started. The stream therefore waits for a due fit at
        most until that deadline, and not at all once it has passed, however many fits
        are queued: a slow fit or a long queue never holds it up for longer. ``None``
        waits for every fit (the numbers then never depend on timing; the offline runs
        fit synchronously anyway). Not used when ``defer`` is set.
    defer : bool
        Never wait (``RISKSTREAM_LATE_FITS=defer``): :meth:`ready` reports a due fit that
        is not done, the book leaves it pending and installs it at its first switch point
        after it is done (counted in :attr:`deferred`, once per fit).
    """

    def __init__(
        self, workers: int = 1, timeout_s: float | None = None, *, defer: bool = False
    ) -> None:
        if timeout_s is not None and not timeout_s > 0:
            raise ValueError(f"fit timeout must be positive, got {timeout_s}")
        self.timeout_s = timeout_s
        self.defer = defer
        self.timeouts = 0
        self.submitted = 0
        #: Fits that were due and not done, so took effect later (distinct fits).
        self.deferred = 0
        self._deferred: set[tuple[Hashable, str]] = set()
        self._pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_pool_process,
            initargs=(os.getpid(),),
        )
        #: Submitted fits and when (monotonic seconds), until their result is asked for.
        self._pending: dict[
            tuple[Hashable, str], tuple[concurrent.futures.Future[FitResult], float]
        ] = {}
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
            self._pending[key] = (self._pool.submit(fit, job), time.monotonic())
            self.submitted += 1

    def ready(self, job: FitJob) -> bool:
        """Whether the book should install ``job``'s result now: always when waiting;
        when deferring, only once the fit is done (a job restored after a restart, never
        submitted, is submitted now)."""
        if not self.defer:
            return True
        key = (job.key, job.kind)
        if key not in self._pending:
            self.submit(job)
        if self._pending[key][0].done():
            self._deferred.discard(key)
            return True
        if key not in self._deferred:
            self._deferred.add(key)
            self.deferred += 1
        return False

    def result(self, job: FitJob) -> FitResult:
        key = (job.key, job.kind)
        pending = self._pending.pop(key, None)
        if pending is None:  # e.g. a pending fit restored after a restart
            pending = (self._pool.submit(fit, job), time.monotonic())
        future, submitted = pending
        if not future.done():
            self.waits += 1
        wait = None
        if self.timeout_s is not None and not self.defer:
            wait = max(0.0, submitted + self.timeout_s - time.monotonic())
        try:
            result = future.result(timeout=wait)
        except concurrent.futures.TimeoutError:
            future.cancel()
            self.timeouts += 1
            return timed_out()
        self.fits += 1
        return result

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
