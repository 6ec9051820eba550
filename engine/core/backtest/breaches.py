"""VaR violations and their running counts.

A *violation* (breach) of level ``a`` at observation ``t`` happens when the realised
loss exceeds the forecast made before the return was known:
:math:`-r_t > \\mathrm{VaR}_{a,\\,t|t-1}`. Only observations with a forecast count.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

from engine.config import level_label
from engine.core.online import OnlineComponent
from engine.core.slots import Column


@numba.njit(cache=True, nogil=True)
def _count(slots, returns, var_before, tested, violated, breach):  # pragma: no cover - compiled
    for i in range(slots.shape[0]):
        r = returns[i]
        v = var_before[i]
        if np.isnan(r) or np.isnan(v):
            breach[i] = False
            continue
        s = slots[i]
        tested[s] += 1
        hit = -r > v
        breach[i] = hit
        if hit:
            violated[s] += 1


class BreachCounters(OnlineComponent):
    """Per symbol and level: forecasts tested and violations, updated per tick.

    >>> counters = BreachCounters(levels=(0.99,)); counters.ensure(1)
    >>> hits = counters.update(np.zeros(3, np.int64), np.array([-0.03, 0.01, -0.01]),
    ...                        {0.99: np.array([0.02, 0.02, np.nan])})
    >>> hits[0.99].tolist(), counters.counts(0)
    ([True, False, False], {0.99: (2, 1)})
    """

    name = "breaches"

    def __init__(self, levels: Sequence[float]) -> None:
        self.levels = tuple(sorted(levels))
        super().__init__()

    def columns(self) -> Sequence[Column]:
        cols: list[Column] = []
        for level in self.levels:
            cols += [
                Column(f"n_{level_label(level)}", np.int64, 0),
                Column(f"x_{level_label(level)}", np.int64, 0),
            ]
        return cols

    def update(
        self, slots: np.ndarray, returns: np.ndarray, var_before: dict[float, np.ndarray]
    ) -> dict[float, np.ndarray]:
        """Count violations of each level's prior forecast; returns the breach flags per level."""
        out: dict[float, np.ndarray] = {}
        for level in self.levels:
            label = level_label(level)
            flags = np.empty(slots.shape[0], dtype=np.bool_)
            _count(
                slots,
                returns,
                var_before[level],
                self.state[f"n_{label}"],
                self.state[f"x_{label}"],
                flags,
            )
            out[level] = flags
        return out

    def counts(self, slot: int) -> dict[float, tuple[int, int]]:
        """``{level: (tested, violated)}`` for one slot."""
        tested, violated = self.counts_many(np.array([slot]))
        return {level: (tested[level][0], violated[level][0]) for level in self.levels}

    def counts_many(
        self, slots: np.ndarray
    ) -> tuple[dict[float, list[int]], dict[float, list[int]]]:
        """``(tested, violated)``, each ``{level: [count per slot]}``, gathered in one step."""
        tested = {
            level: self.state[f"n_{level_label(level)}"][slots].tolist() for level in self.levels
        }
        violated = {
            level: self.state[f"x_{level_label(level)}"][slots].tolist() for level in self.levels
        }
        return tested, violated
