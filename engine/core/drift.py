"""Concept drift: the Page-Hinkley test per symbol, as an online component of the book's rows.

The recursion is river's :class:`river.drift.PageHinkley` (same parameters, same
detections, tested against it), kept in numpy columns so every symbol's detector is
persisted in its state row and a micro-batch is one compiled loop. For observations
``x_1, x_2, ...`` of one symbol (here: the loss of a model's forecasts):

    mean_n = mean(x_1..x_n);  dev = x_n - mean_n
    up_n   = alpha * up_{n-1}   + dev - delta;   min_up   = min(min_up, up_n)
    down_n = alpha * down_{n-1} + dev + delta;   max_down = max(max_down, down_n)

and once ``n >= min_instances`` drift is detected when ``up_n - min_up > threshold``
(mode ``up``: the loss grew), or ``max_down - down_n > threshold`` (``down``), or either
(``both``). After a detection the detector starts afresh with the next observation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numba
import numpy as np

from engine.core.online import OnlineComponent
from engine.core.slots import Column

Mode = Literal["up", "down", "both"]
_MODES = {"up": 0, "down": 1, "both": 2}


@numba.njit(cache=True, nogil=True)
def _page_hinkley(
    slots,
    x,
    n,
    mean,
    up,
    down,
    min_up,
    max_down,
    pending,
    drifts,
    min_instances,
    delta,
    threshold,
    alpha,
    mode,
    detected,
    statistic,
):  # pragma: no cover - compiled
    for i in range(slots.shape[0]):
        s = slots[i]
        detected[i] = False
        statistic[i] = np.nan
        v = x[i]
        if np.isnan(v):
            continue
        if pending[s]:  # river resets at the update after a detection
            n[s] = 0
            mean[s] = 0.0
            up[s] = 0.0
            down[s] = 0.0
            min_up[s] = np.inf
            max_down[s] = -1.0
            pending[s] = 0
        n[s] += 1
        mean[s] += (v - mean[s]) / n[s]
        dev = v - mean[s]
        up[s] = alpha * up[s] + dev - delta
        down[s] = alpha * down[s] + dev + delta
        if up[s] < min_up[s]:
            min_up[s] = up[s]
        if down[s] > max_down[s]:
            max_down[s] = down[s]
        if n[s] >= min_instances:
            inc = up[s] - min_up[s]
            dec = max_down[s] - down[s]
            stat = inc if mode == 0 else dec if mode == 1 else max(inc, dec)
            statistic[i] = stat
            hit = (
                (inc > threshold)
                if mode == 0
                else (dec > threshold)
                if mode == 1
                else (inc > threshold or dec > threshold)
            )
            if hit:
                detected[i] = True
                pending[s] = 1
                drifts[s] += 1


class PageHinkleyDrift(OnlineComponent):
    """Page-Hinkley drift detection per slot (see the module docstring).

    ``drifts`` counts detections; ``refit_due`` is set by a detection and cleared by
    :meth:`refitted` (the model was refitted or replaced).

    >>> ph = PageHinkleyDrift("drift_demo", min_instances=5, delta=0.0, threshold=1.0, mode="up")
    >>> ph.ensure(1)
    >>> hit, _ = ph.update(np.zeros(12, np.int64), np.array([0.0] * 8 + [2.0] * 4))
    >>> hit.nonzero()[0].tolist(), int(ph.state["refit_due"][0])
    ([8], 1)
    """

    def __init__(
        self,
        name: str,
        *,
        min_instances: int = 30,
        delta: float = 0.005,
        threshold: float = 50.0,
        alpha: float = 1 - 0.0001,
        mode: Mode = "both",
    ) -> None:
        if min_instances < 1:
            raise ValueError("min_instances must be at least 1")
        if threshold <= 0:
            raise ValueError("threshold must be positive")
        if not 0.0 < alpha <= 1.0:
            raise ValueError("alpha must be in (0, 1]")
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {list(_MODES)}")
        self.name = name  # type: ignore[misc]
        self.min_instances, self.delta, self.threshold = (
            int(min_instances),
            float(delta),
            float(threshold),
        )
        self.alpha, self.mode = float(alpha), mode
        super().__init__()

    def columns(self) -> Sequence[Column]:
        return (
            Column("n", np.int64, 0),
            Column("mean", np.float64, 0.0),
            Column("up", np.float64, 0.0),
            Column("down", np.float64, 0.0),
            Column("min_up", np.float64, np.inf),
            Column("max_down", np.float64, -1.0),
            Column("pending", np.int8, 0),
            Column("drifts", np.int64, 0),
            Column("refit_due", np.int8, 0),
            Column("seen", np.int64, 0),
        )

    def update(self, slots: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Feed one micro-batch (NaN: no observation). Returns ``(detected, statistic)`` per row."""
        st = self.state
        detected = np.zeros(slots.shape[0], np.bool_)
        statistic = np.empty(slots.shape[0])
        _page_hinkley(
            slots,
            x,
            st["n"],
            st["mean"],
            st["up"],
            st["down"],
            st["min_up"],
            st["max_down"],
            st["pending"],
            st["drifts"],
            self.min_instances,
            self.delta,
            self.threshold,
            self.alpha,
            _MODES[self.mode],
            detected,
            statistic,
        )
        np.add.at(st["seen"], slots[~np.isnan(x)], 1)
        st["refit_due"][slots[detected]] = 1
        return detected, statistic

    def refitted(self, slot: int) -> None:
        """The slot's model was refitted: clear its ``refit_due`` mark."""
        self.state["refit_due"][slot] = 0
