"""Trading time: how much of a market's open time lies between two timestamps.

A Monday close after a Friday close, or the first bar of a morning after the last bar of
the evening before, is an ordinary step for an exchange-traded instrument: no time of the
market passed in between that did not pass between two weekday closes. Gap features
(:mod:`~engine.anomaly.features.series`, :mod:`~engine.anomaly.features.prices`) therefore
measure time on a *trading clock*: milliseconds of open market since the epoch, from the
sessions of the instrument's calendar as ``exchange-calendars`` publishes them (opens,
closes, holidays, half days; never hand-written here). Lunch breaks count as open.

Calendars, by name:

``24/7``
    every millisecond is open (crypto, a machine's latencies): the clock is wall time;
``XNYS``, ``XLON``, ... (any ``exchange_calendars`` code)
    that exchange's sessions; a timestamp at exactly 00:00 UTC on a session's date (a
    daily series stamped with dates) counts as that session's close;
``24/5``
    whole UTC weekdays (FX, and the fallback below);
``auto`` (the default)
    ``XNYS`` while the series fits it, then ``24/5``, then ``24/7``: the feature code
    moves a series down that ladder, for good, the first time two consecutive rows at
    different wall times fall on the same instant of its clock, one of them outside
    every session (the series moves while its clock is closed). A move on a weekday
    (another exchange's holiday, extended hours) goes to ``24/5``; a move at a weekend
    (a 24/7 market) goes to ``24/7``. A row at a close followed by one at the next open is
    one ordinary step (its gap is not scored). A series stamped before or after what the
    calendar covers uses wall time.

Everything here is a pure function of the timestamps (causal by construction).
"""

from __future__ import annotations

import functools
import warnings
from typing import Any, Final

import numpy as np

WALL: Final = "24/7"
WEEKDAYS: Final = "24/5"
"""Whole UTC weekdays: the clock ``auto`` falls back to for a series that trades on
other exchanges' days (or hours) but never at weekends."""
AUTO: Final = "auto"
AUTO_EXCHANGE: Final = "XNYS"
"""The exchange ``auto`` assumes until a series shows it trades outside that exchange's sessions."""
_DAY_MS = 86_400_000


def check_calendar(name: str) -> str:
    """``name`` if it is ``auto``, ``24/7`` or an ``exchange_calendars`` code (``24/5``
    included), else ValueError.

    >>> check_calendar("XNYS"), check_calendar("24/7")
    ('XNYS', '24/7')
    """
    if name in (WALL, AUTO):
        return name
    import exchange_calendars as xcals

    if name not in xcals.get_calendar_names(include_aliases=True):
        raise ValueError(
            f"unknown calendar {name!r}; use auto, 24/7 or an exchange-calendars code (e.g. XNYS)"
        )
    return name


def get_calendar(code: str, start: str, end: str) -> Any:
    """``exchange_calendars.get_calendar``, without the deprecation warnings its pandas
    calls raise under pandas 3 (they are the package's, not ours)."""
    import exchange_calendars as xcals

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*drops timezone information.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        return xcals.get_calendar(code, start=start, end=end)


