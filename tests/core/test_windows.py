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
