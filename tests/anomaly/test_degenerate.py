"""Calibration on degenerate streams (issue 21, item 3): 0.9999 stays one quiet row in 10,000.

Generated constant, stale, quantised, periodic and level-shift streams, random walks on the
XNYS calendar (weekends, holidays, nights) and 24/7, and real series with real gaps
(``arch.data.sp500`` closes, the shared one-minute S&P 500 bars): at most 2 quiet rows in
10,000 score 0.9999 or more (:mod:`models.anomaly.degenerate` defines the quiet rows). The
labelled jumps and flash crashes are still found as before the change (figures measured on
main before it: series 0.88 / 0.61, stream 0.92 / 1.00 at 5 symbols x 20,000 ticks).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.anomaly.sessions import check_calendar, trading_clock
from models.anomaly import degenerate as D

BUDGET = 2.0
"""Quiet rows at or above 0.9999 allowed per 10,000 (the issue's target)."""

GENERATED = {s.name: s for s in D.generated() + D.session_streams()}


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_streams_stay_within_budget(name: str) -> None:
    fig = D.figures(GENERATED[name], D.score_stream(GENERATED[name]))
    assert fig.per_10k <= BUDGET, fig


def test_constant_series_has_no_evidence() -> None:
    """A zero-variance history means no evidence: a constant series never scores high."""
    stream = GENERATED["constant"]
    scores = D.score_stream(stream)
    assert np.nanmax(scores) < 0.99


def test_real_series_with_real_gaps() -> None:
    streams = {s.name: s for s in D.real_streams()}
    daily = streams["S&P 500 daily (arch)"]
    fig = D.figures(daily, D.score_stream(daily))
    assert fig.per_10k <= BUDGET, fig
    if "S&P 500 1-minute (4 days)" in streams:
        minute = streams["S&P 500 1-minute (4 days)"]
        scores = D.score_stream(minute)
        # 1,525 quiet rows: the budget is 0.3 rows; no overnight gap may score at all
        nights = np.flatnonzero(np.diff(minute.ts) > 3_600_000) + 1
        assert (scores[nights[minute.quiet[nights]]] < 0.9999).all()


def test_weekends_and_holidays_are_ordinary_on_the_exchange_clock() -> None:
    days = pd.to_datetime(
        ["2024-03-27", "2024-03-28", "2024-04-01", "2024-07-02", "2024-07-03", "2024-07-05"]
    ).as_unit("ms")
    gaps = np.diff(trading_clock(days.asi8, "XNYS")) / 3_600_000
    # Good Friday and a weekend; July 3 is a half day, July 4 a holiday
    assert gaps[[0, 1, 3, 4]].tolist() == [6.5, 6.5, 3.5, 6.5]
    wall = np.diff(trading_clock(days.asi8, "24/7")) / 86_400_000
    assert wall[[0, 1, 3, 4]].tolist() == [1.0, 4.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="unknown calendar"):
        check_calendar("MOON")


def test_demo_mondays_no_longer_alert() -> None:
    for fig in D.demo():
        assert fig.mondays_1999 == 0, fig
        assert fig.quiet_alerts <= max(1, fig.quiet * BUDGET / 1e4) + 1, fig


@pytest.mark.parametrize(
    ("section", "jump", "flash"),
    [("series", 0.88, 0.61), ("stream", 0.92, 1.00)],
)
def test_labelled_jumps_and_flash_crashes_still_caught(
    section: str, jump: float, flash: float
) -> None:
    fig = D.labelled(section)
    assert fig.jump >= jump - 1e-9
    assert fig.flash_crash >= flash - 1e-9
    assert fig.false_alarms_calm <= 1.0


def _weekday_closes(days: pd.DatetimeIndex, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    values = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, days.size)))
    return days.as_unit("ms").asi8, values


def test_a_series_trading_on_nyse_holidays_but_never_at_weekends_goes_to_the_weekday_clock() -> (
    None
):
    """Auto's ladder: XNYS, then 24/5 after a move on an NYSE holiday (a weekday), then
    24/7 after a move at a weekend. On the weekday clock a Monday after a Friday is one
    ordinary day, as a Thursday after a Wednesday (WTI and gold on their own exchanges)."""
    from engine.anomaly.features.gap import EXCHANGE, WALL_TIME, WEEKDAYS
    from engine.anomaly.features.series import SERIES_FEATURES, SeriesFeatures

    weekdays = pd.bdate_range("2024-06-20", "2024-08-30")  # July 4: the first NYSE holiday
    ts, values = _weekday_closes(weekdays)
    features = SeriesFeatures(calendar="auto")
    features.ensure(1)
    holiday = int(np.flatnonzero(weekdays == "2024-07-04")[0])
    features.update(np.zeros(holiday, dtype=np.int64), ts[:holiday], values[:holiday])
    assert features.state.state["wall"][0] == EXCHANGE
    out = features.update(
        np.zeros(ts.size - holiday, dtype=np.int64), ts[holiday:], values[holiday:]
    )
    assert features.state.state["wall"][0] == WEEKDAYS
    gap = out[:, SERIES_FEATURES.index("gap")]
    mondays = weekdays[holiday:].day_of_week == 0
    later = np.arange(ts.size - holiday) > 5  # after the typical interval has restarted
    assert np.abs(gap[mondays & later]).max() < 1e-9  # one day, like every other step

    # a date stamp is its day's close: Saturday 00:00 is Friday's close on the weekday
    # clock (no time passed), Sunday 00:00 lies outside every weekday: a weekend move
    weekend = pd.to_datetime(["2024-08-31", "2024-09-01"]).as_unit("ms").asi8
    features.update(np.zeros(1, dtype=np.int64), weekend[:1], values[-1:] * 1.01)
    assert features.state.state["wall"][0] == WEEKDAYS
    features.update(np.zeros(1, dtype=np.int64), weekend[1:], values[-1:] * 1.02)
    assert features.state.state["wall"][0] == WALL_TIME


def test_wti_and_gold_have_no_quiet_row_at_the_alert_score() -> None:
    """Both moved on an NYSE holiday; on wall time their first Mondays scored >= 0.9999
    (5.48 and 2.63 quiet rows per 10,000 before the weekday clock)."""
    from engine.anomaly.series import score_values
    from models.anomaly.quiet_other import series

    found = 0
    for name, dates, values in series():
        if not name.startswith(("WTI", "gold")):
            continue
        found += 1
        ok = np.isfinite(values) & (values > 0)
        stamps = pd.DatetimeIndex(dates)[ok].tz_localize("UTC").as_unit("ms").asi8
        scores = score_values(stamps, values[ok])
        quiet = D.quiet_returns(values[ok]) & ~np.isnan(scores)
        assert 1e4 * (scores[quiet] >= D.ALERT).sum() / quiet.sum() <= BUDGET, name
    assert found == 2
