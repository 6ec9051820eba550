"""Intraday price tables as session closes carrying engine-computed realised variance.

A live feed, or an intraday price file, carries no realised variance. The session-level
models (HAR-RV, the deep models) need one per session: :func:`session_closes` computes it
by replaying the file through the stream's online accumulator
(:func:`engine.core.volatility.session_rv.replay_sessions`; the rules are
:mod:`engine.core.volatility.realised`'s), so a file and a live feed of the same ticks
give the same numbers, and returns one row per symbol and session, at the session's last tick, with
``rv`` = the whole-session realised variance (the squared gap plus the intraday sum), the
input those models forecast the next session's close-to-close variance from.

Sessions come from ``exchange-calendars`` (:func:`engine.anomaly.sessions.session_table`),
outside the pure core, by calendar name:

``auto`` (the default, per symbol)
    ``XNYS`` when every tick of the symbol lies in an NYSE session; otherwise ``24/5``
    (weekdays, whole UTC days: FX) when none falls on a Saturday or Sunday (UTC);
    otherwise ``24/7`` (whole UTC days: crypto). The replay decides it causally, as the
    stream does (:mod:`engine.core.volatility.session_rv`), and ends on the calendar
    :func:`auto_calendar` picks from all the ticks;
``24/7``, ``24/5``, ``XNYS``, ``XLON``, ... (any ``exchange_calendars`` code)
    that calendar for every symbol.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine.anomaly.sessions import (
    AUTO,
    AUTO_EXCHANGE,
    check_calendar,
    session_bounds,
    session_table,
)
from engine.core.volatility.realised import MIN_RETURNS, SessionRV, Sessions
from engine.core.volatility.session_rv import replay_sessions

_DAY_MS = 86_400_000


def auto_calendar(ts: np.ndarray) -> str:
    """The calendar ``auto`` picks for one symbol's ticks (epoch ms): see the module docstring.

    >>> days = pd.to_datetime(["2024-03-29 10:00", "2024-03-30 10:00"]).as_unit("ms").asi8
    >>> auto_calendar(days[:1]), auto_calendar(days)  # a Friday; then a Saturday too
    ('24/5', '24/7')
    """
    ts = np.asarray(ts, dtype=np.int64)
    bounds = session_bounds(AUTO_EXCHANGE, int(ts.min()), int(ts.max()))
    if bounds is not None and (Sessions(*bounds).locate(ts) >= 0).all():
        return AUTO_EXCHANGE
    weekday = (ts // _DAY_MS + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    return "24/5" if (weekday < 5).all() else "24/7"


@dataclass(frozen=True)
class SessionCloses:
    """Session closes of a price table: :attr:`frame` has ``timestamp, symbol, price, rv``
    (``rv`` decimal^2, NaN where :data:`~engine.core.volatility.realised.RV_REASONS` says
    why), in time order; :attr:`tables` the per-calendar session tables behind it."""

    frame: pd.DataFrame
    calendars: dict[str, str]
    """The calendar each symbol's sessions came from."""
    tables: list[SessionRV] = field(default_factory=list)
    min_returns: int = MIN_RETURNS
    most_ticks: int = 0
    """The most rows any one session of any symbol holds."""

    @property
    def with_rv(self) -> int:
        """Sessions with a realised variance (``rv`` not NaN)."""
        return int(self.frame["rv"].notna().sum())

    def describe(self) -> str:
        """One sentence on what was computed, for the command's stderr."""
        reasons: dict[str, int] = {}
        for table in self.tables:
            for reason, count in table.reasons().items():
                reasons[reason] = reasons.get(reason, 0) + count
        outside = sum(table.outside for table in self.tables)
        by_calendar: dict[str, int] = {}
        for calendar in self.calendars.values():
            by_calendar[calendar] = by_calendar.get(calendar, 0) + 1
        cals = ", ".join(f"{c} ({n} symbol{'s' * (n > 1)})" for c, n in by_calendar.items())
        missing = ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in reasons.items()) or "none"
        text = (
            f"the engine computed realised variance from the intraday rows: {len(self.frame)} "
            f"sessions ({cals}), {self.with_rv} with a value (squared gap plus the sum of squared "
            f"intraday log returns; sessions without one: {missing}; fewer than "
            f"{self.min_returns} intraday returns is too few)"
        )
        if outside:
            text += f"; {outside} rows outside every session are in the gaps only"
        return text


def session_closes(
    frame: pd.DataFrame, *, calendar: str = AUTO, min_returns: int = MIN_RETURNS
) -> SessionCloses:
    """One row per symbol and session of a long ``timestamp, symbol, price`` table.

    Parameters
    ----------
    frame : DataFrame
        Long-format price rows (``timestamp`` UTC, ``symbol``, ``price`` > 0), as
        :func:`producers.sources.read_price_csv` returns them.
    calendar : str
        ``auto``, ``24/7``, ``24/5`` or an ``exchange_calendars`` code.
    min_returns : int
        Fewest intraday returns for a session to have a realised variance.

    Raises
    ------
    ValueError
        Unknown calendar, or a calendar that does not cover the timestamps.
    """
    check_calendar(calendar)
    ts = frame["timestamp"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    symbols = frame["symbol"].astype(str).to_numpy()
    price = frame["price"].to_numpy(dtype=float)
    if (
        calendar != AUTO
        and ts.size
        and session_table(calendar, int(ts.min()), int(ts.max())) is None
    ):
        raise ValueError(f"calendar {calendar} does not cover the file's timestamps")
    table, tracker = replay_sessions(
        symbols, ts, price, session_table, calendar, min_returns=min_returns
    )
    names = pd.unique(symbols)
    chosen = {str(name): tracker.calendar_of(slot) for slot, name in enumerate(names)}
    out = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(table.close_ts, unit="ms", utc=True),
            "symbol": table.symbol,
            "price": table.close_price,
            "rv": table.rv_whole,
        }
    )
    out = out.sort_values("timestamp", kind="stable").reset_index(drop=True)
    most = int(table.n_returns.max(initial=-1)) + 1
    return SessionCloses(out, chosen, [table], min_returns, most)
