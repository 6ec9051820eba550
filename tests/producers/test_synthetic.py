"""The seeded synthetic generators: determinism, time handling, and the model's statistics."""

from __future__ import annotations

import time
from collections import Counter
from itertools import islice

import numpy as np
import pytest

from engine.boundary.timeutil import now_ms
from engine.errors import InputError
from producers.messages import price_messages, transaction_messages
from producers.synthetic import DAY_MS, SyntheticPrices, SyntheticTransactions, symbol_names

START = 1_700_000_000_000  # 2023-11-14T22:13:20Z


def _bytes(messages) -> list[tuple[bytes | None, bytes | None]]:
    return [(m.key, m.value) for m in messages]


# --- prices: determinism and time ---------------------------------------------------------


def test_same_seed_gives_byte_identical_prices() -> None:
    def run(seed: int) -> list[tuple[bytes | None, bytes | None]]:
        return _bytes(price_messages(SyntheticPrices(7, ticks=5000, seed=seed, start_ms=START)))

    first = run(42)
    assert first == run(42)
    assert first != run(43)


def test_prices_do_not_depend_on_the_length_of_the_stream() -> None:
    short = list(SyntheticPrices(4, ticks=100, seed=5, start_ms=START))
    long = list(SyntheticPrices(4, ticks=300_000, seed=5, start_ms=START))  # several chunks
    assert short == long[:100]
    assert len(long) == 300_000


def test_ticks_are_keyed_per_symbol_and_spaced_by_the_interval() -> None:
    gen = SyntheticPrices(3, ticks=10, interval_ms=250, seed=1, start_ms=START)
    ticks = list(gen)
    assert len(ticks) == 10  # 4 steps, the last one cut after one symbol
    assert [t.symbol for t in ticks] == ["SYN000", "SYN001", "SYN002"] * 3 + ["SYN000"]
    assert all(t.key == t.symbol.encode() for t in ticks)
    assert [t.ts for t in ticks[::3]] == [START + 250 * k for k in range(4)]
    assert [t.event_id for t in ticks[:4]] == ["SYN000-0", "SYN001-0", "SYN002-0", "SYN000-1"]
    assert all(t.price > 0 and t.volume is not None and t.volume >= 0 for t in ticks)


def test_symbol_names_widen_with_the_count() -> None:
    assert symbol_names(2) == ("SYN000", "SYN001")
    assert symbol_names(12_000)[-1] == "SYN11999"


def test_default_stream_ends_now_in_the_past() -> None:
    before = now_ms()
    ticks = list(SyntheticPrices(2, ticks=20, interval_ms=1000, seed=0))
    assert ticks[-1].ts <= now_ms()
    assert ticks[-1].ts >= before - 1000
    assert ticks[0].ts == ticks[-1].ts - 9 * 1000


def test_end_ms_pins_the_last_step() -> None:
    ticks = list(SyntheticPrices(2, ticks=6, interval_ms=10, seed=0, end_ms=START))
    assert ticks[-1].ts == START and ticks[0].ts == START - 20


def test_future_and_impossible_spans_are_refused() -> None:
    with pytest.raises(InputError, match="future"):
        SyntheticPrices(1, ticks=10, interval_ms=60_000, start_ms=now_ms())
    SyntheticPrices(1, ticks=10, interval_ms=60_000, start_ms=now_ms(), allow_future=True)
    with pytest.raises(InputError, match="before 1970"):
        SyntheticPrices(1, ticks=10, interval_ms=1000, end_ms=5000)
    with pytest.raises(InputError, match="not both"):
        SyntheticPrices(1, ticks=1, start_ms=0, end_ms=0)
    for bad in ({"n_symbols": 0}, {"ticks": 0}, {"interval_ms": 0}):
        kwargs = {"n_symbols": 1, "ticks": 1, "interval_ms": 1, "start_ms": 0, **bad}
        with pytest.raises(InputError, match="at least 1"):
            SyntheticPrices(**kwargs)


# --- prices: the model --------------------------------------------------------------------


@pytest.fixture(scope="module")
def blocks() -> dict[str, np.ndarray]:
    gen = SyntheticPrices(8, ticks=8 * 60_000, interval_ms=1000, seed=11, start_ms=START)
    parts = list(gen.blocks())
    out = {
        name: np.concatenate([getattr(b, name) for b in parts])
        for name in ("log_return", "sigma", "jump", "price")
    }
    out["h_bar"] = gen.params.h_bar
    out["jump_rate"] = gen.params.jump_rate
    out["loading"] = gen.params.loading
    return out


def _acf(x: np.ndarray, lag: int) -> float:
    x = x - x.mean()
    return float(np.dot(x[:-lag], x[lag:]) / np.dot(x, x))


def test_volatility_clusters(blocks: dict[str, np.ndarray]) -> None:
    # Squared diffusive returns are autocorrelated (GARCH); for i.i.d. returns the
    # autocorrelation would be 0 +- 1/sqrt(60000) = 0.004.
    diffusive = blocks["log_return"] - blocks["jump"]
    for i in range(diffusive.shape[1]):
        acf = [_acf(diffusive[:, i] ** 2, lag) for lag in (1, 2, 5, 10)]
        assert min(acf) > 0.02, (i, acf)
    # The conditional variance itself moves: its spread is far from zero.
    ratio = blocks["sigma"] ** 2 / blocks["h_bar"]
    assert np.all(np.percentile(ratio, 95, axis=0) / np.percentile(ratio, 5, axis=0) > 1.5)
    # ... and the diffusive variance averages to the unconditional h_bar.
    # (Persistent GARCH variance converges slowly: a loose bound per symbol, a tight one overall.)
    ratio = np.mean(diffusive**2, axis=0) / blocks["h_bar"]
    np.testing.assert_allclose(ratio, 1.0, atol=0.35)
    assert abs(ratio.mean() - 1.0) < 0.1


