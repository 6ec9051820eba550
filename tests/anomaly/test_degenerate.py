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
