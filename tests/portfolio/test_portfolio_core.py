"""Portfolio risk: Euler allocation, the EWMA covariance, the event-time grid, positions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats

from engine.core.portfolio import EwmaCovariance, PortfolioBook, allocate

DAY = 86_400_000
finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    factors=arrays(np.float64, (4, 6), elements=st.floats(-0.05, 0.05)),
    exposure=arrays(np.float64, 4, elements=finite),
)
def test_component_var_and_es_sum_to_the_totals(factors, exposure):
    cov = factors @ factors.T  # any positive semi-definite matrix
    var, es, _, component, es_component = allocate(cov, exposure, 2.326, 2.665)
    scale = max(var, 1e-300)
    assert abs(component.sum() - var) <= 1e-9 * scale + 1e-12
    assert abs(es_component.sum() - es) <= 1e-9 * max(es, 1e-300) + 1e-12
    assert var >= 0 and es >= var * (2.665 / 2.326) * (1 - 1e-12)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(
    factors=arrays(np.float64, (3, 3), elements=st.floats(-0.05, 0.05)),
    exposure=arrays(np.float64, 3, elements=st.floats(1.0, 100.0)),
)
def test_marginal_var_is_the_gradient_of_var(factors, exposure):
    cov = factors @ factors.T + np.eye(3) * 1e-4
    var, _, marginal, _, _ = allocate(cov, exposure, 1.645, 2.0)
    for i in range(3):
        h = 1e-6 * exposure[i]
        up, down = exposure.copy(), exposure.copy()
        up[i] += h
        down[i] -= h
        numeric = (allocate(cov, up, 1.645, 2.0)[0] - allocate(cov, down, 1.645, 2.0)[0]) / (2 * h)
        # central differences lose about eps * VaR / h to rounding: tolerate 1e-7 * VaR / x_i
        assert marginal[i] == pytest.approx(numeric, rel=1e-6, abs=1e-7 * var / exposure[i])


def test_one_asset_var_is_its_own_and_perfect_correlation_adds_up():
    z = stats.norm.ppf(0.99)
    var, *_ = allocate(np.array([[0.0004]]), np.array([-500.0]), z, 2.665)
    assert var == pytest.approx(z * 500 * 0.02, rel=1e-14)
    s = np.array([0.01, 0.03])
    var2, _, _, component, _ = allocate(np.outer(s, s), np.array([100.0, 50.0]), z, 2.665)
    assert var2 == pytest.approx(z * (100 * 0.01 + 50 * 0.03), rel=1e-12)
    assert component == pytest.approx([z * 1.0, z * 1.5], rel=1e-12)


def test_a_flat_book_has_no_risk():
    var, es, marginal, component, _ = allocate(np.eye(2), np.zeros(2), 2.0, 2.5)
    assert (var, es) == (0.0, 0.0) and not marginal.any() and not component.any()


def test_ewma_covariance_is_the_adjusted_exponentially_weighted_mean_of_outer_products():
    rng = np.random.default_rng(1)
    r = rng.normal(0, 0.01, size=(30, 3))
    cov = EwmaCovariance(0.94)
    cov.grow(3)
    for row in r:
        cov.update(row, np.ones(3, dtype=np.int64))
    w = 0.94 ** np.arange(29, -1, -1)
    expected = (w[:, None, None] * r[:, :, None] * r[:, None, :]).sum(0) / w.sum()
    np.testing.assert_allclose(cov.matrix(), expected, rtol=1e-12)


def test_a_late_symbol_keeps_the_covariance_positive_semi_definite():
    rng = np.random.default_rng(2)
    cov = EwmaCovariance(0.9)
    cov.grow(1)
    for _ in range(50):
        cov.update(rng.normal(0, 0.01, 1), np.ones(1, dtype=np.int64))
    cov.grow(2)
    for _ in range(3):
        cov.update(rng.normal(0, 0.01, 2), np.ones(2, dtype=np.int64))
    assert np.linalg.eigvalsh(cov.matrix()).min() >= -1e-18


def _ticks(rows):
    symbols = [s for s, _, _ in rows]
    return symbols, np.array([t for _, t, _ in rows], np.int64), np.array([p for *_, p in rows])


def _alternating_walk(seed: int) -> list[tuple[str, int, float]]:
    """300 ticks ``(symbol, ts_ms, price)``, A and B in turn every 8 hours, from 100 and 20.

    Each tick moves its symbol's price by a log return drawn from N(0, 0.01) (seeded).
    """
    rng = np.random.default_rng(seed)
    rows, price = [], {"A": 100.0, "B": 20.0}
    for k in range(300):
        s = "AB"[k % 2]
        price[s] *= np.exp(rng.normal(0, 0.01))
        rows.append((s, k * DAY // 3, price[s]))
    return rows


def test_grid_returns_sample_the_last_price_and_skip_empty_buckets():
    book = PortfolioBook(interval_ms=DAY, lam=0.5, levels=(0.99,), min_obs=1)
    book.set_position("p", "A", 1.0, 0)
    rows = [
        ("A", 0 * DAY + 1, 100.0),
        ("B", 0 * DAY + 2, 50.0),
        ("A", 1 * DAY + 1, 110.0),  # closes day 0
        ("A", 1 * DAY + 5, 121.0),  # the last price of day 1 counts
        ("B", 4 * DAY + 1, 55.0),  # closes day 1; days 2 and 3 are empty, no grid points
        ("A", 5 * DAY, 121.0),  # closes day 4
    ]
    out = book.on_ticks(*_ticks(rows))
    # day 0 close: no returns yet (A not ready); day 1: A returned log(121/100), B 0
    assert [a.ts_ms for a in out] == [1 * DAY + 5, 4 * DAY + 1]
    assert book.cov.count.tolist() == [2, 2]
    first = out[0]
    assert first.var == pytest.approx(stats.norm.ppf(0.99) * 121 * abs(np.log(1.21)), rel=1e-12)
    assert np.isnan(first.pnl_before)
    assert out[1].pnl_before == pytest.approx(0.0)  # A unchanged from day 1 to day 4


def test_outputs_do_not_depend_on_how_ticks_are_batched():
    rng = np.random.default_rng(3)
    rows, price = [], {"A": 100.0, "B": 20.0, "C": 5.0}
    for k in range(600):
        s = "ABC"[rng.integers(3)]
        price[s] *= np.exp(rng.normal(0, 0.01))
        rows.append((s, k * DAY // 7, price[s]))
    positions = [("p", "A", 3.0, 0), ("p", "B", -10.0, 0), ("q", "C", 100.0, 40 * DAY)]

    def run(cuts):
        book = PortfolioBook(interval_ms=DAY, levels=(0.95, 0.99), min_obs=5)
        for p in positions:
            book.set_position(*p)
        out = []
        for lo, hi in zip([0, *cuts], [*cuts, len(rows)], strict=True):
            out += book.on_ticks(*_ticks(rows[lo:hi]))
        return [(a.ts_ms, a.portfolio, a.level, a.var, a.es, *a.component) for a in out]

    whole = run([])
    assert len(whole) > 100
    assert run([1, 2, 3, 250, 251, 599]) == whole
    assert run(list(range(1, 600, 37))) == whole


def test_positions_replace_take_effect_at_their_time_and_zero_closes_them():
    book = PortfolioBook(interval_ms=DAY, levels=(0.99,), min_obs=1)
    book.set_position("p", "A", 1.0, 0)
    book.set_position("p", "A", 2.0, 0)  # replaces, does not add
    book.set_position("p", "A", 0.0, 3 * DAY)
    rows = [("A", d * DAY, 100.0 * 1.01**d) for d in range(6)]
    out = book.on_ticks(*_ticks(rows))
    exposures = {a.ts_ms: a.exposure.tolist() for a in out}
    assert exposures[1 * DAY] == [pytest.approx(2 * 101.0)]
    assert 3 * DAY not in exposures and 4 * DAY not in exposures  # closed from day 3


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="interval_ms"):
        PortfolioBook(interval_ms=0)
    with pytest.raises(ValueError, match="nu > 2"):
        PortfolioBook(interval_ms=DAY, nu=2.0)
    with pytest.raises(ValueError, match="lambda"):
        EwmaCovariance(1.0)
    with pytest.raises(ValueError, match="finite"):
        PortfolioBook(interval_ms=DAY).set_position("p", "A", float("nan"), 0)


def test_a_restored_book_continues_exactly_where_it_stopped():
    import orjson

    rows = _alternating_walk(seed=5)

    def fresh():
        book = PortfolioBook(interval_ms=DAY, levels=(0.99,), min_obs=3)
        book.set_position("p", "A", 2.0, 0)
        book.set_position("p", "B", -5.0, 30 * DAY)
        return book

    def key(out):
        return [repr((a.ts_ms, a.var, a.pnl_before, *a.component.tolist())) for a in out]

    whole = fresh().on_ticks(*_ticks(rows))
    first = fresh()
    head = first.on_ticks(*_ticks(rows[:77]))
    restored = PortfolioBook.from_state(orjson.loads(orjson.dumps(first.to_state())))
    assert key(head + restored.on_ticks(*_ticks(rows[77:]))) == key(whole)


def test_a_portfolio_moved_to_a_book_at_the_same_close_continues_exactly():
    """What the scaled-out service does on a rebalance: the portfolio's own state moves,
    the market (here a second book fed the same ticks) is the receiver's."""
    rows = _alternating_walk(seed=8)

    def fresh(held: bool) -> PortfolioBook:
        book = PortfolioBook(interval_ms=DAY, levels=(0.99,), min_obs=3)
        if held:
            book.set_position("p", "A", 2.0, 0)
            book.set_position("p", "B", -5.0, 30 * DAY)
            book.set_position("p", "A", 0.0, 80 * DAY)  # still pending at the move
        book.set_position("other", "B", 1.0, 0)
        return book

    def key(out):
        return [repr((a.ts_ms, a.var, a.pnl_before, *a.component.tolist())) for a in out]

    whole = [a for a in fresh(True).on_ticks(*_ticks(rows)) if a.portfolio == "p"]
    sender, receiver = fresh(True), fresh(False)
    head = [a for a in sender.on_ticks(*_ticks(rows[:77])) if a.portfolio == "p"]
    receiver.on_ticks(*_ticks(rows[:77]))
    assert receiver.last_close_ms == sender.last_close_ms is not None
    receiver.put_portfolio("p", sender.portfolio_state("p"))
    sender.drop_portfolio("p")
    assert "p" not in sender.positions and all(q[1] != "p" for q in sender.pending)
    tail = [a for a in receiver.on_ticks(*_ticks(rows[77:])) if a.portfolio == "p"]
    assert key(head + tail) == key(whole)


