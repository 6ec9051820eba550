"""GARCH(1,1) and GJR-GARCH(1,1,1) with Student-t innovations, updated per tick, refitted with arch.

For decimal log returns ``r_t`` (zero mean) the one-step-ahead variance is

    sigma2_{t+1} = omega + (alpha + gamma * 1[r_t < 0]) * r_t^2 + beta * sigma2_t

(``gamma = 0`` for GARCH). Parameters come from ``arch`` fits on the last ``window``
returns in percent (:mod:`engine.core.volatility.fitting`), refitted on a
:class:`~engine.core.volatility.fitting.RefitSchedule`. Between refits the recursion runs
per tick with fixed parameters, exactly as ``arch``'s conditional volatility does (tested
to 1e-8 relative). At a switch, ``delay`` returns after the request, the new parameters
take over from ``arch``'s variance forecast at the end of the estimation window, carried
through the ``delay`` returns since; forecasts after a refit therefore equal ``arch``'s
for the refitted model. Before the first fit the model has no forecast (NaN).

Fits use ``arch`` on *percent* returns (``arch`` misbehaves on decimal returns, whose
scale is about 1e-4), zero mean, Student-t innovations, warm-started from the previous
parameters, except that the starting ``nu`` is capped at :data:`WARM_NU_CAP`: the
likelihood is nearly flat in ``nu`` when ``nu`` is large, and SLSQP started there never
comes back (measured on the S&P 500: uncapped, warm-started GJR refits sat at ``nu``
near 369 in 96% of windows, where cold fits find 6 to 9).

The book drives the refits (:mod:`engine.core.volatility.refitted`): it splits
micro-batches at request points, submits fit jobs and installs results before a switch
is due.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numba
import numpy as np

from engine.core.slots import Column
from engine.core.volatility.base import Build, VolOutput
from engine.core.volatility.fitting import FitResult, RefitSchedule
from engine.core.volatility.refit_clock import advance_clock, requests_at, switches_at
from engine.core.volatility.refitted import RefittedVolatility
from engine.core.volatility.registry import register
from engine.core.volatility.validation import (
    EWMA_LAMBDA,
    REASONS,
    check_garch,
    clean_window,
    ewma_variance,
    snap_to_bounds,
    t_loglik,
)

#: Largest starting ``nu`` of a warm-started fit (the fitted ``nu`` is not capped).
WARM_NU_CAP = 30.0
#: Student-t ``nu`` of the EWMA fallback of a fit that timed out (no window to fit it on
#: in time; the value the fitted fallback uses when its own fit fails).
TIMEOUT_NU = 8.0


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


def fit_garch(returns: np.ndarray, asymmetric: bool, warm: np.ndarray | None) -> FitResult:
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
    starts: list[np.ndarray | None] = [None]
    if warm is not None and np.isfinite(warm).all() and warm[0] > 0:
        omega, alpha, gamma, beta, nu = warm
        nu = min(nu, WARM_NU_CAP)
        warm_start = (
            [omega * 1e4, alpha, gamma, beta, nu] if asymmetric else [omega * 1e4, alpha, beta, nu]
        )
        # A warm start that ends in a rejected fit is tried again from arch's own starting
        # values: a warm start can lead the optimiser into a degenerate optimum (measured
        # on a 1,000-return S&P 500 window: from alpha 0, beta 0.99999 the GJR fit ended
        # unresponsive; from arch's start, gamma 0.31, beta 0.82, accepted).
        # When every start is rejected, the last one's rule is the reason reported.
        starts.insert(0, np.array(warm_start))
    reason = "no_convergence"
    for starting in starts:
        outcome = _attempt(model, starting, clean, asymmetric, fallback_var)
        if isinstance(outcome, str):
            reason = outcome
            continue
        params, end_var = outcome
        return FitResult(params, end_var, True, 0, fallback, fallback_var)
    return rejected(reason)


def _attempt(
    model: Any,
    starting: np.ndarray | None,
    clean: np.ndarray,
    asymmetric: bool,
    fallback_var: float,
) -> tuple[np.ndarray, float] | str:
    """One optimisation of ``model`` from ``starting`` (arch's own when ``None``): the fit's
    decimal parameters and next variance, or the rule it breaks."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            # show_warning=False: arch otherwise adds a global "always" filter for its
            # ConvergenceWarning ahead of the caller's; convergence_flag is checked below.
            res = model.fit(
                disp="off", starting_values=starting, options={"maxiter": 300}, show_warning=False
            )
        except (ValueError, np.linalg.LinAlgError, RuntimeError):
            return "no_convergence"
        if res.convergence_flag != 0:
            return "no_convergence"
        end_var = float(res.forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0]) / 1e4
    p = res.params.to_numpy()
    if asymmetric:
        params = snap_to_bounds(np.array([p[0] / 1e4, p[1], p[2], p[3], p[4]]))
    else:
        params = snap_to_bounds(np.array([p[0] / 1e4, p[1], 0.0, p[2], p[3]]))
    variance = np.append(np.asarray(res.conditional_volatility) ** 2 / 1e4, end_var)
    reason = check_garch(clean, params, variance, float(np.sqrt(fallback_var)))
    return reason if reason is not None else (params, end_var)


