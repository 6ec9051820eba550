"""The shared refit state of volatility models with estimated parameters (GARCH family, HAR).

Per slot: ``nobs`` observations seen, ``has`` (parameters installed), ``req`` (the
observation count of a pending fit request, or -1), ``pend``/``ready`` (a fit result
waiting for its switch point). The compiled kernels of the subclasses set ``req`` on the
:class:`~engine.core.volatility.fitting.RefitSchedule` and switch at ``req + delay``; the
book uses the methods here to submit jobs and install results in time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.core.slots import Column
from engine.core.volatility.base import VolatilityModel
from engine.core.volatility.fitting import N_PARAMS, FitJob, FitKind, FitResult, RefitSchedule


class RefittedVolatility(VolatilityModel):
    """Base of models refitted on a schedule (see the module docstring)."""

    kind: FitKind

    def __init__(self, schedule: RefitSchedule, window: int) -> None:
        self.schedule = schedule
        self.window = int(window)
        self.n_params = N_PARAMS[self.kind]
        super().__init__()

    def refit_columns(self) -> Sequence[Column]:
        k = self.n_params
        return (
            Column("nobs", np.int64, 0),
            Column("has", np.int8, 0),
            Column("params", np.float64, np.nan, k),
            Column("req", np.int64, -1),
            Column("warm", np.float64, np.nan, k),
            Column("pend", np.float64, np.nan, k),
            Column("pend_var", np.float64, np.nan),
            Column("ready", np.int8, 0),
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

        A failed fit keeps the previous parameters (or none, before the first success).
        """
        st = self.state
        st["pend"][slot] = result.params if result.ok else st["params"][slot]
        st["pend_var"][slot] = result.end_var if result.ok else np.nan
        st["ready"][slot] = 1
        if self.schedule.delay == 0:
            if result.ok:
                self.switch_now(slot, result)
            st["req"][slot] = -1
            st["ready"][slot] = 0

    def switch_now(self, slot: int, result: FitResult) -> None:
        """Install a result at the request itself (delay 0)."""
        raise NotImplementedError

    def forecast(self, slot: int) -> tuple[float, float]:
        """``(sigma, nu)`` the slot forecasts now (to patch the request row after a delay-0 switch)."""
        raise NotImplementedError
