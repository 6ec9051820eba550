"""When a calibrated score becomes an alert: threshold, episodes, severity.

The threshold is on the calibrated score (default 0.9999, surprisal 4): one normal
event in 10,000 crosses it, whatever the stream, because each stream's raw scores
are calibrated against its own recent behaviour. On the raw scale the threshold is
therefore adaptive: it is the running 0.9999 quantile of the stream's raw scores.

An anomaly often lasts several events (a frozen feed, a volatility burst, a crash
and its recovery). Per key, an alert *disarms* the key; it re-arms after ``rearm``
consecutive events below the threshold, so one episode gives one alert. ``rearm=0``
alerts on every event above the threshold (transactions: each is a decision).
Severity is ``critical`` when the surprisal exceeds the threshold's by
``critical_margin`` (a hundred times rarer by default), else ``warning``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from engine.anomaly.detectors.base import surprisal_threshold
from engine.core.online import OnlineComponent
from engine.core.slots import Column


@numba.njit(cache=True, nogil=True)
def _decide(slots, surprisal, threshold, rearm, n, calm, alerts, fire):  # pragma: no cover
    for i in range(slots.shape[0]):
        s = slots[i]
        n[s] += 1
        x = surprisal[i]
        if x >= threshold:
            if calm[s] >= rearm:
                fire[i] = True
                alerts[s] += 1
            calm[s] = 0
        else:
            calm[s] += 1


class AlertState(OnlineComponent):
    """Per key: events scored, consecutive events below the threshold, alerts raised."""

    def __init__(self, name: str, rearm: int) -> None:
        self.name = name  # type: ignore[misc]
        self.rearm = int(rearm)
        super().__init__()

    def columns(self) -> Sequence[Column]:
        return (
            Column("n", np.int64, 0),
            Column("calm", np.int64, 1 << 40),  # a new key is armed
            Column("alerts", np.int64, 0),
        )

    def update(self, slots: np.ndarray, surprisal: np.ndarray, threshold: float) -> np.ndarray:
        """Which rows raise an alert (rows in arrival order; NaN never does)."""
        fire = np.zeros(slots.shape[0], dtype=np.bool_)
        st = self.state
        _decide(
            np.ascontiguousarray(slots, dtype=np.int64),
            np.nan_to_num(np.asarray(surprisal, dtype=np.float64), nan=-1.0),
            threshold,
            self.rearm,
            st["n"],
            st["calm"],
            st["alerts"],
            fire,
        )
        return fire


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """Threshold on the calibrated score, episode re-arming, severity (module docstring).

    >>> p = AlertPolicy(threshold=0.9999, rearm=2)
    >>> p.surprisal, p.severity(4.5), p.severity(6.5)
    (4.0, 'warning', 'critical')
    >>> state = p.state("a")
    >>> state.ensure(1)
    >>> state.update(np.zeros(6, np.int64), np.array([5.0, 6, 1, 5, 1, 1]), p.surprisal).tolist()
    [True, False, False, False, False, False]
    """

    threshold: float = 0.9999
    rearm: int = 10
    critical_margin: float = 2.0

    def __post_init__(self) -> None:
        if not 0.5 <= self.threshold < 1.0:
            raise ValueError("the anomaly threshold must be in [0.5, 1)")
        if self.rearm < 0:
            raise ValueError("rearm must be at least 0")

    @property
    def surprisal(self) -> float:
        """The threshold as a surprisal (0.9999 -> 4)."""
        return surprisal_threshold(self.threshold)

    def severity(self, surprisal: float) -> str:
        return "critical" if surprisal >= self.surprisal + self.critical_margin else "warning"

    def state(self, name: str) -> AlertState:
        return AlertState(name, self.rearm)
