"""Windows stored as float32: statistics of the rounded values, and old float64 rows restore."""

from __future__ import annotations

import numpy as np

from engine.core.book import WINDOW_DTYPE, PriceRiskBook
from engine.core.keyed import KeyedBook
from engine.core.windows import RollingWindow

PROBS = (0.01, 0.025, 0.05)


def window(dtype: type) -> tuple[KeyedBook, RollingWindow]:
    w = RollingWindow("returns", 200, PROBS, min_obs=50, dtype=dtype)
    return KeyedBook((w,)), w


def push(book: KeyedBook, w: RollingWindow, values: np.ndarray, load=None):  # type: ignore[no-untyped-def]
    slots = book.slots_for(["X"] * values.size, load)
    return w.update(slots, values)


def returns(n: int, seed: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).standard_t(4, n) * 0.013


def test_the_book_stores_its_residual_windows_as_float32_and_the_fits_returns_as_float64() -> None:
    book = PriceRiskBook()
    assert WINDOW_DTYPE is np.float32
    for w in book.residuals.values():
        assert w.dtype is np.float32
        assert next(c for c in w.columns() if c.name == "ring").dtype is np.float32
    assert book.returns.dtype is np.float64


def test_a_float32_window_gives_exactly_the_statistics_of_the_rounded_values() -> None:
    r = returns(700)
    book32, w32 = window(np.float32)
    book64, w64 = window(np.float64)
    got = push(book32, w32, r)
    expected = push(book64, w64, r.astype(np.float32).astype(np.float64))
    for name in ("q_before", "q_after", "tail_before", "tail_after"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name))
    np.testing.assert_allclose(got.moments_after, expected.moments_after, rtol=1e-12)
    last = w32.window(0)
    assert last.dtype == np.float64
    np.testing.assert_array_equal(last, r[-200:].astype(np.float32).astype(np.float64))
    # and within float32's precision of the unrounded values
    np.testing.assert_allclose(got.q_after[-1], push(*window(np.float64), r).q_after[-1], rtol=1e-7)


def test_a_row_persisted_with_a_float64_ring_restores_rounded_and_goes_on() -> None:
    r = returns(600, seed=9)
    old_book, old = window(np.float64)
    push(old_book, old, r[:430])  # more than two laps of the 200-value window
    table = {k: row for k, _, row in old_book.rows(np.array([0])) if row is not None}

    new_book, new = window(np.float32)
    assert new.fingerprint != old.fingerprint and new.legacy_fingerprint == old.fingerprint
    got = push(new_book, new, r[430:], table.get)
    np.testing.assert_array_equal(new.window(0), r[-200:].astype(np.float32).astype(np.float64))

    # The quantiles and tails are those of a float32 window that saw everything; the
    # moments' power sums carry the float64 history until their next exact recomputation.
    ref_book, ref = window(np.float32)
    expected = push(ref_book, ref, r)
    for name in ("q_after", "tail_after"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name)[430:])
    np.testing.assert_allclose(got.moments_after, expected.moments_after[430:], rtol=1e-5)
