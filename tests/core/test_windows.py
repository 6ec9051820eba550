"""Rolling windows against numpy, across slots, batch boundaries and restarts."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from engine.core.keyed import KeyedBook
from engine.core.slots import BLOCK
from engine.core.windows import RollingWindow, WindowStats

PROBS = (0.01, 0.025, 0.05)


def reference(
    values: np.ndarray, size: int, min_obs: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quantiles, tail means and moments after each value, computed directly."""
    q = np.full((values.size, len(PROBS)), np.nan)
    tail = np.full((values.size, len(PROBS)), np.nan)
    mom = np.full((values.size, 4), np.nan)
    for i in range(values.size):
        window = values[max(0, i + 1 - size) : i + 1]
        if window.size >= min_obs:
            q[i] = np.quantile(window, PROBS)
            for j, p in enumerate(PROBS):
                k = max(1, math.ceil(window.size * p))
                tail[i, j] = np.sort(window)[:k].mean()
        if window.size >= 30:
            mom[i] = [window.mean(), window.std(), stats.skew(window), stats.kurtosis(window)]
    return q, tail, mom


def test_matches_numpy_per_slot_with_interleaved_slots() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    slots = rng.integers(0, 3, n)
    values = rng.standard_t(4, n) * 0.01
    w = RollingWindow("w", size=250, probs=PROBS, min_obs=100)
    w.ensure(3)
    out = w.update(slots, values)
    for s in range(3):
        mine = slots == s
        q, tail, mom = reference(values[mine], 250, 100)
        np.testing.assert_allclose(out.q_after[mine], q, rtol=1e-12, atol=1e-15, equal_nan=True)
        np.testing.assert_allclose(out.tail_after[mine], tail, rtol=1e-12, equal_nan=True)
        np.testing.assert_allclose(
            out.moments_after[mine], mom, rtol=1e-6, atol=1e-12, equal_nan=True
        )
        # "before" is the previous "after" of the same slot
        np.testing.assert_array_equal(out.q_before[mine][1:], out.q_after[mine][:-1])


@settings(max_examples=30, deadline=None)
@given(cuts=st.lists(st.integers(1, 799), max_size=6, unique=True))
def test_batch_boundaries_do_not_change_anything(cuts: list[int]) -> None:
    rng = np.random.default_rng(1)
    slots, values = rng.integers(0, 2, 800), rng.standard_normal(800)
    values[rng.random(800) < 0.05] = np.nan
    whole = RollingWindow("w", 64, PROBS, min_obs=10)
    whole.ensure(2)
    expected = whole.update(slots, values)
    parts = RollingWindow("w", 64, PROBS, min_obs=10)
    parts.ensure(2)
    edges = [0, *sorted(cuts), 800]
    got = [parts.update(slots[a:b], values[a:b]) for a, b in itertools.pairwise(edges)]
    # every statistic, before and after each value: a value's "before" is computed at the
    # slot's first value of a batch and copied from the previous "after" within one
    for name in WindowStats.__slots__:
        stacked = np.vstack([getattr(g, name) for g in got])
        np.testing.assert_array_equal(stacked, getattr(expected, name), err_msg=name)


def test_nan_values_are_not_pushed() -> None:
    w = RollingWindow("w", 4, (0.5,), min_obs=1)
    w.ensure(1)
    w.update(np.zeros(4, np.int64), np.array([1.0, np.nan, 2.0, np.nan]))
    assert w.window(0).tolist() == [1.0, 2.0]


def test_restart_through_blocks_continues_bit_for_bit() -> None:
    rng = np.random.default_rng(2)
    size, n = 300, 5000  # several laps of the ring, so blocks are written, overwritten, deleted
    slots, values = rng.integers(0, 4, n), rng.standard_normal(n)
    keys = [f"K{i}" for i in range(4)]

    def book() -> tuple[KeyedBook, RollingWindow]:
        w = RollingWindow("win", size, PROBS, extra=100)
        b = KeyedBook((w,))
        return b, w

    ref_book, ref = book()
    ref_slots = ref_book.slots_for([keys[s] for s in slots], None)
    ref.update(ref_slots[:3000], values[:3000])
    table: dict[str, bytes] = {}
    for key, _, row in ref_book.rows(np.unique(ref_slots[:3000])):
        if row is None:
            table.pop(key, None)
        else:
            table[key] = row
    expected = ref.update(ref_slots[3000:], values[3000:])

    new_book, restored = book()
    new_slots = new_book.slots_for([keys[s] for s in slots[3000:]], table.get)
    got = restored.update(new_slots, values[3000:])
    np.testing.assert_array_equal(got.q_after, expected.q_after)
    np.testing.assert_array_equal(got.moments_after, expected.moments_after)
    # only the blocks still in the ring survive in the table (stale ones were deleted)
    blocks_per_key = sum(1 for k in table if k.startswith("K0\x00"))
    assert blocks_per_key <= restored.state["ring"].shape[1] // BLOCK


