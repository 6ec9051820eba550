"""Realised variance per trading session, accumulated online, one tick at a time.

:class:`SessionRVTracker` keeps, per symbol, the running sum of squared intraday log
returns of the symbol's current session, and closes a session when the first tick of a
*later* session arrives. It applies exactly the rules of
:mod:`engine.core.volatility.realised` (sessions, the overnight gap kept apart, the
sparse-session rule, stale prices counting, ticks outside every session left to the
gap), and the offline path is a replay of it (:func:`replay_sessions`, used by
:func:`engine.offline.intraday.session_closes`): offline and streaming realised variance
are the same numbers by construction.

Session boundaries are causal: a session closes when a tick of a later session arrives,
never by the calendar's clock. The core has no clock (a tick-driven component cannot
act between ticks), a tick stamped at the close still belongs to the session, and the
closed session's value is what forecasts the *next* session, which has just begun. So
the realised variance of session ``d`` (``RV_whole_d``: the squared gap into ``d`` plus
``d``'s intraday sum, decimal^2) is known at the first tick of session ``d + 1`` and is
fed, as that tick's ``rv``, to HAR-RV and the deep models, exactly as a producer's
``rv`` would be (:meth:`SessionRVTracker.update`). A daily-close feed (one tick per
session) has no intraday return, so no session ever has a value, and the models see
what they saw before.

Precedence: a record's own ``rv`` wins. Once a symbol's records have carried an ``rv``,
the producer owns that symbol's realised variance and the engine's values are not fed
for it (each session would otherwise reach the models twice); the engine still tracks
and publishes its live intraday state.

Calendars are injected (:data:`SessionSource`; the engine passes
:func:`engine.anomaly.sessions.session_table`, built on ``exchange-calendars``), by
name. ``auto`` decides per symbol, causally: ``XNYS`` until a tick falls outside every
NYSE session, then ``24/5`` (whole UTC weekdays); ``24/7`` from the first tick on a
Saturday or Sunday (UTC; a tick at Saturday 00:00 too, though 24/5's Friday session
closes then). A switch never regroups past ticks: an NYSE session lies
inside one UTC day and 24/5 sessions are 24/7's weekdays, so every session closed
before a switch is the same under the calendar switched to. The final calendar is the
one the offline rule (:func:`engine.offline.intraday.auto_calendar`) picks from all
the ticks.

State per symbol: eleven scalars (70 bytes), in the slot arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numba
import numpy as np

from engine.core.online import OnlineComponent
from engine.core.slots import Column
from engine.core.volatility.realised import (
    MIN_RETURNS,
    RV_REASONS,
    SessionRV,
    Sessions,
    tick_columns,
)

#: ``(calendar, first_ms, last_ms) -> (sessions, start_ms, end_ms)``: every session that
#: begins in ``[start_ms, end_ms)`` (which holds the two timestamps) is in ``sessions``;
#: ``None`` when the calendar does not cover them.
SessionSource = Callable[[str, int, int], "tuple[Sessions, int, int] | None"]

AUTO: Final = "auto"
#: The calendars ``auto`` moves through, in order (see the module docstring).
AUTO_STEPS: Final = ("XNYS", "24/5", "24/7")
_NONE: Final = np.iinfo(np.int64).min
#: ``SessionOutput.session_open``/``session_close`` of a tick outside every session.
NO_SESSION: Final = _NONE
_DAY_MS: Final = 86_400_000


@dataclass(frozen=True, slots=True)
class SessionOutput:
    """What one micro-batch did, per input tick.

    ``rv`` is the realised variance to feed the session-level models with at that tick
    (decimal^2; NaN: none); ``closed`` marks the ticks that closed a session, and the
    ``closed_*`` arrays describe that session at those ticks (undefined elsewhere).
    """

    rv: np.ndarray
    closed: np.ndarray
    closed_open: np.ndarray
    closed_first_ts: np.ndarray
    closed_last_ts: np.ndarray
    closed_last_price: np.ndarray
    closed_n: np.ndarray
    closed_rv: np.ndarray
    closed_gap: np.ndarray
    closed_whole: np.ndarray
    closed_reason: np.ndarray
    outside: np.ndarray
    """Whether each tick lies outside every session of its symbol's calendar (in a gap only)."""
    session: np.ndarray
    """The symbol's session ordinal after each tick: how many sessions it has opened (a
    tick outside every session belongs to the gap and leaves it unchanged). The clock of
    the refit schedule (:mod:`engine.core.volatility.refit_clock`)."""
    session_open: np.ndarray | None = None
    """Per tick: the scheduled open (epoch ms) of the session holding it, ``INT64_MIN``
    outside every session (what :class:`engine.core.bars.SessionBars` steps on)."""
    session_close: np.ndarray | None = None
    """Per tick: that session's scheduled close (epoch ms, inclusive), ``INT64_MIN`` outside."""
    session_rv: np.ndarray | None = None
    """Per tick: the whole-session realised variance of its session so far (the squared gap
    plus the intraday sum, decimal^2), NaN while the session has fewer than ``min_returns``
    intraday returns or no gap (the rule a close applies), or outside every session."""