def _apply_one_by_one(book: PortfolioBook, slots, ts_ms, prices) -> None:
    """The rule of ``PortfolioBook._apply`` as a loop: a tick not older than its symbol's last wins."""
    for slot, ts, price in zip(slots.tolist(), ts_ms.tolist(), prices.tolist(), strict=True):
        if ts >= book.last_ts[slot]:
            book.last_ts[slot] = ts
            book.last_price[slot] = price
            book.bucket_ts = ts if book.bucket_ts is None else max(book.bucket_ts, ts)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    ticks=st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 6), st.floats(1.0, 2.0)), max_size=25
    ),
    earlier=st.lists(st.integers(-1, 4), min_size=4, max_size=4),
)
def test_a_run_of_ticks_is_applied_as_if_one_by_one(ticks, earlier):
    """Ties in time, ticks older than the symbol's last, several symbols: same result."""
    books = []
    for _ in range(2):
        book = PortfolioBook(interval_ms=DAY, levels=(0.99,), min_obs=1)
        for i in range(4):
            book._slot(f"S{i}")
        book.last_ts[:] = earlier
        books.append(book)
    slots = np.array([t[0] for t in ticks], dtype=np.int64)
    ts_ms = np.array([t[1] for t in ticks], dtype=np.int64)
    prices = np.array([t[2] for t in ticks])
    books[0]._apply(slots, ts_ms, prices)
    _apply_one_by_one(books[1], slots, ts_ms, prices)
    np.testing.assert_array_equal(books[0].last_ts, books[1].last_ts)
    np.testing.assert_array_equal(books[0].last_price, books[1].last_price)
    assert books[0].bucket_ts == books[1].bucket_ts
