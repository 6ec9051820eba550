"""Rows written before a bit ring was narrowed (int64 rings) restore into today's layout."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.core.champion import ChampionSelector
from engine.core.keyed import KeyedBook
from engine.core.slots import Column

LEVELS = (0.975, 0.99)
W = 20


class Int64Rings(ChampionSelector):
    """The previous layout: every ``was`` ring stored at its former type."""

    def columns(self) -> Sequence[Column]:
        return tuple(
            Column(c.name, c.was, c.fill, c.width, c.kind, c.ring_head) if c.was else c
            for c in super().columns()
        )


def make(cls: type[ChampionSelector]) -> tuple[KeyedBook, ChampionSelector]:
    sel = cls(("a", "b"), LEVELS, 0.99, 0.975, window=W, margin=0.1, patience=5)
    return KeyedBook((sel,)), sel


def feed(book: KeyedBook, sel: ChampionSelector, returns: np.ndarray, var: np.ndarray, load=None):  # type: ignore[no-untyped-def]
    slots = book.slots_for(["X"] * returns.size, load)
    return sel.update(slots, returns, var, 1.2 * var, var, 1.2 * var)


def test_a_row_with_int64_hit_blocks_continues_exactly_in_the_narrow_layout() -> None:
    rng = np.random.default_rng(11)
    returns = rng.standard_t(3, 300) * 0.01
    var = np.stack([np.full((300, 2), 0.02), np.full((300, 2), 0.03)], axis=1)
    old_book, old = make(Int64Rings)
    assert old.state["hits"].dtype == np.int64
    feed(old_book, old, returns[:170], var[:170])  # several laps of the 20-return window
    table = {k: row for k, _, row in old_book.rows(np.array([0])) if row is not None}

    new_book, new = make(ChampionSelector)
    assert new.state["hits"].dtype == np.int8 and new.fingerprint != old.fingerprint
    assert new.legacy_fingerprint == old.fingerprint
    got = feed(new_book, new, returns[170:], var[170:], table.get)
    expected = feed(old_book, old, returns[170:], var[170:])
    np.testing.assert_array_equal(got.live, expected.live)
    np.testing.assert_array_equal(got.var_after, expected.var_after)
    np.testing.assert_array_equal(new.state["counts"][0], old.state["counts"][0])
    np.testing.assert_array_equal(new.state["hits"][0], old.state["hits"][0])


def test_a_row_of_an_unrelated_layout_still_starts_cold() -> None:
    old_book, old = make(Int64Rings)
    feed(old_book, old, np.full(50, -0.05), np.full((50, 2, 2), 0.02))
    table = {k: row for k, _, row in old_book.rows(np.array([0])) if row is not None}
    other = ChampionSelector(("a", "b", "c"), LEVELS, 0.99, 0.975, window=W)
    book = KeyedBook((other,))
    book.slots_for(["X"], table.get)
    assert other.state["pushed"][0] == 0