@functools.lru_cache(maxsize=16)
def _sessions(code: str, first_year: int, last_year: int) -> tuple[np.ndarray, ...] | None:
    """``(opens, closes, cumulative open ms before each session, session dates at 00:00 UTC)``."""
    from exchange_calendars.errors import DateOutOfBounds

    try:
        cal = get_calendar(code, f"{first_year}-01-01", f"{last_year}-12-31")
    except (DateOutOfBounds, ValueError):
        return None
    sched = cal.schedule
    opens = sched["open"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    closes = sched["close"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    before = np.concatenate([[0], np.cumsum(closes - opens)[:-1]]).astype(np.float64)
    dates = np.asarray(sched.index.to_numpy(dtype="datetime64[ms]").astype(np.int64))
    return opens, closes, before, dates


def session_bounds(code: str, first_ms: int, last_ms: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Opens and closes (epoch ms) of ``code``'s sessions in the years around two timestamps.

    ``code`` is any ``exchange_calendars`` name, ``24/7`` and ``24/5`` included (their
    sessions are whole UTC days); ``None`` when the calendar does not cover those years.
    """
    first = np.datetime64(int(first_ms) - 10 * _DAY_MS, "ms").astype("datetime64[Y]")
    last = np.datetime64(int(last_ms) + 10 * _DAY_MS, "ms").astype("datetime64[Y]")
    table = _sessions(code, int(first.astype(int)) + 1970, int(last.astype(int)) + 1970)
    return None if table is None else (table[0], table[1])


def trading_clock(ts: np.ndarray, calendar: str) -> np.ndarray:
    """Milliseconds of open market up to each timestamp (wall ms for ``24/7``).

    The first of :func:`clock_and_open`'s results.

    Parameters
    ----------
    ts : ndarray of int64
        Epoch milliseconds (UTC), any order.
    calendar : str
        ``24/7``, an exchange code, or ``auto`` (the ``XNYS`` clock; the switch to wall
        time is the feature code's, per series).

    Returns
    -------
    ndarray of float64
        Non-decreasing in ``ts``; only differences are meaningful. Wall time when the
        calendar does not cover the timestamps.

    Examples
    --------
    >>> import pandas as pd
    >>> days = pd.to_datetime(["2024-03-28", "2024-04-01", "2024-04-02"]).as_unit("ms").asi8
    >>> (np.diff(trading_clock(days, "XNYS")) / 3_600_000).tolist()  # Good Friday, a weekend
    [6.5, 6.5]
    """
    return clock_and_open(ts, calendar)[0]


def clock_and_open(ts: np.ndarray, calendar: str) -> tuple[np.ndarray, np.ndarray]:
    """The trading clock (see :func:`trading_clock`) and whether each timestamp is in a
    session, open and close included (always, for ``24/7`` or where the calendar does not
    reach): a close and the next open are one instant of trading time apart by nothing."""
    ts = np.asarray(ts, dtype=np.int64)
    if calendar == WALL or ts.size == 0:
        return ts.astype(np.float64), np.ones(ts.size, dtype=bool)
    code = AUTO_EXCHANGE if calendar == AUTO else calendar
    first = np.datetime64(int(ts.min()) - 10 * _DAY_MS, "ms").astype("datetime64[Y]")
    last = np.datetime64(int(ts.max()) + 10 * _DAY_MS, "ms").astype("datetime64[Y]")
    table = _sessions(code, int(first.astype(int)) + 1970, int(last.astype(int)) + 1970)
    if table is None:
        return ts.astype(np.float64), np.ones(ts.size, dtype=bool)
    opens, closes, before, dates = table
    t = ts.copy()
    # a date stamp (00:00 UTC) on a session's date is that session's daily bar: its close
    midnight = t % _DAY_MS == 0
    if midnight.any():
        k = np.searchsorted(dates, t[midnight])
        k = np.minimum(k, dates.size - 1)
        on_session = dates[k] == t[midnight]
        t[np.flatnonzero(midnight)[on_session]] = closes[k[on_session]]
    k = np.searchsorted(opens, t, side="right") - 1
    out = np.empty(t.size, dtype=np.float64)
    early = k < 0
    out[early] = 0.0
    kk = k[~early]
    out[~early] = before[kk] + np.clip(t[~early] - opens[kk], 0, closes[kk] - opens[kk])
    inside = np.zeros(t.size, dtype=bool)
    inside[~early] = t[~early] <= closes[kk]
    return out, inside


def auto_clocks(
    ts: np.ndarray, calendar: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`clock_and_open` on ``calendar`` and, for ``auto``, on the weekday clock
    (zeros and ``False`` otherwise): the two clocks an ``auto`` series may be on before
    wall time (:func:`engine.anomaly.features.gap.clock_step` picks per row)."""
    clock, inside = clock_and_open(ts, calendar)
    if calendar != AUTO:
        return clock, inside, np.zeros(clock.size), np.zeros(clock.size, dtype=bool)
    weekday, weekday_in = clock_and_open(ts, WEEKDAYS)
    return clock, inside, weekday, weekday_in


def session_table(code: str, first_ms: int, last_ms: int) -> tuple[Any, int, int] | None:
    """``code``'s sessions around two timestamps, with the span they are complete over.

    The session source of the online realised-variance tracker
    (:class:`engine.core.volatility.session_rv.SessionRVTracker`): returns
    ``(Sessions, start_ms, end_ms)``, where every session of the calendar that begins in
    ``[start_ms, end_ms)`` is in the table (whole calendar years around the two
    timestamps), or ``None`` when ``exchange-calendars`` does not cover those years.

    >>> table, start, end = session_table("24/7", 1704067200000, 1704067200000)
    >>> table.size, np.datetime64(start, "ms"), np.datetime64(end, "ms")
    (731, np.datetime64('2023-01-01T00:00:00.000'), np.datetime64('2025-01-01T00:00:00.000'))
    """
    from engine.core.volatility.realised import Sessions

    first = np.datetime64(int(first_ms) - 10 * _DAY_MS, "ms").astype("datetime64[Y]")
    last = np.datetime64(int(last_ms) + 10 * _DAY_MS, "ms").astype("datetime64[Y]")
    table = _sessions(code, int(first.astype(int)) + 1970, int(last.astype(int)) + 1970)
    if table is None:
        return None
    start = int(first.astype("datetime64[ms]").astype(np.int64))
    end = int((last + 1).astype("datetime64[ms]").astype(np.int64))
    return Sessions(table[0], table[1]), start, end
