"""Session bars (engine/core/bars.py): when a session closes, what return it carries, and
how intraday ticks are judged against the VaR published at the last close."""

from __future__ import annotations

import numpy as np
import pytest

from engine.core.bars import SessionBars
from engine.core.volatility.session_rv import NO_SESSION

#: Sessions of 600 ms opening every 1000 ms (closes inclusive at +600).
OPEN = 1000


def sessions(ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    inside = ts % OPEN <= 600
    opens = np.where(inside, ts // OPEN * OPEN, NO_SESSION)
    return opens, np.where(inside, opens + 600, NO_SESSION)


def run(bars: SessionBars, ts: list[int], logp: list[float], slot: int = 0):  # type: ignore[no-untyped-def]
    t = np.asarray(ts, np.int64)
    opens, closes = sessions(t)
    return bars.update(
        np.full(t.size, slot, np.int64), t, np.exp(logp), opens, closes, np.full(t.size, np.nan)
    )


def fresh(levels: int = 1) -> SessionBars:
    bars = SessionBars(n_levels=levels)
    bars.ensure(2)
    return bars


def test_a_session_closes_at_the_first_tick_of_a_later_session_at_its_last_ticks_price() -> None:
    out = run(fresh(), [0, 100, 500, 1100, 1300, 2050], [0.0, 0.01, 0.02, 0.05, 0.04, 0.07])
    assert out.closed.tolist() == [False, False, False, True, False, True]
    np.testing.assert_allclose(out.close_price[out.closed], np.exp([0.02, 0.04]))
    assert out.close_ts[out.closed].tolist() == [500, 1300]
    assert np.isnan(out.returns[3])  # a symbol's first close has no return
    assert out.returns[5] == pytest.approx(0.02)  # 0.04 - 0.02, close to close


def test_a_tick_at_its_sessions_scheduled_close_closes_it_at_once() -> None:
    out = run(fresh(), [0, 600, 1000, 1600], [0.0, 0.01, 0.03, 0.06])
    assert out.closed.tolist() == [False, True, False, True]
    assert out.returns[3] == pytest.approx(0.05)
    # the return since the last close, at every tick: 0 at a close
    np.testing.assert_allclose(out.session_return, [np.nan, 0.0, 0.02, 0.0])


def test_a_tick_outside_every_session_closes_the_open_one_and_its_price_is_left_out() -> None:
    out = run(fresh(), [0, 300, 800, 1200, 1500, 2100], [0.0, 0.01, 0.9, 0.02, 0.03, 0.05])
    assert out.closed.tolist() == [False, False, True, False, False, True]
    assert out.close_price[2] == pytest.approx(np.exp(0.01))  # not the gap tick's
    assert out.returns[5] == pytest.approx(0.02)


def test_the_first_tick_of_a_session_that_closes_the_previous_one_is_not_also_its_close() -> None:
    out = run(fresh(), [0, 300, 1600, 2100], [0.0, 0.01, 0.04, 0.06])
    assert out.closed.tolist() == [False, False, True, True]
    assert out.close_price[3] == pytest.approx(np.exp(0.04))


def test_batching_does_not_change_the_bars() -> None:
    ts = [0, 100, 600, 1100, 1300, 1700, 2000, 2600, 3300]
    lp = [0.0, 0.01, 0.02, 0.03, 0.01, 0.05, 0.02, 0.04, 0.06]
    whole = run(fresh(), ts, lp)
    bars = fresh()
    parts = [run(bars, ts[a:b], lp[a:b]) for a, b in ((0, 2), (2, 5), (5, 9))]
    for name in ("closed", "returns", "close_ts", "session_return"):
        np.testing.assert_array_equal(
            getattr(whole, name), np.concatenate([getattr(p, name) for p in parts])
        )


def test_intraday_ticks_are_judged_against_the_var_published_at_the_last_close() -> None:
    bars = fresh(levels=2)
    out = run(bars, [0, 600, 1100, 1200, 1600, 2100], [0.0, 0.0, -0.01, -0.03, -0.02, -0.05])
    # forecasts made at the two closes (rows 1 and 4): VaR at 95% and 99%, ES, sigma
    var = np.array([[0.015, 0.025], [0.02, 0.04]])
    judged = bars.judge(np.zeros(6, np.int64), out, var, np.array([0.03, 0.05]), np.ones(2))
    assert np.isnan(judged.var[0]).all()  # before the first close: nothing published
    np.testing.assert_array_equal(judged.var[2], [0.015, 0.025])
    np.testing.assert_array_equal(judged.var[5], [0.02, 0.04])
    assert judged.breach[:, 0].tolist() == [False, False, False, True, False, True]
    assert judged.breach[:, 1].tolist() == [False, False, False, True, False, False]
    var_now, es_now, _ = bars.published(np.array([0]))
    np.testing.assert_array_equal(var_now[0], [0.02, 0.04])
    assert es_now[0] == 0.05


def test_symbols_keep_their_own_sessions() -> None:
    bars = fresh()
    t = np.array([0, 50, 600, 1100, 1200], np.int64)
    slots = np.array([0, 1, 0, 1, 0])
    opens, closes = sessions(t)
    out = bars.update(slots, t, np.ones(5), opens, closes, np.full(5, np.nan))
    assert out.closed.tolist() == [False, False, True, True, False]
