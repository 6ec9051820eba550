"""The shared refit state of volatility models with estimated parameters (GARCH family, HAR).

Per slot: ``nobs`` observations seen, ``has`` (parameters installed), ``req`` (the
observation count of a pending fit request, or -1), ``rq_clock``/``rclock`` (the clock
values of the latest request and the latest observation), ``pend``/``ready`` (a fit
result waiting for its switch point). The compiled kernels of the subclasses request and
switch by the rules of :mod:`engine.core.volatility.refit_clock` on the
:class:`~engine.core.volatility.fitting.RefitSchedule`; the book uses the methods here
to plan batches, submit jobs and install results in time.

Models on the ``sessions`` clock (:attr:`RefittedVolatility.session_clocked`, the
GARCH family) are handed each segment's session ordinals (:meth:`use_sessions`); without
them (no session tracking in the book, or the ``returns`` clock) every return counts as
a session. Models whose observations already are sessions (HAR on realised variance)
count observations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from engine.core.slots import Column
from engine.core.volatility.base import VolatilityModel
from engine.core.volatility.fitting import FitJob, FitResult, RefitSchedule
from engine.core.volatility.refit_clock import plan_refits
from engine.core.volatility.validation import REASONS

#: What a slot's parameters are (``status`` in :meth:`RefittedVolatility.fit_status`).
STATUSES = ("none", "fitted", "last_good", "fallback")
FITTED, LAST_GOOD, FALLBACK = 1, 2, 3
MAX_GOOD_AGE = 250
"""Returns after which the last accepted fit is too old to stand in for a rejected one:
the model then falls back to EWMA (a rejected fit never leaves years-old parameters live)."""


def status_code(status: int, reason: int) -> int:
    """The packed ``(status, reason)`` kept per slot.

    >>> divmod(status_code(LAST_GOOD, 4), 16)
    (2, 4)
    """
    return status * 16 + reason


class RefittedVolatility(VolatilityModel):
    """Base of models refitted on a schedule (see the module docstring).

    A subclass declares its parameter count, whether a fit carries the variance forecast
    at the end of its window (GARCH family) or only parameters (HAR), and its
    :meth:`estimate`; the fit jobs name the model's registered name (``kind``).
    """

    fitted = True
    #: The registered name of this instance (the ``kind`` of its fit jobs).
    kind: str
    #: Length of the parameter vector (decimal units).
    n_params: ClassVar[int]
    #: Whether a fit result's ``end_var`` is needed to switch (the recursion restarts from
    #: it); models that forecast from their history alone switch on parameters only.
    carries_variance: ClassVar[bool] = True
    #: Whether ``every``/``delay`` count the symbol's sessions on the ``sessions`` clock
    #: (models on returns); otherwise they count the model's observations.
    session_clocked: ClassVar[bool] = False

    def __init__(self, schedule: RefitSchedule, window: int) -> None:
        self.schedule = schedule
        self.window = int(window)
        self.rejections: dict[str, int] = {}
        self._sessions: np.ndarray | None = None
        super().__init__()

    @property
    def by_sessions(self) -> bool:
        """Whether this model's schedule counts sessions (see the module docstring)."""
        return self.session_clocked and self.schedule.clock == "sessions"

    @property
    def clock_suffix(self) -> str:
        """What the model version adds for a schedule counted in returns."""
        return "-returns" if self.session_clocked and self.schedule.clock == "returns" else ""

    def use_sessions(self, sessions: np.ndarray | None) -> None:
        """The session ordinal of each row of the next :meth:`update` (``None``: none known,
        every return counts as a session); ignored unless :attr:`by_sessions`."""
        self._sessions = sessions if self.by_sessions else None

    def clock_args(self, slots: np.ndarray) -> tuple[np.ndarray, bool]:
        """The kernel's ``(clock, by_returns)`` for a segment of ``slots``."""
        if self._sessions is None:
            return np.empty(0, np.int64), True
        if self._sessions.shape[0] != slots.shape[0]:
            raise ValueError("session ordinals and rows differ in length")
        return self._sessions, False

    def refit_columns(self) -> Sequence[Column]:
        k = self.n_params
        return (
            Column("nobs", np.int64, 0),
            Column("has", np.int8, 0),
            Column("params", np.float64, np.nan, k),
            Column("req", np.int64, -1),
            Column("rq_clock", np.int64, -1),
            Column("rclock", np.int64, -1),
            Column("warm", np.float64, np.nan, k),
            Column("pend", np.float64, np.nan, k),
            Column("pend_var", np.float64, np.nan),
            Column("ready", np.int8, 0),
            Column("code", np.int64, 0),
            Column("pend_code", np.int64, 0),
            Column("good_n", np.int64, -1),
        )

    def requested(self, slot: int) -> bool:
        """Whether ``slot`` requested a fit with its latest observation (result not installed)."""
        st = self.state
        return bool(
            st["req"][slot] >= 0 and st["req"][slot] == st["nobs"][slot] and not st["ready"][slot]
        )

    def pending(self) -> np.ndarray:
        """Slots with a requested fit whose result is not installed yet."""
        st = self.state
        return np.flatnonzero((st["req"] >= 0) & (st["ready"] == 0))

    def due(self, slot: int, more: int) -> bool:
        """Whether the slot's pending switch happens within its next ``more`` observations."""
        st = self.state
        return bool(
            st["req"][slot] >= 0
            and not st["ready"][slot]
            and st["nobs"][slot] + more >= st["req"][slot] + self.schedule.delay
        )

    def due_among(self, slots: np.ndarray, more: np.ndarray) -> np.ndarray:
        """The ``slots`` (pending ones) whose switch happens within their next ``more`` observations."""
        st = self.state
        req = st["req"][slots]
        hit = (req >= 0) & (st["ready"][slots] == 0)
        hit &= st["nobs"][slots] + more >= req + self.schedule.delay
        return slots[hit]

    def plan(self, slots: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where this batch's requests and switches fall (the state is left unchanged):
        :func:`~engine.core.volatility.refit_clock.plan_refits` on the rows ``slots`` whose
        observation is ``valid``, with the session ordinals of :meth:`use_sessions`."""
        st, sc = self.state, self.schedule
        clock, by_returns = self.clock_args(slots)
        return plan_refits(
            slots, valid, clock, by_returns, st["nobs"], st["req"], st["rq_clock"],
            st["rclock"], sc.first, sc.every, sc.delay, max(self.reach, 1),
        )  # fmt: skip

    def since_request(self, slot: int) -> int:
        """Observations seen since the slot's pending request (to locate its data in a window)."""
        st = self.state
        return int(st["nobs"][slot] - st["req"][slot])

    def job(self, slot: int, key: object, data: np.ndarray) -> FitJob:
        """The fit job of a slot's request; ``data`` ends with the request's observation."""
        warm = self.state["warm"][slot]
        return FitJob(
            key=key,
            kind=self.kind,
            data=data[-self.data_length :],
            warm=warm.copy() if np.isfinite(warm).all() else None,
        )

    @property
    def data_length(self) -> int:
        """Observations a fit uses (the window, plus history the features need)."""
        return self.window

    def install(self, slot: int, result: FitResult) -> None:
        """Provide a fit result; it takes effect at the switch (immediately when the delay is 0).

        The fallback chain: an accepted fit is used; a rejected one (its reason kept in
        :meth:`fit_status`) leaves the last accepted fit in place if that was requested at
        most :data:`MAX_GOOD_AGE` returns ago, and otherwise installs the fit's fallback
        (EWMA as IGARCH; HAR: the monthly mean). ``rejections`` counts rejected fits by
        reason in this process.
        """
        st = self.state
        req = int(st["req"][slot])
        good = int(st["good_n"][slot])
        if result.ok:
            use, use_var, code = result.params, result.end_var, status_code(FITTED, 0)
            st["good_n"][slot] = req
        else:
            self.rejections[REASONS[result.reason]] = (
                self.rejections.get(REASONS[result.reason], 0) + 1
            )
            if good >= 0 and req - good <= MAX_GOOD_AGE:
                use, use_var = st["params"][slot], np.nan
                code = status_code(LAST_GOOD, result.reason)
            elif result.fallback is not None:
                use, use_var = result.fallback, result.fallback_var
                code = status_code(FALLBACK, result.reason)
            else:
                use, use_var = st["params"][slot], np.nan
                code = status_code(int(st["code"][slot]) // 16, result.reason)
        st["pend"][slot] = use
        st["pend_var"][slot] = use_var
        st["pend_code"][slot] = code
        st["ready"][slot] = 1
        if self.schedule.delay == 0:
            if np.isfinite(use).all() and (not self.carries_variance or np.isfinite(use_var)):
                self.switch_now(slot, FitResult(np.asarray(use), float(use_var), True))
            st["code"][slot] = code
            st["req"][slot] = -1
            st["ready"][slot] = 0

    def first_pending(self, slot: int) -> bool:
        """Whether the slot's pending fit is its first and it has no parameters yet."""
        st = self.state
        return bool(st["req"][slot] == self.schedule.first and not st["has"][slot])

    def reopen(self, slot: int, req: int) -> None:
        """Make the fit requested at observation ``req`` pending again (a first fit that was
        deferred, whose interim fallback took its switch): it takes effect at the slot's
        next observation, once the book has installed it."""
        self.state["req"][slot] = req
        self.state["ready"][slot] = 0

    def quick_fallback(self, data: np.ndarray) -> tuple[np.ndarray, float] | None:
        """The fallback parameters and variance for a window whose fit never came back
        (``fit_timeout``), computed without fitting; ``None``: none."""
        return None

    def fit_status(self, slot: int) -> tuple[str, str]:
        """``(status, reason)`` of the parameters in use: ``fitted``, ``last_good``,
        ``fallback`` (or ``none`` before the first fit) and the rule the latest rejected
        fit broke (``""`` when the latest fit was accepted)."""
        status, reason = divmod(int(self.state["code"][slot]), 16)
        return STATUSES[status], REASONS[reason]

    @staticmethod
    def estimate(kind: str, data: np.ndarray, warm: np.ndarray | None) -> FitResult:
        """Fit the model registered as ``kind`` on ``data`` (the last :attr:`data_length`
        observations up to the request), warm-started from ``warm`` (or cold when ``None``).

        Runs in any process (:class:`~engine.core.volatility.fitting.PoolFitter`): a pure
        function of its arguments.
        """
        raise NotImplementedError

    @property
    def reach(self) -> int:
        """Most observations after a request before the book builds its job."""
        return self.schedule.reach if self.by_sessions else self.schedule.delay

    @property
    def history(self) -> int:
        """Observations of what the model needs that the book must keep for its fits."""
        return self.data_length + self.reach

    def switch_now(self, slot: int, result: FitResult) -> None:
        """Install a result at the request itself (delay 0)."""
        raise NotImplementedError

    def forecast(self, slot: int) -> tuple[float, float]:
        """``(sigma, nu)`` the slot forecasts now (to patch the request row after a delay-0 switch)."""
        raise NotImplementedError