@numba.njit(cache=True, nogil=True)
def _locate(opens, closes, lo, hi, t):  # pragma: no cover - compiled
    """Index (into the concatenated tables) of the session holding ``t``, else -1."""
    k = np.searchsorted(opens[lo:hi], t, side="right") - 1
    if k < 0 or t > closes[lo + k]:
        return -1
    return lo + k


@numba.njit(cache=True, nogil=True)
def _track(
    slots,
    ts,
    price,
    record_rv,
    opens,
    closes,
    lo,
    hi,
    cover_lo,
    cover_hi,
    auto,
    min_returns,
    cal,
    producer,
    open_,
    first_ts,
    n,
    acc,
    gap,
    last_px,
    last_ts,
    rv_last,
    opened,
    feed,
    closed,
    c_open,
    c_first,
    c_last_ts,
    c_last_price,
    c_n,
    c_rv,
    c_gap,
    c_whole,
    c_reason,
    outside,
    session,
    s_open,
    s_close,
    s_rv,
):  # pragma: no cover - compiled
    for i in range(slots.shape[0]):
        s = slots[i]
        t = ts[i]
        closed[i] = False
        outside[i] = False
        c = cal[s]
        k = -1
        if cover_lo[c] <= t < cover_hi[c]:
            k = _locate(opens, closes, lo[c], hi[c], t)
        if auto and c < 2:
            weekend = (t // 86_400_000 + 3) % 7 >= 5  # 1970-01-01 was a Thursday
            to = 2 if weekend else (c + 1 if k < 0 else c)
            if to != c:
                c = to
                cal[s] = c
                if open_[s] != _NONE:  # the open session, in the new calendar (same ticks)
                    j = -1
                    if cover_lo[c] <= last_ts[s] < cover_hi[c]:
                        j = _locate(opens, closes, lo[c], hi[c], last_ts[s])
                    open_[s] = opens[j] if j >= 0 else _NONE
                k = -1
                if cover_lo[c] <= t < cover_hi[c]:
                    k = _locate(opens, closes, lo[c], hi[c], t)
        whole = np.nan
        s_open[i] = _NONE
        s_close[i] = _NONE
        s_rv[i] = np.nan
        if k < 0:
            outside[i] = True
        else:
            lp = np.log(price[i])
            if open_[s] == opens[k]:
                r = lp - np.log(last_px[s])
                n[s] += 1
                acc[s] += r * r
            else:
                if open_[s] != _NONE:
                    reason = 0
                    value = acc[s]
                    if n[s] < min_returns:
                        reason = 1
                        value = np.nan
                    elif np.isnan(gap[s]):
                        reason = 2
                    whole = value + gap[s] * gap[s] if reason == 0 else np.nan
                    closed[i] = True
                    c_open[i] = open_[s]
                    c_first[i] = first_ts[s]
                    c_last_ts[i] = last_ts[s]
                    c_last_price[i] = last_px[s]
                    c_n[i] = n[s]
                    c_rv[i] = value
                    c_gap[i] = gap[s]
                    c_whole[i] = whole
                    c_reason[i] = reason
                    rv_last[s] = whole
                    gap[s] = lp - np.log(last_px[s])
                else:
                    gap[s] = np.nan
                open_[s] = opens[k]
                opened[s] += 1
                first_ts[s] = t
                n[s] = 0
                acc[s] = 0.0
            last_px[s] = price[i]
            last_ts[s] = t
            s_open[i] = opens[k]
            s_close[i] = closes[k]
            if n[s] >= min_returns and not np.isnan(gap[s]):
                s_rv[i] = acc[s] + gap[s] * gap[s]
        session[i] = opened[s]
        if not np.isnan(record_rv[i]):
            producer[s] = 1
            feed[i] = record_rv[i]
        elif producer[s]:
            feed[i] = np.nan
        else:
            feed[i] = whole


class SessionRVTracker(OnlineComponent):
    """Per-symbol realised variance of the current trading session, updated tick by tick.

    Parameters
    ----------
    source : SessionSource
        The calendars' sessions, by name (outside the core: ``exchange-calendars``).
    calendar : str
        ``auto`` or one calendar name for every symbol (``24/7``, ``24/5``, ``XNYS``, ...).
    min_returns : int
        Fewest intraday returns for a session to have a realised variance.

    State columns (per symbol): the calendar (index into :attr:`calendars`), whether its
    records carry ``rv``, the current session's open (epoch ms), first tick, intraday
    return count and sum of squared intraday log returns (``acc``, decimal^2), the gap
    into it (log return), the last in-session log price and time, and ``rv_last``: the
    whole-session realised variance of the last closed session (NaN: it had none), and
    ``opened``: how many sessions the symbol has opened (the refit schedule's clock).

    Examples
    --------
    >>> def days(calendar, first, last):  # whole 1-second "sessions"
    ...     return Sessions(np.arange(0, 10_000, 1000), np.arange(1000, 11_000, 1000)), 0, 10_000
    >>> tracker = SessionRVTracker(days, "24/7", min_returns=2)
    >>> tracker.ensure(1)
    >>> p = np.exp([0.0, 0.01, -0.01, 0.02, 0.02, 0.05, 0.05])
    >>> t = np.array([0, 100, 200, 1000, 1100, 1200, 2000])
    >>> out = tracker.update(np.zeros(7, np.int64), t, p)
    >>> np.round(out.rv, 6).tolist()  # the second session's value, at the third's first tick
    [nan, nan, nan, nan, nan, nan, 0.0018]
    """

    name = "srv"

    def __init__(
        self, source: SessionSource, calendar: str = AUTO, *, min_returns: int = MIN_RETURNS
    ) -> None:
        if min_returns < 1:
            raise ValueError(f"min_returns must be at least 1, got {min_returns}")
        self.source = source
        self.calendar = calendar
        self.min_returns = int(min_returns)
        self.calendars: tuple[str, ...] = AUTO_STEPS if calendar == AUTO else (calendar,)
        self._tables: list[tuple[Sessions, int, int] | None] = [None] * len(self.calendars)
        self._packed: tuple[np.ndarray, ...] | None = None
        super().__init__()

    def columns(self) -> Sequence[Column]:
        return (
            Column("cal", np.int8, 0),
            Column("producer", np.int8, 0),
            Column("open", np.int64, _NONE),
            Column("first_ts", np.int64, _NONE),
            Column("n", np.int32, 0),
            Column("acc", np.float64, 0.0),
            Column("gap", np.float64, np.nan),
            Column("last_px", np.float64, np.nan),
            Column("last_ts", np.int64, _NONE),
            Column("rv_last", np.float64, np.nan),
            Column("opened", np.int64, 0),
        )

    # --- calendars ----------------------------------------------------------------------------

    def _cover(self, first: int, last: int) -> None:
        """Make every calendar's table span ``[first, last]`` (asks the source only on a miss).

        Where the source has no sessions (``None``), the span is kept with the sessions
        already known: ticks there are outside every session (a fixed calendar: in the
        gaps; ``auto``: they move the symbol to the next calendar).
        """
        for c, name in enumerate(self.calendars):
            have = self._tables[c]
            if have is not None and have[1] <= first and last < have[2]:
                continue
            lo = first if have is None else min(first, have[1])
            hi = last if have is None else max(last, have[2] - 1)
            got = self.source(name, lo, hi)
            if got is None:
                got = (
                    have[0] if have is not None else Sessions(np.empty(0), np.empty(0)),
                    lo,
                    hi + 1,
                )
            self._tables[c] = got
            self._packed = None

    def _arrays(self) -> tuple[np.ndarray, ...]:
        if self._packed is None:
            opens, closes, lo, hi, cover_lo, cover_hi = [], [], [], [], [], []
            at = 0
            for table in self._tables:
                sessions, start, end = (
                    table if table is not None else (Sessions(np.empty(0), np.empty(0)), 0, 0)
                )
                opens.append(sessions.opens)
                closes.append(sessions.closes)
                lo.append(at)
                at += sessions.size
                hi.append(at)
                cover_lo.append(start)
                cover_hi.append(end)
            self._packed = (
                np.concatenate(opens).astype(np.int64),
                np.concatenate(closes).astype(np.int64),
                np.asarray(lo, np.int64),
                np.asarray(hi, np.int64),
                np.asarray(cover_lo, np.int64),
                np.asarray(cover_hi, np.int64),
            )
        return self._packed

    def calendar_of(self, slot: int) -> str:
        """The calendar a symbol's sessions come from now."""
        return self.calendars[int(self.state["cal"][slot])]

    # --- the micro-batch step -----------------------------------------------------------------

    def update(
        self,
        slots: np.ndarray,
        ts: np.ndarray,
        price: np.ndarray,
        record_rv: np.ndarray | None = None,
    ) -> SessionOutput:
        """Advance the symbols by accepted ticks (arrival order, time order per symbol).

        Parameters
        ----------
        slots, ts, price : ndarray
            Slot, event time (epoch ms) and price (> 0) of each tick.
        record_rv : ndarray, optional
            The records' own ``rv`` (decimal^2, NaN: none); it wins (module docstring).

        Returns
        -------
        SessionOutput
            Per tick: the ``rv`` to feed the session-level models, and the sessions closed.
        """
        slots = np.asarray(slots, dtype=np.int64)
        ts = np.asarray(ts, dtype=np.int64)
        m = slots.size
        if record_rv is None or record_rv.size == 0:
            record_rv = np.full(m, np.nan)
        if m:
            self._cover(int(ts.min()), int(ts.max()))
        opens, closes, lo, hi, cover_lo, cover_hi = self._arrays()
        st = self.state
        feed = np.empty(m)
        closed = np.zeros(m, dtype=np.bool_)
        c_int = [np.zeros(m, np.int64) for _ in range(5)]
        c_flt = [np.full(m, np.nan) for _ in range(4)]
        outside = np.zeros(m, dtype=np.bool_)
        session = np.empty(m, np.int64)
        s_open, s_close, s_rv = np.empty(m, np.int64), np.empty(m, np.int64), np.empty(m)
        _track(
            slots,
            ts,
            np.asarray(price, dtype=np.float64),
            np.asarray(record_rv, dtype=np.float64),
            opens,
            closes,
            lo,
            hi,
            cover_lo,
            cover_hi,
            self.calendar == AUTO,
            self.min_returns,
            st["cal"],
            st["producer"],
            st["open"],
            st["first_ts"],
            st["n"],
            st["acc"],
            st["gap"],
            st["last_px"],
            st["last_ts"],
            st["rv_last"],
            st["opened"],
            feed,
            closed,
            c_int[0],
            c_int[1],
            c_int[2],
            c_flt[0],
            c_int[3],
            c_flt[1],
            c_flt[2],
            c_flt[3],
            c_int[4],
            outside,
            session,
            s_open,
            s_close,
            s_rv,
        )
        return SessionOutput(
            rv=feed,
            closed=closed,
            closed_open=c_int[0],
            closed_first_ts=c_int[1],
            closed_last_ts=c_int[2],
            closed_last_price=c_flt[0],
            closed_n=c_int[3],
            closed_rv=c_flt[1],
            closed_gap=c_flt[2],
            closed_whole=c_flt[3],
            closed_reason=c_int[4],
            outside=outside,
            session=session,
            session_open=s_open,
            session_close=s_close,
            session_rv=s_rv,
        )

    def live(self, slots: np.ndarray) -> dict[str, np.ndarray]:
        """The live intraday state of ``slots``, for the symbol's latest-risk hash.

        ``rv_session`` is the sum of squared intraday log returns of the current session
        so far (decimal^2, the gap excluded); ``rv_session_returns`` their count;
        ``rv_gap`` the log return from the previous session's last tick to this one's
        first (NaN for a symbol's first session); ``rv_last`` the realised variance the
        last closed session fed the models (``rv_gap^2 + rv_session`` at its last tick,
        NaN when it had too few returns or no previous close).
        """
        st = self.state
        started = st["open"][slots] != _NONE
        return {
            "rv_session": np.where(started, st["acc"][slots], np.nan),
            "rv_session_returns": np.where(started, st["n"][slots], 0),
            "rv_gap": st["gap"][slots].copy(),
            "rv_last": st["rv_last"][slots].copy(),
        }

    def flush(self, slots: np.ndarray) -> SessionOutput:
        """Close the open sessions of ``slots`` as if a later session began (end of a file).

        Offline only: a stream never knows a session is over before a later one starts.
        One row per slot with an open session, in ``slots`` order; the state is left as it
        was.
        """
        st = self.state
        slots = np.asarray(slots, dtype=np.int64)
        slots = slots[st["open"][slots] != _NONE]
        n = st["n"][slots].astype(np.int64)
        rv = np.where(n >= self.min_returns, st["acc"][slots], np.nan)
        gap = st["gap"][slots].copy()
        reason = np.where(np.isnan(rv), 1, np.where(np.isnan(gap), 2, 0)).astype(np.int64)
        whole = np.where(reason == 0, rv + gap * gap, np.nan)
        return SessionOutput(
            rv=whole,
            closed=np.ones(slots.size, dtype=np.bool_),
            closed_open=st["open"][slots].copy(),
            closed_first_ts=st["first_ts"][slots].copy(),
            closed_last_ts=st["last_ts"][slots].copy(),
            closed_last_price=st["last_px"][slots].copy(),
            closed_n=n,
            closed_rv=rv,
            closed_gap=gap,
            closed_whole=whole,
            closed_reason=reason,
            outside=np.zeros(slots.size, dtype=np.bool_),
            session=st["opened"][slots].copy(),
        )


def replay_sessions(
    symbols: np.ndarray,
    ts: np.ndarray,
    price: np.ndarray,
    source: SessionSource,
    calendar: str = AUTO,
    *,
    min_returns: int = MIN_RETURNS,
) -> tuple[SessionRV, SessionRVTracker]:
    """Every symbol's sessions, by replaying its ticks through a :class:`SessionRVTracker`.

    The offline path: ticks are put in time order per symbol (ties in input order), fed
    to the tracker as a stream would feed them, and the sessions still open at the end of
    the input are closed (:meth:`SessionRVTracker.flush`). The result has
    :func:`~engine.core.volatility.realised.realised_variance`'s rows, except that
    :attr:`SessionRV.session` holds each session's open (epoch ms) and symbols come in
    first-seen order; the tracker tells each symbol's final calendar.

    Raises
    ------
    ValueError
        Arrays of different lengths, or a price that is not finite and positive.
    """
    symbols, ts, price = tick_columns(symbols, ts, price)
    tracker = SessionRVTracker(source, calendar, min_returns=min_returns)
    _, first_seen, code = np.unique(symbols, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first_seen, kind="stable"), kind="stable")
    code = rank[code.reshape(-1)]
    names = symbols[np.sort(first_seen)]
    order = np.lexsort((ts, code))  # per symbol, in time order (ties in input order)
    tracker.ensure(names.size)
    out = tracker.update(code[order], ts[order], price[order])
    end = tracker.flush(np.arange(names.size))
    rows = np.flatnonzero(out.closed)
    closed_slot = code[order][rows]
    still_open = np.flatnonzero(tracker.state["open"][: names.size] != _NONE)
    slot = np.concatenate([closed_slot, still_open])
    # each symbol's rows in session order: closed ones (in time order), then its last one
    by = np.argsort(slot, kind="stable")

    def cat(field: str) -> np.ndarray:
        return np.concatenate([getattr(out, field)[rows], getattr(end, field)])[by]

    table = SessionRV(
        symbol=names[slot[by]],
        session=cat("closed_open"),
        open_ts=cat("closed_first_ts"),
        close_ts=cat("closed_last_ts"),
        close_price=cat("closed_last_price"),
        n_returns=cat("closed_n"),
        rv=cat("closed_rv"),
        gap=cat("closed_gap"),
        rv_whole=cat("closed_whole"),
        reason=cat("closed_reason"),
        outside=int(out.outside.sum()),
    )
    assert len(RV_REASONS) == 3  # the kernel's reason codes are RV_REASONS' indices
    return table, tracker
