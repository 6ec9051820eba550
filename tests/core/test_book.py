"""The price book: a restarted book that reloads its rows continues like one that never stopped."""

from __future__ import annotations

import numpy as np

from engine.core import PriceRiskBook, Status
from engine.validation import PriceColumns


def columns(symbols: list[str], prices: np.ndarray, start: int) -> PriceColumns:
    n = len(symbols)
    return PriceColumns(
        symbols=symbols,
        ts=np.arange(start, start + n, dtype=np.int64) * 1000,
        price=prices,
        volume=np.full(n, np.nan),
        event_ids=[None] * n,
        event_hash=np.zeros(n, np.int64),
        partition=np.array([hash(s) % 3 for s in symbols], np.int32),
        offset=np.arange(start, start + n, dtype=np.int64),
        source=[None] * n,  # type: ignore[list-item]
    )


def stream(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    names = [f"S{i}" for i in range(7)]
    symbols = [names[i] for i in rng.integers(0, 7, n)]
    prices = 100 * np.exp(rng.normal(0, 0.02, n))
    return symbols, prices


def test_restart_through_rows_equals_uninterrupted_run() -> None:
    symbols, prices = stream(2000, 5)
    whole = PriceRiskBook()
    whole.step(columns(symbols[:1200], prices[:1200], 0))
    expected = whole.step(columns(symbols[1200:], prices[1200:], 1200))

    before = PriceRiskBook()
    first = before.step(columns(symbols[:1200], prices[:1200], 0))
    rows = {key: row for key, _, row in before.rows(first.touched)}
    after = PriceRiskBook()
    got = after.step(columns(symbols[1200:], prices[1200:], 1200), load_row=rows.get)

    np.testing.assert_array_equal(got.status, expected.status)
    np.testing.assert_array_equal(got.sigma, expected.sigma)
    for level in whole.var_levels:
        np.testing.assert_array_equal(got.breach[level], expected.breach[level])
    assert [after.index.keys[s] for s in got.slots] == [whole.index.keys[s] for s in expected.slots]


def test_replaying_a_batch_after_restart_changes_nothing() -> None:
    symbols, prices = stream(500, 6)
    book = PriceRiskBook()
    step = book.step(columns(symbols, prices, 0))
    rows = {key: row for key, _, row in book.rows(step.touched)}
    restarted = PriceRiskBook()
    replay = restarted.step(columns(symbols, prices, 0), load_row=rows.get)
    assert (replay.status == Status.REPLAY).all()
    assert replay.slots.size == 0
    assert {k: r for k, _, r in restarted.rows(range(len(restarted)))} == rows


def test_rows_carry_the_source_partition_of_their_key() -> None:
    symbols, prices = stream(100, 7)
    book = PriceRiskBook()
    cols = columns(symbols, prices, 0)
    step = book.step(cols)
    partitions = {s: int(p) for s, p in zip(cols.symbols, cols.partition, strict=True)}
    for key, partition, _ in book.rows(step.touched):
        assert partition == partitions[key]
