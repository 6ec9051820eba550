"""The series features' rules for degenerate data (docs/models/anomaly.md, "Degenerate streams").

Each test states one rule of :mod:`engine.anomaly.features.series` and checks it on a small
series built for it: the quantum (scale floor), the window warm-up, the frozen-run rate
per value class, and the quiet-row definition of the measurement.
"""

from __future__ import annotations

import numpy as np

from engine.anomaly.features.series import SERIES_FEATURES, SeriesFeatures
from engine.anomaly.series import score_values
from models.anomaly.degenerate import quiet_returns

CHANGE_CHANNELS = ("change_z", "change_v", "move_3", "move_10", "burst")


def features(x: np.ndarray, **kwargs: object) -> dict[str, np.ndarray]:
    f = SeriesFeatures(**kwargs)  # type: ignore[arg-type]
    f.ensure(1)
    out = f.update(np.zeros(len(x), np.int64), np.arange(len(x)) * 60_000, np.asarray(x, float))
    return {name: out[:, j] for j, name in enumerate(SERIES_FEATURES)}


def test_a_constant_step_has_no_scale_until_the_changes_deviate() -> None:
    """A counter's first reset: its changes never varied, so no change feature scores it."""
    x = np.r_[np.arange(120.0), 0.0, 1.0, 2.0]
    f = features(x)
    for name in CHANGE_CHANNELS:
        assert np.isnan(f[name][120]), name
    assert np.isfinite(f["level_z"][120])


def test_recurring_resets_are_judged_against_the_deviation_quantum() -> None:
    """After a sawtooth's first reset its resets are the series' quantum of deviation."""
    x = (np.arange(600) % 60).astype(float)
    f = features(x)
    resets = np.arange(120, 600, 60)
    assert (np.abs(f["change_z"][resets]) <= 2.5).all(), f["change_z"][resets]
    assert (np.abs(f["change_v"][resets]) <= 2.5).all(), f["change_v"][resets]
    scores = score_values(np.arange(len(x)) * 60_000, x)
    assert np.nanmax(scores) < 0.9999


def test_a_stale_feed_keeps_its_catch_up_move_as_floor() -> None:
    """Changes of 0 with catch-up moves: the quantum is the catch-up move, not NaN."""
    rng = np.random.default_rng(3)
    x = np.repeat(100.0 + np.cumsum(rng.normal(0.0, 1.0, 40)), 30)
    f = features(x)
    later = f["change_z"][600:]
    assert np.isfinite(later).all()
    moves = np.flatnonzero(np.diff(x[600:]) != 0) + 1
    assert np.nanmax(np.abs(later[moves])) < 20.0


def test_window_statistics_wait_for_fifty_values() -> None:
    """A scale from fewer than 50 values is too noisy to standardise by (NaN, no evidence)."""
    rng = np.random.default_rng(4)
    f = features(np.cumsum(rng.normal(size=80)))
    assert np.isnan(f["level_z"][:50]).all() and np.isfinite(f["level_z"][50:]).all()
    # changes start at row 1: the 50th change is row 50, its statistics are used at row 51
    assert np.isnan(f["change_z"][:51]).all() and np.isfinite(f["change_z"][51:]).all()


def test_runs_of_a_binary_series_common_state_are_judged_by_its_own_rate() -> None:
    """A 0/1 series on 10% of the time: runs of 0 (stays 0 with probability 0.9) are not
    frozen feeds; a ticking price that freezes is still one after two repeated ticks."""
    rng = np.random.default_rng(5)
    binary = (rng.random(4000) < 0.1).astype(float)
    f = features(binary)
    run = f["frozen"]
    zeros = (binary == 0) & (run >= 40)
    assert zeros.any()
    # the 0 state's own rate: about -log10(0.9) = 0.046 per row, not the pooled 0.086
    per_row = f["frozen_surprisal"][zeros] / run[zeros]
    assert np.median(per_row) < 0.06, np.median(per_row)

    walk = 100.0 + np.cumsum(rng.normal(0.0, 0.1, 600))
    frozen = np.r_[walk, np.repeat(walk[-1], 3)]
    g = features(frozen)
    assert g["frozen_surprisal"][601] >= 4.0


def test_a_continuous_series_frozen_rate_is_the_pooled_one() -> None:
    """Values that never recur spread over every class: the class rule changes nothing."""
    rng = np.random.default_rng(6)
    walk = 100.0 + np.cumsum(rng.normal(0.0, 0.1, 3000))
    walk[::50] = walk[np.arange(0, 3000, 50) - 1]  # one repeated tick in 50
    f = features(walk)
    first = (f["frozen"] == 1) & (np.arange(3000) > 1000)
    # pooled rate about 1/50: -log10(0.02) = 1.7 for a run of one
    assert np.allclose(f["frozen_surprisal"][first], 1.7, atol=0.25)


def test_quiet_rows_exclude_every_row_a_move_stays_in_the_features() -> None:
    x = 100.0 * np.exp(np.r_[0.0, np.cumsum(np.tile([0.01, -0.01], 40))])
    x[51:] *= 0.8
    assert quiet_returns(x)[50] and not quiet_returns(x)[51:61].any() and quiet_returns(x)[61]
    assert quiet_returns(x, rows=3)[54]


def test_model_detectors_fit_on_complete_rows_only() -> None:
    """Rows with a NaN input (the warm-up) are no evidence of normal rows: read as 0 they
    were a cluster of identical rows, which broke LOF's densities (a duplicate cluster
    larger than its 20 neighbours)."""
    from engine.anomaly.series import FIT_ROWS, _model_fit

    rng = np.random.default_rng(7)
    complete = rng.normal(size=(FIT_ROWS + 50, len(SERIES_FEATURES)))
    warm_up = np.full((80, len(SERIES_FEATURES)), np.nan)
    fit = _model_fit("lof")
    probe = rng.normal(size=(20, len(SERIES_FEATURES)))
    with_warm_up = fit(np.vstack([warm_up, complete]))(probe)
    without = fit(complete)(probe)
    np.testing.assert_allclose(with_warm_up, without)
