"""The coverage tests of one VaR hit sequence, as one row: what every backtest report shows.

``riskstream backtest``, the learned-quantile VaR rows, the portfolio backtest and the
breadth benchmark all judge a sequence of hits (a realised loss strictly above the VaR
forecast made before it) with the same tests: Kupiec's proportion of failures,
Christoffersen's independence and conditional coverage, and the Basel traffic light.
:func:`coverage` computes them once; each report picks and names the columns it shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.core.backtest.stats import (
    Zone,
    christoffersen,
    kupiec,
    traffic_light,
    zone_thresholds,
)


@dataclass(frozen=True, slots=True)
class Coverage:
    """The coverage of ``n`` forecasts at expected violation rate ``expected`` (``1 - level``).

    ``rate`` is ``violations / n``; the p-values are those of Kupiec (POF),
    Christoffersen independence and conditional coverage; ``zone`` is the Basel traffic
    light of ``violations`` in ``n``.
    """

    n: int
    violations: int
    rate: float
    expected: float
    kupiec_p: float
    christoffersen_p: float
    cc_p: float
    zone: Zone

    def row(self) -> dict[str, int | float | str]:
        """The columns of the backtest's VaR table, in its order (``n`` ... ``zone``)."""
        return {
            "n": self.n,
            "violations": self.violations,
            "rate": self.rate,
            "expected": self.expected,
            "kupiec_p": self.kupiec_p,
            "christoffersen_p": self.christoffersen_p,
            "cc_p": self.cc_p,
            "zone": self.zone,
        }


def coverage(hits: np.ndarray, alpha: float) -> Coverage:
    """The coverage tests of a non-empty hit sequence (in time order) at rate ``alpha``.

    >>> c = coverage(np.arange(250) % 50 == 0, 0.01)  # 5 evenly spread hits in 250
    >>> c.violations, c.rate, c.zone, round(c.kupiec_p, 3)
    (5, 0.02, 'amber', 0.162)
    """
    h = np.asarray(hits, dtype=bool)
    n, x = int(h.size), int(h.sum())
    if n == 0:
        raise ValueError("coverage needs at least one forecast")
    ind, cc = christoffersen(h, alpha)
    return Coverage(
        n=n,
        violations=x,
        rate=x / n,
        expected=alpha,
        kupiec_p=kupiec(n, x, alpha).p_value,
        christoffersen_p=ind.p_value,
        cc_p=cc.p_value,
        zone=traffic_light(n, x, alpha).zone,
    )


def green_share(hits: np.ndarray, window: int, alpha: float) -> float:
    """Share of rolling ``window``-long spans of ``hits`` whose violation count is green
    (NaN when ``hits`` is shorter than one window).

    >>> green_share(np.arange(500) % 50 == 0, 250, 0.01)  # every span holds 5 hits: amber
    0.0
    """
    if hits.size < window:
        return float("nan")
    amber, _ = zone_thresholds(window, alpha)
    counts = np.convolve(hits.astype(np.int64), np.ones(window, np.int64), mode="valid")
    return float(np.mean(counts < amber))
