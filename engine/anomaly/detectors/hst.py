"""river's Half-Space Trees as a raw scorer, learning online.

Half-Space Trees (Tan, Ting and Liu, 2011) score a point by the mass of the random
half-space cells it falls in, relative to the mass the model saw in its reference
window; river's implementation keeps ``n_trees`` trees of ``height`` levels and swaps
windows every ``window_size`` points. Features must lie in [0, 1]: standardised
features are squashed with :func:`~.base.squash`. Each row is scored, then learnt (the
score of row ``i`` uses rows up to ``i - 1``); rows before the first reference window is
full score NaN.

River learns one row at a time in Python (about 20-40 microseconds per row for 25 trees
of height 8), so this detector serves the offline CLI and the evaluation; ``height``
must stay at most 8 (river builds ``2**height`` nodes per tree up front).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.anomaly.detectors.base import column_index, squash


class HalfSpaceTrees:
    """A :data:`~.model.RawScorer` over the columns ``inputs`` of feature rows ``features``."""

    def __init__(
        self,
        features: Sequence[str],
        inputs: Sequence[str],
        *,
        n_trees: int = 25,
        height: int = 8,
        window_size: int = 250,
        seed: int = 0,
        scale: float = 4.0,
        learn: bool = True,
    ) -> None:
        if not 1 <= height <= 8:
            raise ValueError("height must be between 1 and 8 (river builds 2**height nodes)")
        from river.anomaly import HalfSpaceTrees as RiverHST

        self.columns = column_index(features, inputs)
        self.names = [f"x{i}" for i in range(len(self.columns))]
        self.scale = scale
        self.learn = learn
        self.window_size = window_size
        self.seen = 0
        self.model = RiverHST(n_trees=n_trees, height=height, window_size=window_size, seed=seed)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        Z = squash(np.asarray(X, dtype=np.float64)[:, self.columns], self.scale)
        out = np.empty(len(Z))
        names = self.names
        model = self.model
        for i, row in enumerate(Z.tolist()):
            x = dict(zip(names, row, strict=True))
            # river scores 0 until its first reference window is full: not a score yet
            out[i] = model.score_one(x) if self.seen >= self.window_size else np.nan
            if self.learn:
                model.learn_one(x)
                self.seen += 1
        return out
