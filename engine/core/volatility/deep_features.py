"""Per-tick features of the deep volatility models, one compiled recursion for training and serving.

At a tick ``t`` with a log return ``r_t`` (decimal) and a realized variance ``RV_t``
(decimal^2), once both are known, the feature vector is, in this order (:data:`FEATURES`):

``ret``            ``100 * r_t``, the return in percent;
``log_rv``         ``log RV_t`` (floored at ``1e-12``);
``log_ewma_var``   ``log`` of the RiskMetrics EWMA variance forecast for ``t + 1``,
                   ``lam * v + (1 - lam) * r_t^2``
                   (:func:`~engine.core.volatility.ewma.ewma_next`);
``log_garch_var``  ``log`` of a GARCH(1,1) variance forecast for ``t + 1`` with *fixed*
                   parameters (``omega + alpha * r_t^2 + beta * v``), estimated once on the
                   training period and written in the model card.

Both recursions start from ``init_var`` (the training period's mean squared return). A
tick without a return or a realized variance leaves the state unchanged. A window is the
last ``window`` feature vectors, oldest first; it is *ready* once ``window + burn``
vectors have been seen, so the recursions have forgotten their start. Everything at
``t`` uses data up to and including ``t``: the model's output is the forecast of
``log RV_{t+1}``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numba
import numpy as np

from engine.core.volatility.ewma import ewma_next

FEATURES = ("ret", "log_rv", "log_ewma_var", "log_garch_var")
#: The returns-only variant's inputs (daily-only feeds): the same recursion with the squared
#: return ``r_t^2`` in place of ``RV_t``, so ``log_r2`` is ``log max(r_t^2, 1e-12)``.
RETURNS_FEATURES = ("ret", "log_r2", "log_ewma_var", "log_garch_var")
N_FEATURES = len(FEATURES)
FLOOR = 1e-12


@dataclass(frozen=True, slots=True)
class FeatureParams:
    """Constants of the feature recursions (written in the model card).

    >>> FeatureParams(0.94, 1e-6, 0.1, 0.85, 1e-4, window=22, burn=50).window
    22
    """

    ewma_lambda: float
    garch_omega: float
    garch_alpha: float
    garch_beta: float
    init_var: float
    window: int = 22
    burn: int = 50

    def __post_init__(self) -> None:
        if not 0.0 < self.ewma_lambda < 1.0:
            raise ValueError("ewma_lambda must be strictly between 0 and 1")
        if self.garch_omega <= 0 or self.garch_alpha < 0 or self.garch_beta < 0:
            raise ValueError("GARCH parameters must be omega > 0, alpha >= 0, beta >= 0")
        if self.garch_alpha + self.garch_beta >= 1.0:
            raise ValueError("GARCH alpha + beta must be below 1 (a stationary recursion)")
        if self.init_var <= 0:
            raise ValueError("init_var must be positive")
        if self.window < 1 or self.burn < 0:
            raise ValueError("window must be at least 1 and burn at least 0")

    @property
    def ready_after(self) -> int:
        """Feature vectors a symbol needs before its first window."""
        return self.window + self.burn

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> FeatureParams:
        return cls(**{k: doc[k] for k in cls.__dataclass_fields__})


@numba.njit(cache=True, nogil=True)
def advance(
    slots,
    returns,
    rv,
    ewma,
    garch,
    nobs,
    ring,
    lam,
    omega,
    alpha,
    beta,
    init_var,
    window,
    ready_after,
    out,
):  # pragma: no cover - compiled
    """Push each valid tick's features into its slot's ring (``ring[slot, pos * F + f]``).

    Returns ``(used, ready)`` per tick: whether the tick pushed a feature vector, and
    whether its slot's window is ready after it. Where both, ``out[i]`` (``window x F``)
    receives the window after tick ``i``, oldest first.
    """
    n = slots.shape[0]
    f = 4
    used = np.zeros(n, np.bool_)
    ready = np.zeros(n, np.bool_)
    for i in range(n):
        s = slots[i]
        r = returns[i]
        x = rv[i]
        if np.isnan(r) or np.isnan(x):
            ready[i] = nobs[s] >= ready_after
            continue
        if nobs[s] == 0:
            ewma[s] = init_var
            garch[s] = init_var
        ewma[s] = ewma_next(ewma[s], r, lam)
        garch[s] = omega + alpha * r * r + beta * garch[s]
        pos = (nobs[s] % window) * f
        ring[s, pos] = 100.0 * r
        ring[s, pos + 1] = np.log(max(x, 1e-12))
        ring[s, pos + 2] = np.log(max(ewma[s], 1e-12))
        ring[s, pos + 3] = np.log(max(garch[s], 1e-12))
        nobs[s] += 1
        used[i] = True
        ready[i] = nobs[s] >= ready_after
        if ready[i]:
            start = nobs[s]  # the oldest vector sits where the next one goes
            for k in range(window):
                p = ((start + k) % window) * f
                for j in range(f):
                    out[i, k, j] = ring[s, p + j]
    return used, ready


def series_windows(
    returns: np.ndarray, rv: np.ndarray, params: FeatureParams
) -> tuple[np.ndarray, np.ndarray]:
    """Windows of one series, as the stream builds them: ``(windows[n, window, F], ready[n])``.

    ``windows[i]`` is the window after tick ``i``; ``ready[i]`` is true where tick ``i``
    pushed a feature vector and the window is ready (zeros elsewhere).

    >>> p = FeatureParams(0.94, 1e-6, 0.1, 0.85, 1e-4, window=2, burn=0)
    >>> w, ready = series_windows(np.array([np.nan, 0.01, 0.02]), np.array([1e-4] * 3), p)
    >>> ready.tolist(), w[2, :, 0].tolist()
    ([False, False, True], [1.0, 2.0])
    """
    n = returns.shape[0]
    windows = np.zeros((n, params.window, N_FEATURES))
    used, ready = advance(
        np.zeros(n, np.int64),
        np.asarray(returns, dtype=np.float64),
        np.asarray(rv, dtype=np.float64),
        np.zeros(1),
        np.zeros(1),
        np.zeros(1, np.int64),
        np.zeros((1, params.window * N_FEATURES)),
        params.ewma_lambda,
        params.garch_omega,
        params.garch_alpha,
        params.garch_beta,
        params.init_var,
        params.window,
        params.ready_after,
        windows,
    )
    return windows, used & ready
