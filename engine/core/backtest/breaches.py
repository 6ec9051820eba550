"""VaR violations and their running counts, for every method and level.

A *violation* (breach) of level ``a`` at observation ``t`` happens when the realised
loss exceeds the forecast made before the return was known:
:math:`-r_t > \\mathrm{VaR}_{a,\\,t|t-1}`. Only observations with a forecast count.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

from engine.core.online import OnlineComponent
from engine.core.slots import Column


@numba.njit(cache=True, nogil=True)
def _count(slots, returns, var_before, tested, violated, hits):  # pragma: no cover - compiled
    n, m, k = var_before.shape
    for i in range(n):
        s = slots[i]
        r = returns[i]
        for j in range(m):
            for level in range(k):
                v = var_before[i, j, level]
                if np.isnan(r) or np.isnan(v):
                    hits[i, j, level] = False
                    continue
                col = j * k + level
                tested[s, col] += 1
                hit = -r > v
                hits[i, j, level] = hit
                if hit:
                    violated[s, col] += 1


class BreachCounters(OnlineComponent):
    """Per symbol, method and level: forecasts tested and violations, updated per tick.

    >>> counters = BreachCounters(methods=("m",), levels=(0.99,)); counters.ensure(1)
    >>> hits = counters.update(np.zeros(3, np.int64), np.array([-0.03, 0.01, -0.01]),
    ...                        np.array([0.02, 0.02, np.nan]).reshape(3, 1, 1))
    >>> hits[:, 0, 0].tolist(), counters.counts(0)
    ([True, False, False], {('m', 0.99): (2, 1)})
    """

    name = "breaches"

    def __init__(self, methods: Sequence[str], levels: Sequence[float]) -> None:
        self.methods = tuple(methods)
        self.levels = tuple(levels)
        super().__init__()

    def columns(self) -> Sequence[Column]:
        width = len(self.methods) * len(self.levels)
        return (Column("tested", np.int64, 0, width), Column("violated", np.int64, 0, width))

    def update(self, slots: np.ndarray, returns: np.ndarray, var_before: np.ndarray) -> np.ndarray:
        """Count violations of each prior forecast ``var_before[n, method, level]``; returns the hits."""
        hits = np.empty(var_before.shape, dtype=np.bool_)
        _count(slots, returns, var_before, self.state["tested"], self.state["violated"], hits)
        return hits

    def counts_many(
        self, slots: np.ndarray, method: int
    ) -> tuple[dict[float, list[int]], dict[float, list[int]]]:
        """``(tested, violated)`` for one method, each ``{level: [count per slot]}``."""
        k = len(self.levels)
        tested = {
            lvl: self.state["tested"][slots, method * k + j].tolist()
            for j, lvl in enumerate(self.levels)
        }
        violated = {
            lvl: self.state["violated"][slots, method * k + j].tolist()
            for j, lvl in enumerate(self.levels)
        }
        return tested, violated

    def counts(self, slot: int) -> dict[tuple[str, float], tuple[int, int]]:
        """``{(method, level): (tested, violated)}`` for one slot."""
        k = len(self.levels)
        tested, violated = self.state["tested"][slot], self.state["violated"][slot]
        return {
            (method, level): (int(tested[j * k + i]), int(violated[j * k + i]))
            for j, method in enumerate(self.methods)
            for i, level in enumerate(self.levels)
        }
