"""Realised variance per session from ticks (engine/core/volatility/realised.py).

The rules: RV is the sum of squared intraday log returns inside a session; the gap from
one session's last tick to the next one's first is not in RV; the session-level models
are fed ``gap^2 + RV``, whose mean is the mean squared close-to-close return; a session
with fewer than ``min_returns`` intraday returns has no RV; stale prices count as zero
returns; ticks outside every session are in no RV.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.core.volatility.realised import RV_REASONS, Sessions, realised_variance

HOUR = 3_600_000
DAY = 24 * HOUR


def exchange_days(n: int) -> Sessions:
    """``n`` sessions from 09:00 to 17:00 on consecutive days (16 hours closed between)."""
    opens = np.arange(n) * DAY + 9 * HOUR
    return Sessions(opens, opens + 8 * HOUR)


def test_rv_is_the_hand_computed_sum_of_squared_intraday_log_returns() -> None:
    """Two symbols, interleaved and shuffled: each session's RV, gap and close by hand."""
    rng = np.random.default_rng(3)
    sessions = exchange_days(3)
    rows = []
    for symbol in ("A", "B"):
        for d in range(3):
            stamps = np.sort(rng.choice(8 * 60, 15, replace=False)) * 60_000 + d * DAY + 9 * HOUR
            for t in stamps:
                rows.append((symbol, int(t), float(100 * np.exp(rng.normal(0, 0.01)))))
    shuffled = [rows[i] for i in rng.permutation(len(rows))]
    sym = np.array([r[0] for r in shuffled])
    ts = np.array([r[1] for r in shuffled])
    price = np.array([r[2] for r in shuffled])
    out = realised_variance(sym, ts, price, sessions, min_returns=10)
    first_seen = list(dict.fromkeys(sym.tolist()))
    assert out.symbol.tolist() == [first_seen[0]] * 3 + [first_seen[1]] * 3
    assert out.session.tolist() == [0, 1, 2, 0, 1, 2]
    for k in range(len(out)):
        mine = sorted(r for r in rows if r[0] == out.symbol[k] and r[1] // DAY == out.session[k])
        logp = np.log([r[2] for r in mine])
        expected = sum((logp[i] - logp[i - 1]) ** 2 for i in range(1, len(logp)))
        assert out.rv[k] == pytest.approx(expected, rel=1e-12)
        assert out.n_returns[k] == 14
        assert out.close_ts[k] == mine[-1][1] and out.close_price[k] == mine[-1][2]
        if out.session[k] > 0:
            before = sorted(
                r for r in rows if r[0] == out.symbol[k] and r[1] // DAY == out.session[k] - 1
            )
            gap = logp[0] - np.log(before[-1][2])
            assert out.gap[k] == pytest.approx(gap, rel=1e-12)
            assert out.rv_whole[k] == pytest.approx(expected + gap**2, rel=1e-12)
        else:
            assert np.isnan(out.gap[k]) and np.isnan(out.rv_whole[k])
            assert RV_REASONS[out.reason[k]] == "no_previous_close"


def test_gap_plus_intraday_returns_is_the_close_to_close_return() -> None:
    rng = np.random.default_rng(5)
    sessions = exchange_days(20)
    ts = np.concatenate([d * DAY + 9 * HOUR + np.arange(0, 8 * HOUR, 600_000) for d in range(20)])
    price = 50 * np.exp(np.cumsum(rng.normal(0, 0.002, ts.size)))
    out = realised_variance(np.zeros(ts.size, int), ts, price, sessions)
    close_to_close = np.diff(np.log(out.close_price))
    last_of_previous = np.log(out.close_price[:-1])
    first = last_of_previous + out.gap[1:]
    intraday = np.log(out.close_price[1:]) - first
    np.testing.assert_allclose(out.gap[1:] + intraday, close_to_close, rtol=0, atol=1e-14)


def test_whole_session_rv_is_unbiased_for_the_close_to_close_variance_and_rv_alone_is_not() -> None:
    """A random walk that moves while the market is closed (a quarter of the daily variance):
    the mean of ``gap^2 + RV`` matches the mean squared close-to-close return, the mean of
    ``RV`` misses the overnight quarter (Hansen and Lunde 2005)."""
    rng = np.random.default_rng(11)
    days, per_day, daily_var = 4000, 48, 1e-4
    open_step = np.sqrt(0.75 * daily_var / per_day)
    night = np.sqrt(0.25 * daily_var)
    steps = rng.normal(0, open_step, (days, per_day))
    steps[:, 0] = rng.normal(0, night, days)  # the first tick of a day follows the night
    logp = np.cumsum(steps.reshape(-1))
    ts = (np.arange(days)[:, None] * DAY + 9 * HOUR + np.arange(per_day) * 600_000).reshape(-1)
    out = realised_variance(np.zeros(ts.size, int), ts, np.exp(logp), exchange_days(days))
    r_cc = np.diff(np.log(out.close_price))
    whole, rv = out.rv_whole[1:], out.rv[1:]
    assert whole.mean() / np.mean(r_cc**2) == pytest.approx(1.0, abs=0.05)
    assert rv.mean() / np.mean(r_cc**2) == pytest.approx(0.75, abs=0.03)
    assert np.nanmean(out.gap**2) == pytest.approx(0.25 * daily_var, rel=0.06)


def test_a_sparse_session_has_no_rv_and_says_why() -> None:
    sessions = exchange_days(3)
    counts = (12, 9, 11)  # ticks: 11, 8 and 10 intraday returns
    ts = np.concatenate([d * DAY + 9 * HOUR + np.arange(n) * 60_000 for d, n in enumerate(counts)])
    price = 100 + np.arange(ts.size) % 3
    out = realised_variance(np.full(ts.size, "X"), ts, price.astype(float), sessions)
    assert out.n_returns.tolist() == [11, 8, 10]
    assert np.isfinite(out.rv[[0, 2]]).all() and np.isnan(out.rv[1])
    assert [RV_REASONS[r] for r in out.reason] == ["no_previous_close", "too_few_returns", "ok"]
    assert np.isnan(out.rv_whole[1]) and np.isfinite(out.rv_whole[2])
    assert out.reasons() == {"too_few_returns": 1, "no_previous_close": 1}
    loose = realised_variance(
        np.full(ts.size, "X"), ts, price.astype(float), sessions, min_returns=8
    )
    assert np.isfinite(loose.rv).all()


def test_stale_prices_are_zero_returns_that_count() -> None:
    sessions = exchange_days(2)
    ts = np.concatenate([d * DAY + 9 * HOUR + np.arange(12) * 60_000 for d in range(2)])
    price = np.full(ts.size, 100.0)
    price[12:] = 101.0  # a gap, then a flat second session
    out = realised_variance(np.full(ts.size, "X"), ts, price, sessions)
    assert out.n_returns.tolist() == [11, 11]
    assert out.rv.tolist() == [0.0, 0.0]
    assert out.rv_whole[1] == pytest.approx(np.log(1.01) ** 2, rel=1e-12)


def test_ticks_outside_sessions_are_in_the_gap_not_in_rv() -> None:
    sessions = exchange_days(2)
    day0 = 9 * HOUR + np.arange(11) * 60_000
    after_hours = np.array([18 * HOUR, 20 * HOUR])  # after the 17:00 close
    day1 = DAY + 9 * HOUR + np.arange(11) * 60_000
    ts = np.concatenate([day0, after_hours, day1])
    price = np.concatenate([np.full(11, 100.0), [120.0, 90.0], np.full(11, 110.0)])
    out = realised_variance(np.full(ts.size, "X"), ts, price, sessions)
    assert out.outside == 2
    assert out.rv.tolist() == [0.0, 0.0]
    assert out.gap[1] == pytest.approx(np.log(1.1), rel=1e-12)


def test_a_tick_at_a_close_that_is_the_next_open_belongs_to_the_next_session() -> None:
    """Contiguous sessions (24/7 as whole UTC days); at a gapped close the tick is in its session."""
    days = Sessions(np.arange(3) * DAY, (np.arange(3) + 1) * DAY)
    assert days.locate(np.array([0, DAY - 1, DAY, 3 * DAY, 3 * DAY + 1])).tolist() == [
        0,
        0,
        1,
        2,
        -1,
    ]
    exchange = exchange_days(2)
    assert exchange.locate(np.array([17 * HOUR, 17 * HOUR + 1, 9 * HOUR - 1])).tolist() == [
        0,
        -1,
        -1,
    ]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"price": np.array([1.0, -2.0])}, "price must be finite and positive; row 1"),
        ({"price": np.array([1.0, np.nan])}, "price must be finite and positive; row 1"),
        ({"ts": np.array([0])}, "same length"),
        ({"min_returns": 0}, "min_returns must be at least 1"),
    ],
)
def test_bad_input_is_refused_with_the_reason(kwargs: dict, match: str) -> None:
    args = {
        "symbols": np.array(["A", "A"]),
        "ts": np.array([9 * HOUR, 10 * HOUR]),
        "price": np.array([1.0, 2.0]),
        "sessions": exchange_days(1),
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        realised_variance(**args)


def test_sessions_must_be_sorted_and_disjoint() -> None:
    with pytest.raises(ValueError, match="must not overlap"):
        Sessions(np.array([0, 50]), np.array([100, 150]))
    with pytest.raises(ValueError, match="close at or after its open"):
        Sessions(np.array([10]), np.array([5]))