def test_innovations_are_fat_tailed(blocks: dict[str, np.ndarray]) -> None:
    z = (blocks["log_return"] - blocks["jump"]) / blocks["sigma"]
    kurtosis = np.mean(z**4, axis=0) / np.mean(z**2, axis=0) ** 2
    assert np.all(kurtosis > 3.3), kurtosis  # normal: 3; the mix of t(4..10)s and t(6): more
    np.testing.assert_allclose(np.std(z, axis=0), 1.0, atol=0.03)


def test_jumps_arrive_with_both_signs_at_the_drawn_rate(blocks: dict[str, np.ndarray]) -> None:
    jumps = blocks["jump"]
    steps = jumps.shape[0]
    seen = np.count_nonzero(jumps, axis=0)
    expected = blocks["jump_rate"] * steps
    assert np.all(np.abs(seen - expected) < 5 * np.sqrt(expected) + 1), (seen, expected)
    assert np.count_nonzero(jumps > 0) > 20 and np.count_nonzero(jumps < 0) > 20
    sizes = (
        np.abs(jumps[jumps != 0])
        / np.broadcast_to(np.sqrt(blocks["h_bar"]), jumps.shape)[jumps != 0]
    )
    assert sizes.min() >= 4.0 - 1e-9  # each jump is 4-8 unconditional standard deviations


def test_symbols_are_correlated_through_the_market_factor(blocks: dict[str, np.ndarray]) -> None:
    z = (blocks["log_return"] - blocks["jump"]) / blocks["sigma"]
    corr = np.corrcoef(z, rowvar=False)
    b = blocks["loading"]
    expected = np.outer(b, b)
    off = ~np.eye(len(b), dtype=bool)
    np.testing.assert_allclose(corr[off], expected[off], atol=0.03)
    assert corr[off].min() > 0.05


def test_prices_follow_the_returns(blocks: dict[str, np.ndarray]) -> None:
    realised = np.diff(np.log(blocks["price"]), axis=0)
    np.testing.assert_allclose(realised, blocks["log_return"][1:], atol=1e-6)


def test_generation_is_fast() -> None:
    gen = SyntheticPrices(20, ticks=300_000, seed=2, start_ms=START)
    list(islice(gen, 10))  # compile / load the kernel outside the timing
    started = time.perf_counter()
    count = sum(1 for _ in gen)
    rate = count / (time.perf_counter() - started)
    assert count == 300_000
    assert rate > 100_000, f"{rate:,.0f} ticks/s"


# --- transactions -------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_transactions() -> None:
    def run(seed: int) -> list[tuple[bytes | None, bytes | None]]:
        gen = SyntheticTransactions(200, 300, count=3000, seed=seed, start_ms=START)
        return _bytes(transaction_messages(gen))

    first = run(9)
    assert first == run(9)
    assert first != run(10)


def test_transactions_count_order_and_span() -> None:
    gen = SyntheticTransactions(100, 50, count=2000, seed=4, start_ms=START)
    txs = list(gen)
    assert len(txs) == 2000
    ts = np.array([t.ts for t in txs])
    assert np.all(np.diff(ts) >= 0)
    assert ts.min() >= START and ts.max() < START + gen.days * DAY_MS
    assert len({t.tx_id for t in txs}) == 2000
    assert all(t.key == t.customer_id.encode() and t.amount >= 0.01 for t in txs)
    assert {t.type for t in txs} == {"pos", "online"}


def test_default_transactions_are_in_the_past() -> None:
    txs = list(SyntheticTransactions(10, 10, count=50, seed=1))
    assert max(t.ts for t in txs) < now_ms()
    with pytest.raises(InputError, match="future"):
        SyntheticTransactions(10, 10, count=50, seed=1, start_ms=now_ms())


def test_customers_have_their_own_profiles() -> None:
    gen = SyntheticTransactions(40, 2000, count=40_000, seed=8, start_ms=START)
    txs = list(gen)
    by_customer: dict[str, list] = {}
    for t in txs:
        by_customer.setdefault(t.customer_id, []).append(t)
    # Busy customers transact more: counts follow the drawn daily rates.
    counts = np.array([len(by_customer[f"C{c:04d}"]) for c in range(40)])
    assert np.corrcoef(counts, gen.rate)[0, 1] > 0.95
    # Each customer's mean amount is its own (between-customer spread >> sampling error).
    means = np.array([np.mean([t.amount for t in by_customer[f"C{c:04d}"]]) for c in range(40)])
    np.testing.assert_allclose(means, gen.mean_amount, rtol=0.15)
    # A customer keeps to a few terminals out of 2000 ...
    top_share = [Counter(t.terminal_id for t in v).most_common(5) for v in by_customer.values()]
    assert (
        np.median(
            [
                sum(n for _, n in top) / len(v)
                for top, v in zip(top_share, by_customer.values(), strict=True)
            ]
        )
        > 0.9
    )
    # ... and to its hours: time of day concentrates around the customer's peak hour.
    for c in range(5):
        hours = np.array([(t.ts - START) % DAY_MS for t in by_customer[f"C{c:04d}"]]) / 3.6e6
        gap = np.abs(((hours - gen.peak_hour[c]) + 12) % 24 - 12)
        assert np.median(gap) < 0.8 * gen.hour_spread[c] + 0.5