@pytest.mark.parametrize("size", [1, 0])
def test_rejects_windows_too_small(size: int) -> None:
    with pytest.raises(ValueError, match="size must be at least 2"):
        RollingWindow("w", size, (0.5,))


def _sorted_reference(values: np.ndarray, size: int, probs: tuple[float, ...]) -> np.ndarray:
    """Quantiles and tail means after each value, read from a full sort with the kernel's arithmetic."""
    out = np.full((values.size, 2 * len(probs)), np.nan)
    for i in range(values.size):
        window = np.sort(values[max(0, i + 1 - size) : i + 1])
        m = window.size
        for j, p in enumerate(probs):
            h = (m - 1) * p
            lo = int(np.floor(h))
            hi = window[lo + 1] if lo + 1 < m else window[lo]
            out[i, j] = window[lo] + (h - lo) * (hi - window[lo])
            k = max(1, int(np.ceil(m * p)))
            total = 0.0
            for t in range(k):
                total += window[t]
            out[i, len(probs) + j] = total / k
    return out


@pytest.mark.parametrize("ties", [False, True])
def test_the_kept_lower_tail_gives_exactly_the_full_sorts_statistics(ties: bool) -> None:
    # Volatility that falls then rises: the tail's values leave the window faster than
    # new ones replace them (re-selections from the ring), then the reverse.
    rng = np.random.default_rng(7)
    n, size = 4000, 200
    scale = np.concatenate([np.linspace(3.0, 0.2, n // 2), np.linspace(0.2, 3.0, n - n // 2)])
    values = rng.standard_t(3, n) * scale
    if ties:
        values = np.round(values, 1)
        values[rng.random(n) < 0.3] = 0.0
    w = RollingWindow("w", size, PROBS, min_obs=1)
    w.ensure(1)
    assert w.tail_width < size  # the statistics read a tail, not a full sorted copy
    out = w.update(np.zeros(n, np.int64), values)
    expected = _sorted_reference(values, size, PROBS)
    np.testing.assert_array_equal(out.q_after, expected[:, : len(PROBS)])
    np.testing.assert_array_equal(out.tail_after, expected[:, len(PROBS) :])


def test_a_window_fed_only_nan_allocates_no_ring_until_its_first_value() -> None:
    w = RollingWindow("w", 100, PROBS, min_obs=10)
    w.ensure(3)
    out = w.update(np.array([0, 1, 2]), np.full(3, np.nan))
    assert w.state["ring"].shape == (w.state.capacity, 0)
    assert np.isnan(out.q_after).all() and w.window(1).size == 0
    w.update(np.array([1]), np.array([0.5]))
    assert w.state["ring"].shape[1] >= 100  # allocated for every slot at once
    assert w.window(1).tolist() == [0.5] and w.window(0).size == 0


def test_a_restored_window_allocates_its_ring_when_blocks_come_back() -> None:
    def book() -> tuple[KeyedBook, RollingWindow]:
        w = RollingWindow("win", 100, PROBS, min_obs=10)
        return KeyedBook((w,)), w

    first, w = book()
    slots = first.slots_for(["A"] * 150, None)
    values = np.random.default_rng(3).standard_normal(150)
    w.update(slots, values)
    table = {k: row for k, _, row in first.rows(np.unique(slots)) if row is not None}
    second, restored = book()
    assert not restored.state.materialized("ring")
    second.slots_for(["A"], table.get)
    assert restored.state.materialized("ring") and restored.state.materialized("tail")
    np.testing.assert_array_equal(restored.window(0), values[-100:])
    more = np.random.default_rng(4).standard_normal(50)
    np.testing.assert_array_equal(
        restored.update(np.zeros(50, np.int64), more).q_after,
        w.update(np.zeros(50, np.int64), more).q_after,
    )
