"""The price book: restarts through persisted rows, replays, partitions, upgrades."""

from __future__ import annotations

from collections import Counter

import numpy as np

from engine.boundary.validation import PriceColumns
from engine.core import PriceRiskBook, RiskSpec, Status
from engine.core.slots import BLOCK
from engine.core.volatility.fitting import RefitSchedule

SPEC = RiskSpec(
    window=120,
    min_obs=60,
    garch_window=150,
    garch_refit=RefitSchedule(100, 25, 5),
    har_window=150,
    har_refit=RefitSchedule(100, 25, 5),
)


def columns(
    symbols: list[str], prices: np.ndarray, start: int, rv: np.ndarray | None = None
) -> PriceColumns:
    n = len(symbols)
    return PriceColumns(
        symbols=symbols,
        ts=np.arange(start, start + n, dtype=np.int64) * 1000,
        price=prices,
        volume=np.full(n, np.nan),
        rv=rv if rv is not None else np.full(n, np.nan),
        event_ids=[None] * n,
        event_hash=np.zeros(n, np.int64),
        partition=np.array([sum(map(ord, s)) % 3 for s in symbols], np.int32),
        offset=np.arange(start, start + n, dtype=np.int64),
        source=[None] * n,  # type: ignore[list-item]
    )


def stream(n: int, seed: int, names: int = 4) -> tuple[list[str], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    symbols = [f"S{i}" for i in rng.integers(0, names, n)]
    returns = rng.standard_t(5, n) * 0.01
    prices = 100 * np.exp(returns)  # independent draws per tick: returns between ticks are fine
    return symbols, prices, returns**2


def persist(table: dict[str, bytes], rows: list) -> None:
    for key, _, row in rows:
        if row is None:
            table.pop(key, None)
        else:
            table[key] = row


def test_restart_through_rows_equals_uninterrupted_run() -> None:
    symbols, prices, rv = stream(2400, 5)
    whole = PriceRiskBook(SPEC)
    whole.step(columns(symbols[:1300], prices[:1300], 0, rv[:1300]))
    expected = whole.step(columns(symbols[1300:], prices[1300:], 1300, rv[1300:]))

    before = PriceRiskBook(SPEC)
    table: dict[str, bytes] = {}
    first = before.step(columns(symbols[:1300], prices[:1300], 0, rv[:1300]))
    persist(table, before.rows(first.touched))
    after = PriceRiskBook(SPEC)  # a fresh process: fits pending at the cut are redone from the rows
    got = after.step(columns(symbols[1300:], prices[1300:], 1300, rv[1300:]), load_row=table.get)

    np.testing.assert_array_equal(got.status, expected.status)
    for vol in SPEC.vol_models:
        np.testing.assert_array_equal(got.sigma[vol], expected.sigma[vol])
        assert np.isfinite(got.sigma[vol]).any()
    np.testing.assert_array_equal(got.var, expected.var)
    np.testing.assert_array_equal(got.es, expected.es)
    np.testing.assert_array_equal(got.hits, expected.hits)


def test_small_batches_persist_each_ring_block_change_once() -> None:
    """Batch after batch, a block that fell out of its ring is deleted once, never again,
    no key keeps more blocks than its ring holds, and a restart from the rows of the last
    batch continues exactly as the uninterrupted book."""
    symbols, prices, rv = stream(3000, 8, names=3)
    book = PriceRiskBook(SPEC)
    table: dict[str, bytes] = {}
    deletes: Counter[str] = Counter()
    cut = 2400
    for start in range(0, cut, 7):
        end = min(start + 7, cut)
        step = book.step(columns(symbols[start:end], prices[start:end], start, rv[start:end]))
        rows = book.rows(step.touched)
        deletes.update(key for key, _, row in rows if row is None)
        persist(table, rows)
    assert deletes, "the rings wrapped, so blocks fell out of them"
    assert max(deletes.values()) == 1, deletes.most_common(3)
    blocks: Counter[str] = Counter(key.rsplit(":", 1)[0] for key in table if "\x00" in key)
    for component in book.components:
        for ring in component.state.rings:
            capacity = ring.width // BLOCK
            for symbol in set(symbols):
                assert blocks[f"{symbol}\x00{component.name}.{ring.name}"] <= capacity

    expected = book.step(columns(symbols[cut:], prices[cut:], cut, rv[cut:]))
    restarted = PriceRiskBook(SPEC)
    got = restarted.step(columns(symbols[cut:], prices[cut:], cut, rv[cut:]), load_row=table.get)
    np.testing.assert_array_equal(got.var, expected.var)
    np.testing.assert_array_equal(got.es, expected.es)
    np.testing.assert_array_equal(got.hits, expected.hits)


def test_replaying_a_batch_after_restart_changes_nothing() -> None:
    symbols, prices, rv = stream(600, 6)
    book = PriceRiskBook(SPEC)
    step = book.step(columns(symbols, prices, 0, rv))
    table: dict[str, bytes] = {}
    persist(table, book.rows(step.touched))
    restarted = PriceRiskBook(SPEC)
    replay = restarted.step(columns(symbols, prices, 0, rv), load_row=table.get)
    assert (replay.status == Status.REPLAY).all()
    assert replay.slots.size == 0
    again: dict[str, bytes] = dict(table)
    persist(again, restarted.rows(range(len(restarted))))
    assert again == table


def test_rows_carry_the_source_partition_of_their_key() -> None:
    symbols, prices, rv = stream(300, 7)
    book = PriceRiskBook(SPEC)
    cols = columns(symbols, prices, 0, rv)
    step = book.step(cols)
    partitions = {s: int(p) for s, p in zip(cols.symbols, cols.partition, strict=True)}
    for key, partition, _ in book.rows(step.touched):
        assert partition == partitions[key.split("\x00")[0]]


def test_a_changed_model_starts_cold_while_the_others_keep_their_state() -> None:
    from engine.core.volatility import EWMAVolatility

    symbols, prices, rv = stream(300, 8)
    book = PriceRiskBook(SPEC)
    step = book.step(columns(symbols, prices, 0, rv))
    table: dict[str, bytes] = {}
    persist(table, book.rows(step.touched))

    class RetunedEWMA(EWMAVolatility):
        state_version = 2  # same columns, new meaning: its records must not be reused

    upgraded = PriceRiskBook(SPEC)
    upgraded.vols["ewma"].__class__ = RetunedEWMA
    upgraded.slots_for(["S0"], table.get)
    old, new = book.index.slot("S0"), upgraded.index.slot("S0")
    assert upgraded.sequencer.export(new) == book.sequencer.export(old)  # kept
    assert (
        upgraded.vols["gjr"].export(new)["nobs"] == book.vols["gjr"].export(old)["nobs"] > 0
    )  # kept
    np.testing.assert_array_equal(
        upgraded.returns.window(new), book.returns.window(old)
    )  # ring kept
    assert upgraded.vols["ewma"].export(new)["nobs"] == 0  # cold


def test_a_foreign_row_starts_the_key_cold() -> None:
    book = PriceRiskBook(SPEC)
    book.slots_for(["X"], {"X": b'{"format": 1}'}.get)
    assert book.sequencer.export(book.index.slot("X"))["n_ticks"] == 0


def test_every_method_forecasts_once_its_models_are_ready() -> None:
    symbols, prices, rv = stream(2000, 9, names=2)
    book = PriceRiskBook(SPEC)
    step = book.step(columns(symbols, prices, 0, rv))
    last = step.var[-50:]
    finite = np.isfinite(last)
    # Cornish-Fisher reports no forecast outside its domain of validity; every other method forecasts.
    others = [j for j, m in enumerate(book.methods) if not m.endswith("-cf")]
    assert finite[:, others].all(), [book.methods[j] for j in others if not finite[:, j].all()]
    ok = finite.all(axis=2)  # levels 0.95, 0.975, 0.99
    assert (np.diff(last[ok], axis=-1) > 0).all()  # VaR grows with the level, every method
    assert (last[ok] > 0).all()
    assert (step.es[-50:][ok] > last[ok]).all()  # ES above VaR at every level


def test_mix_is_the_mean_of_t_fhs_and_cornish_fisher() -> None:
    symbols, prices, rv = stream(1500, 11, names=2)
    book = PriceRiskBook(SPEC)
    step = book.step(columns(symbols, prices, 0, rv))
    for vol in SPEC.vol_models:
        mix = book.methods.index(f"{vol}-mix")
        parts = [book.methods.index(f"{vol}-{d}") for d in ("t", "fhs", "cf")]
        for values in (step.var, step.es, step.var_before, step.es_before):
            all_three = np.isfinite(values[:, parts]).all(axis=(1, 2))
            assert all_three[-100:].any()
            np.testing.assert_allclose(
                values[all_three, mix], values[all_three][:, parts].mean(axis=1), rtol=1e-12
            )
            # where Cornish-Fisher is outside its domain, the mix averages the other two
            cf_missing = np.isnan(values[:, parts[2], 0]) & np.isfinite(
                values[:, parts[:2], 0]
            ).all(axis=1)
            np.testing.assert_allclose(
                values[cf_missing, mix], values[cf_missing][:, parts[:2]].mean(axis=1), rtol=1e-12
            )