@numba.njit(cache=True, nogil=True)
def _garch(
    slots,
    returns,
    nobs,
    has,
    params,
    var,
    req,
    warm,
    pend,
    pend_var,
    ready,
    code,
    pend_code,
    buf,
    buf_len,
    rq_clock,
    rclock,
    clock,
    by_returns,
    first,
    every,
    delay,
    before,
    after,
    nu_before,
    nu_after,
):  # pragma: no cover - compiled
    for i in range(slots.shape[0]):
        s = slots[i]
        if has[s]:
            before[i] = np.sqrt(var[s])
            nu_before[i] = params[s, 4]
        else:
            before[i] = np.nan
            nu_before[i] = np.nan
        x = returns[i]
        if np.isnan(x):
            after[i] = before[i]
            nu_after[i] = nu_before[i]
            continue
        n = nobs[s] + 1
        nobs[s] = n
        c = n if by_returns else clock[i]
        tick = advance_clock(c, rclock, s)
        if has[s]:
            g = params[s, 2] if x < 0 else 0.0
            var[s] = params[s, 0] + (params[s, 1] + g) * x * x + params[s, 3] * var[s]
        if req[s] >= 0 and n > req[s]:
            if buf_len[s] < buf.shape[1]:
                buf[s, buf_len[s]] = x
                buf_len[s] += 1
            # Not ready at its switch: the fit was deferred (the book's fitter does not
            # wait); it takes effect at the first switch point after the book installs it.
            if ready[s] and switches_at(n, c, tick, req[s], rq_clock[s], delay, first):
                if np.isfinite(pend_var[s]):
                    if n - req[s] <= buf.shape[1]:  # every return since the request
                        v = pend_var[s]
                        for j in range(buf_len[s]):
                            b = buf[s, j]
                            g = pend[s, 2] if b < 0 else 0.0
                            v = pend[s, 0] + (pend[s, 1] + g) * b * b + pend[s, 3] * v
                    elif has[s]:
                        v = var[s]  # a session's returns: go on from the live variance
                    else:
                        v = pend_var[s]
                    var[s] = v
                    params[s] = pend[s]
                    has[s] = 1
                code[s] = pend_code[s]
                req[s] = -1
                buf_len[s] = 0
                ready[s] = 0
        if requests_at(n, c, tick, req[s], rq_clock[s], first, every):
            req[s] = n
            rq_clock[s] = c
            warm[s] = params[s]
            buf_len[s] = 0
        if has[s]:
            after[i] = np.sqrt(var[s])
            nu_after[i] = params[s, 4]
        else:
            after[i] = np.nan
            nu_after[i] = np.nan


