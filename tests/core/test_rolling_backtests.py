"""Rolling backtests in the stream agree, tick by tick, with the batch tests on the same window."""

from __future__ import annotations

import numpy as np
import pytest

from engine.core.backtest.rolling import RollingBacktests
from engine.core.backtest.stats import (
    acerbi_szekely_z2,
    christoffersen,
    kupiec,
    traffic_light,
)

METHODS = ("good", "thin", "other")
LEVELS = (0.95, 0.975, 0.99)
VAR_LEVELS = (0.95, 0.99)
W = 60


def scenario(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two symbols interleaved; ``thin`` underestimates risk in the second half, ``good`` is fair.

    Returns slots, returns, var_before[n, method, level], es_before[n, method, level].
    """
    rng = np.random.default_rng(seed)
    slots = rng.integers(0, 2, n)
    sigma = np.where(np.arange(n) < n // 2, 0.01, 0.02)
    returns = sigma * rng.standard_normal(n)
    z = np.array([1.6449, 1.96, 2.3263])
    es_z = np.array([2.0627, 2.3378, 2.6652])
    var = np.empty((n, 3, 3))
    es = np.empty((n, 3, 3))
    var[:, 0], es[:, 0] = sigma[:, None] * z, sigma[:, None] * es_z
    var[:, 1], es[:, 1] = 0.01 * z, 0.01 * es_z  # blind to the regime change
    var[:, 2], es[:, 2] = 0.5 * sigma[:, None] * z, 0.5 * sigma[:, None] * es_z
    var[:40, 1] = np.nan  # warming up
    es[:40, 1] = np.nan
    returns[np.flatnonzero(slots == 0)[0]] = np.nan  # a symbol's first tick has no return
    return slots, returns, var, es


def reference_flags(
    returns: np.ndarray, var: np.ndarray, es: np.ndarray, significance: float
) -> list[dict[tuple[str, float, str], float]]:
    """For one symbol's sequence: per tick, the failing tests of every series and their p-values."""
    out = []
    for t in range(len(returns)):
        window = slice(max(0, t - W + 1), t + 1)
        failing: dict[tuple[str, float, str], float] = {}
        r = returns[window]
        for j, method in enumerate(("good", "thin")):
            for level in VAR_LEVELS:
                v = var[window, j, LEVELS.index(level)]
                if r.size < W or np.isnan(v).any() or np.isnan(r).any():
                    continue
                hits = -r > v
                alpha = 1 - level
                pof = kupiec(W, int(hits.sum()), alpha)
                ind, cc = christoffersen(hits, alpha)
                for name, result in (
                    ("kupiec", pof),
                    ("christoffersen_independence", ind),
                    ("christoffersen_cc", cc),
                ):
                    if result.p_value < significance:
                        failing[(method, level, name)] = result.p_value
                light = traffic_light(W, int(hits.sum()), alpha)
                if light.zone != "green":
                    failing[(method, level, "amber")] = light.cumulative
                if light.zone == "red":
                    failing[(method, level, "red")] = light.cumulative
            li = LEVELS.index(0.975)
            v, e = var[window, j, li], es[window, j, li]
            if r.size == W and not (np.isnan(v).any() or np.isnan(r).any()):
                z2 = acerbi_szekely_z2(-r, v, e, 0.025)
                if z2.p_value < significance:
                    failing[(method, 0.975, "acerbi_szekely_z2")] = z2.p_value
        out.append(failing)
    return out


@pytest.mark.parametrize("batch", [1, 37, 5000])
def test_events_are_exactly_the_ticks_where_a_batch_test_starts_rejecting(batch: int) -> None:
    slots, returns, var, es = scenario(1600, seed=3)
    bt = RollingBacktests(METHODS, LEVELS, VAR_LEVELS, 0.975, ("good", "thin"), window=W)
    bt.ensure(2)
    events = []
    for start in range(0, len(slots), batch):
        part = slice(start, start + batch)
        for event in bt.update(slots[part], returns[part], var[part], es[part]):
            events.append((start + event.row, event))
    expected = []
    for slot in (0, 1):
        rows = np.flatnonzero(slots == slot)
        flags = reference_flags(returns[rows], var[rows], es[rows], 0.05)
        previous: dict = {}
        last_alert: dict = {}
        for t, failing in enumerate(flags):
            started = []
            for key in failing:
                if key not in previous and t - last_alert.get(key, -W) >= W:  # once per window
                    last_alert[key] = t
                    started.append(key)
            light = {k[:2] for k in started if k[2] in ("amber", "red")}
            for method, level, test in started:
                if test not in ("amber", "red"):
                    expected.append(
                        (int(rows[t]), method, level, test, failing[(method, level, test)])
                    )
            for method, level in light:
                zone = "red" if (method, level, "red") in failing else "amber"
                p = failing[(method, level, "amber")]
                expected.append((int(rows[t]), method, level, f"traffic_light:{zone}", p))
            previous = failing
    got = [
        (
            row,
            e.method,
            e.level,
            f"traffic_light:{e.zone}" if e.test == "traffic_light" else e.test,
            e.result.p_value,
        )
        for row, e in events
    ]
    assert len(expected) > 10  # the scenario does reject: thin VaR in the volatile half
    assert {g[3] for g in got} >= {
        "kupiec",
        "christoffersen_cc",
        "traffic_light:red",
        "acerbi_szekely_z2",
    }
    assert sorted(g[:4] for g in got) == sorted(e[:4] for e in expected)
    for g, e in zip(sorted(got), sorted(expected), strict=True):
        assert g[4] == pytest.approx(e[4], rel=1e-9, abs=1e-15)
