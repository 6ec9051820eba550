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


def test_a_changed_model_starts_cold_while_the_others_keep_their_state() -> None:
    from engine.core.volatility import EWMAVolatility

    symbols, prices = stream(300, 8)
    book = PriceRiskBook(EWMAVolatility(lam=0.94, warmup=5))
    step = book.step(columns(symbols, prices, 0))
    rows = {key: row for key, _, row in book.rows(step.touched)}

    class RetunedEWMA(EWMAVolatility):
        state_version = 2  # same columns, new meaning: its records must not be reused

    upgraded = PriceRiskBook(RetunedEWMA(lam=0.94, warmup=5))
    upgraded.slots_for(["S0"], rows.get)
    old, new = book.index.slot("S0"), upgraded.index.slot("S0")
    assert upgraded.sequencer.export(new) == book.sequencer.export(old)  # kept
    assert upgraded.backtest.export(new) == book.backtest.export(old)  # kept
    assert upgraded.volatility.export(new)["nobs"] == 0  # cold


def test_a_foreign_row_starts_the_key_cold() -> None:
    book = PriceRiskBook()
    book.slots_for(["X"], {"X": b'{"format": 1}'}.get)
    slot = book.index.slot("X")
    assert book.sequencer.export(slot)["n_ticks"] == 0
