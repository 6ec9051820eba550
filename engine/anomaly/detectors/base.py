"""The interface every anomaly detector implements, and what it returns.

A detector reads rows of features (one row per event, columns named by the feature
set it was built for) and returns, per row, a *surprisal*: ``-log10`` of the tail
probability of the row under the recent normal behaviour of its key (or of the whole
stream, for detectors calibrated globally). Surprisals are calibrated
(:mod:`engine.anomaly.calibration`), so ``S >= 4`` (calibrated score >= 0.9999) means
the same rarity on every stream.

The verb pair, as everywhere in riskstream:

``update(slots, X, learn=True)``
    score one micro-batch of rows in arrival order, then learn them: the surprisal of
    row ``i`` uses rows up to ``i - 1`` of the same key (and a model fitted on earlier
    data). ``learn=False`` scores without changing any state.
``components()``
    the per-key state (online components persisted with the key's row), so a
    restarted worker resumes where it stopped. Global model state (a fitted forest)
    is a versioned artifact, not per-key state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from engine.core.online import OnlineComponent


@dataclass(slots=True)
class Scores:
    """A detector's verdict on a micro-batch (rows in input order).

    ``surprisal`` (n,) is the combined, calibrated surprisal (0 where nothing could
    be scored yet); ``channels`` (n, len(names)) the surprisal of each channel the
    detector combined, which is what an alert reports as the drivers, and ``values``
    the channels' own values (a feature, a model's raw score).
    """

    surprisal: np.ndarray
    channels: np.ndarray
    names: tuple[str, ...]
    values: np.ndarray


class Detector(Protocol):
    """An online anomaly detector (see the module docstring)."""

    name: str
    version: str

    def components(self) -> tuple[OnlineComponent, ...]:
        """Per-key state, persisted in the key's row; empty if the detector has none."""
        ...

    def update(self, slots: np.ndarray, X: np.ndarray, *, learn: bool = True) -> Scores:
        """Score rows ``X`` (features in the order the detector was built for), then learn."""
        ...


def combine(channels: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted Bonferroni combination of channel surprisals: ``max_k (S_k + log10 w_k)``.

    ``w_k`` are the channels' shares of the false-alarm budget (equal by default; they
    are normalised to sum to 1 over the channels a row has). If every channel is
    calibrated, so is the result (conservatively when channels are dependent): under
    normal behaviour ``P(max_k (S_k + log10 w_k) >= s) <= sum_k w_k 10**-s = 10**-s``.
    NaN channels are ignored; a row with none gives 0. The result is at least 0.

    >>> combine(np.array([[5.0, 1.0], [0.2, np.nan], [np.nan, np.nan]])).round(3).tolist()
    [4.699, 0.2, 0.0]
    >>> combine(np.array([[5.0, 1.0]]), np.array([0.8, 0.2])).round(3).tolist()
    [4.903]
    """
    n, k = channels.shape
    if k == 0:
        return np.zeros(n)
    w = np.ones(k) if weights is None else np.asarray(weights, dtype=np.float64)
    valid = ~np.isnan(channels)
    total = (valid * w).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        adjusted = np.where(valid, channels + np.log10(w), -np.inf).max(axis=1)
        out = adjusted - np.log10(total)
    return np.where(total > 0, np.maximum(out, 0.0), 0.0)


def column_index(features: Sequence[str], wanted: Sequence[str]) -> np.ndarray:
    """Positions of ``wanted`` feature names in ``features``; a clear error if one is missing."""
    missing = [w for w in wanted if w not in features]
    if missing:
        raise ValueError(f"features {missing} are not among {list(features)}")
    return np.array([list(features).index(w) for w in wanted], dtype=np.int64)


def squash(x: np.ndarray, scale: float = 4.0) -> np.ndarray:
    """Map standardised features to (0, 1): ``0.5 + 0.5 tanh(x / scale)``; NaN -> 0.5.

    >>> squash(np.array([0.0, np.nan, 1e9])).tolist()
    [0.5, 0.5, 1.0]
    """
    out = 0.5 + 0.5 * np.tanh(np.asarray(x, dtype=np.float64) / scale)
    return np.where(np.isnan(out), 0.5, out)


def nan_to_zero(X: np.ndarray) -> np.ndarray:
    """Model input: NaN features (not yet defined) as 0, the neutral value of standardised ones."""
    return np.nan_to_num(np.asarray(X, dtype=np.float64), nan=0.0, posinf=1e6, neginf=-1e6)


def surprisal_threshold(score_threshold: float) -> float:
    """The surprisal a calibrated-score threshold stands for (0.9999 -> 4)."""
    return -math.log10(1.0 - score_threshold)