@register("garch", "gjr")
class GARCHVolatility(RefittedVolatility):
    """GARCH(1,1)-t (``kind="garch"``) or GJR-GARCH(1,1,1)-t (``kind="gjr"``), see the module.

    Parameters (decimal units): omega, alpha, gamma (0 for GARCH), beta, nu.

    Parameters
    ----------
    kind : {"garch", "gjr"}
    schedule : RefitSchedule
        When to refit and how many returns later a fit takes effect.
    window : int
        Estimation window (returns); the first fit uses whatever is available.
    """

    needs = "returns"
    estimates_nu = True
    n_params = 5
    carries_variance = True
    session_clocked = True

    def __init__(
        self, kind: Literal["garch", "gjr"], schedule: RefitSchedule, window: int = 1000
    ) -> None:
        self.kind = kind
        self.name = kind  # type: ignore[misc]
        self.nu_before = np.empty(0)
        self.nu_after = np.empty(0)
        super().__init__(schedule, window)

    @classmethod
    def from_spec(cls, name: str, build: Build) -> GARCHVolatility:
        return cls(name, build.spec.garch_refit, build.spec.garch_window)  # type: ignore[arg-type]

    @staticmethod
    def estimate(kind: str, data: np.ndarray, warm: np.ndarray | None) -> FitResult:
        return fit_garch(data, kind == "gjr", warm)

    @property
    def model_version(self) -> str:  # type: ignore[override]
        s = self.schedule
        return (
            f"{self.kind}-t-window{self.window}-first{s.first}-refit{s.every}-delay{s.delay}"
            + self.clock_suffix
        )

    def columns(self) -> Sequence[Column]:
        return (
            *self.refit_columns(),
            Column("var", np.float64, np.nan),
            Column("buf", np.float64, np.nan, max(self.schedule.delay, 1)),
            Column("buf_len", np.int64, 0),
        )

    def update(self, slots: np.ndarray, returns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One segment of returns (the book ends segments at fit requests); ``nu`` is in
        :attr:`nu_before` / :attr:`nu_after` afterwards."""
        n = slots.shape[0]
        before, after = np.empty(n), np.empty(n)
        self.nu_before, self.nu_after = np.empty(n), np.empty(n)
        st = self.state
        _garch(
            slots,
            returns,
            st["nobs"],
            st["has"],
            st["params"],
            st["var"],
            st["req"],
            st["warm"],
            st["pend"],
            st["pend_var"],
            st["ready"],
            st["code"],
            st["pend_code"],
            st["buf"],
            st["buf_len"],
            st["rq_clock"],
            st["rclock"],
            *self.clock_args(slots),
            self.schedule.first,
            self.schedule.every,
            self.schedule.delay,
            before,
            after,
            self.nu_before,
            self.nu_after,
        )
        return before, after

    def step(
        self,
        slots: np.ndarray,
        returns: np.ndarray,
        rv: np.ndarray,
        others: Mapping[str, VolOutput],
    ) -> VolOutput:
        before, after = self.update(slots, returns)
        return VolOutput(before, after, self.nu_before, self.nu_after)

    def quick_fallback(self, data: np.ndarray) -> tuple[np.ndarray, float] | None:
        """RiskMetrics as GARCH parameters with ``nu`` = :data:`TIMEOUT_NU` (no fit), and the
        EWMA variance after the window: what a timed-out fit falls back to."""
        raw = np.asarray(data, dtype=np.float64)
        if raw.size < 2 or not np.isfinite(raw).all():
            return None
        params = np.array([0.0, 1.0 - EWMA_LAMBDA, 0.0, EWMA_LAMBDA, TIMEOUT_NU])
        return params, float(ewma_variance(raw)[-1])

    def reopen(self, slot: int, req: int) -> None:
        super().reopen(slot, req)
        self.state["buf_len"][slot] = 0  # too late to replay: go on from the live variance

    def switch_now(self, slot: int, result: FitResult) -> None:
        st = self.state
        st["params"][slot] = result.params
        st["var"][slot] = result.end_var
        st["has"][slot] = 1
        st["buf_len"][slot] = 0

    def forecast(self, slot: int) -> tuple[float, float]:
        st = self.state
        if not st["has"][slot]:
            return float("nan"), float("nan")
        return float(np.sqrt(st["var"][slot])), float(st["params"][slot, 4])

    def seed(self, slot: int, params: np.ndarray, variance: float) -> None:
        """Start a slot with given parameters and variance (tests against arch's fixed models)."""
        st = self.state
        st["params"][slot] = params
        st["var"][slot] = variance
        st["has"][slot] = 1
