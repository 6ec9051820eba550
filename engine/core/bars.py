"""Session bars: ticks in, session close-to-close log returns out, causally, per symbol.

With ``RISKSTREAM_BARS=session`` the per-symbol models step once per trading session,
not once per tick. :class:`SessionBars` sits in front of the models of
:class:`~engine.core.book.PriceRiskBook`: it reads each accepted tick's session from the
realised-variance tracker (:class:`~engine.core.volatility.session_rv.SessionRVTracker`,
so both use the same calendar, ``RISKSTREAM_RV_CALENDAR``, switched causally under
``auto``) and marks the ticks at which a session *closes*. Only those ticks reach the
models, with the session's close-to-close log return. The offline commands and the
worker run this same component inside the same book, so offline output equals the
stream's.

When a session closes (causal, no clock):

- at once, on a tick stamped at or after its session's scheduled close (a bar stamped
  16:00 New York in an NYSE session, a daily close stamped at the close);
- otherwise at the first tick of a later session, or at the first tick outside every
  session after it: that tick only tells the engine the session is over. The closed
  session's close is its last tick's price; the closing tick's own price belongs to the
  next session.

A tick that closes the previous session is never also the close of its own (a session
whose first tick is at its scheduled close closes at the next session's first tick).
Ticks of an already closed session (a second tick at the close) move the price only;
their move is part of the next close-to-close return.

The first close of a symbol has no return (NaN, as a symbol's first tick in tick mode).
The return is ``ln(close_d / close_{d-1})``, overnight gap included. The ``rv`` fed to
the session-level models with it is the record's own ``rv`` on the session's last tick
when it has one, else the engine's whole-session realised variance of the session
(:attr:`SessionOutput.session_rv` at its last tick; NaN for sparse sessions).

Intraday ticks: each accepted tick's ``session_return`` is the log return from the last
close to it (0 at a close); :meth:`SessionBars.judge` compares it with the published
VaR made at that close (an intraday breach when ``session_return < -VaR``).

State per symbol: the current session's open, whether it has closed, its last price,
time and ``rv``, the last close's price, and the VaR (one per VaR level), ES and sigma
published at that close.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from engine.core.online import OnlineComponent
from engine.core.slots import Column
from engine.core.volatility.session_rv import NO_SESSION, SessionOutput


@dataclass(frozen=True, slots=True)
class BarOutput:
    """Per accepted tick of one micro-batch (arrival order).

    ``closed`` marks the ticks at which a session closed; at those, ``returns`` is its
    close-to-close log return (NaN for a symbol's first close), ``rv`` the realised
    variance of the closed session (decimal^2, NaN: none), ``close_ts``/``close_price``
    the time (epoch ms) and price of its last tick. ``session_return`` is, at every
    tick, the log return from the symbol's last close to the tick (NaN before a first
    close).
    """

    closed: np.ndarray
    returns: np.ndarray
    rv: np.ndarray
    close_ts: np.ndarray
    close_price: np.ndarray
    session_return: np.ndarray


@dataclass(frozen=True, slots=True)
class IntradayOutput:
    """Intraday ticks judged against the VaR published at the symbol's last close.

    Arrays are per accepted tick (arrival order); ``var`` is ``[tick, var level]``,
    positive log-return losses for the next session (NaN while the models warm up);
    ``breach[tick, level]`` is ``session_return < -var``.
    """

    slots: np.ndarray
    session_return: np.ndarray
    var: np.ndarray
    breach: np.ndarray


@numba.njit(cache=True, nogil=True)
def _close(
    i, s, last_px, last_ts, last_rv, close_px, closed, ret, rv, c_ts, c_px
):  # pragma: no cover
    px = last_px[s]
    closed[i] = True
    ret[i] = np.log(px / close_px[s])  # NaN for the first close (as the sequencer's)
    rv[i] = last_rv[s]
    c_ts[i] = last_ts[s]
    c_px[i] = px
    close_px[s] = px


@numba.njit(cache=True, nogil=True)
def _bars(
    slots,
    ts,
    price,
    s_open,
    s_close,
    s_rv,
    record_rv,
    cur_open,
    done,
    last_px,
    last_ts,
    last_rv,
    close_px,
    closed,
    ret,
    rv,
    c_ts,
    c_px,
    partial,
):  # pragma: no cover - compiled
    for i in range(slots.shape[0]):
        s = slots[i]
        closed[i] = False
        ret[i] = np.nan
        rv[i] = np.nan
        o = s_open[i]
        if o == NO_SESSION:  # outside every session: the current one is over
            if cur_open[s] != NO_SESSION and done[s] == 0:
                _close(i, s, last_px, last_ts, last_rv, close_px, closed, ret, rv, c_ts, c_px)
                done[s] = 1
        else:
            if o != cur_open[s]:  # the first tick of a later session
                if cur_open[s] != NO_SESSION and done[s] == 0:
                    _close(i, s, last_px, last_ts, last_rv, close_px, closed, ret, rv, c_ts, c_px)
                cur_open[s] = o
                done[s] = 0
            if done[s] == 0:
                last_px[s] = price[i]
                last_ts[s] = ts[i]
                last_rv[s] = record_rv[i] if not np.isnan(record_rv[i]) else s_rv[i]
                if ts[i] >= s_close[i] and not closed[i]:  # at its scheduled close: at once
                    _close(i, s, last_px, last_ts, last_rv, close_px, closed, ret, rv, c_ts, c_px)
                    done[s] = 1
        partial[i] = np.log(price[i] / close_px[s])


@numba.njit(cache=True, nogil=True)
def _judge(
    slots, closed, row, partial, var_rows, es_rows, sig_rows, var, es, sigma, out_var, breach
):  # pragma: no cover
    for i in range(slots.shape[0]):
        s = slots[i]
        if closed[i]:
            j = row[i]
            var[s, :] = var_rows[j, :]
            es[s] = es_rows[j]
            sigma[s] = sig_rows[j]
        for k in range(var.shape[1]):
            out_var[i, k] = var[s, k]
            breach[i, k] = partial[i] < -var[s, k]


class SessionBars(OnlineComponent):
    """Turns accepted ticks into session-close returns; keeps the VaR published at the close.

    Parameters
    ----------
    n_levels : int
        Number of VaR levels whose published values are kept per symbol (the book's
        ``var_levels``).

    Examples
    --------
    Two one-second "sessions" (opens 0 and 1000 ms, closes 999 and 1999 ms inclusive);
    the first closes at once on its tick stamped at its close, the second at the end:

    >>> bars = SessionBars(n_levels=1)
    >>> bars.ensure(1)
    >>> from engine.core.volatility.session_rv import SessionOutput
    >>> opens, closes = np.array([0, 0, 1000, 1000]), np.array([999, 999, 1999, 1999])
    >>> px = np.exp([0.0, 0.01, 0.03, 0.02])
    >>> out = bars.update(np.zeros(4, np.int64), np.array([0, 999, 1200, 1999]), px,
    ...                   opens, closes, np.full(4, np.nan))
    >>> out.closed.tolist(), np.round(out.returns[out.closed], 6).tolist()
    ([False, True, False, True], [nan, 0.01])
    >>> np.round(out.session_return, 6).tolist()  # since the last close
    [nan, 0.0, 0.02, 0.0]
    """

    name = "bars"

    def __init__(self, n_levels: int) -> None:
        if n_levels < 1:
            raise ValueError(f"n_levels must be at least 1, got {n_levels}")
        self.n_levels = int(n_levels)
        super().__init__()

    def columns(self) -> Sequence[Column]:
        return (
            Column("open", np.int64, NO_SESSION),
            Column("done", np.int8, 0),
            Column("last_px", np.float64, np.nan),
            Column("last_ts", np.int64, NO_SESSION),
            Column("last_rv", np.float64, np.nan),
            Column("close_px", np.float64, np.nan),
            Column("var", np.float64, np.nan, width=self.n_levels),
            Column("es", np.float64, np.nan),
            Column("sigma", np.float64, np.nan),
        )

    def update(
        self,
        slots: np.ndarray,
        ts: np.ndarray,
        price: np.ndarray,
        session_open: np.ndarray,
        session_close: np.ndarray,
        session_rv: np.ndarray,
        record_rv: np.ndarray | None = None,
    ) -> BarOutput:
        """Advance the symbols by accepted ticks (arrival order, time order per symbol).

        ``session_open``/``session_close``/``session_rv`` are the tracker's per-tick
        outputs (:class:`SessionOutput`) for the same ticks; ``record_rv`` the records'
        own ``rv`` (decimal^2, NaN: none), which wins on a session's last tick.
        """
        slots = np.asarray(slots, np.int64)
        m = slots.size
        if record_rv is None or record_rv.size == 0:
            record_rv = np.full(m, np.nan)
        st = self.state
        closed = np.zeros(m, np.bool_)
        ret, rv, c_px, partial = (np.full(m, np.nan) for _ in range(4))
        c_ts = np.zeros(m, np.int64)
        _bars(
            slots,
            np.asarray(ts, np.int64),
            np.asarray(price, np.float64),
            np.asarray(session_open, np.int64),
            np.asarray(session_close, np.int64),
            np.asarray(session_rv, np.float64),
            np.asarray(record_rv, np.float64),
            st["open"],
            st["done"],
            st["last_px"],
            st["last_ts"],
            st["last_rv"],
            st["close_px"],
            closed,
            ret,
            rv,
            c_ts,
            c_px,
            partial,
        )
        return BarOutput(closed, ret, rv, c_ts, c_px, partial)

    def update_from(
        self,
        slots: np.ndarray,
        ts: np.ndarray,
        price: np.ndarray,
        sessions: SessionOutput,
        record_rv: np.ndarray | None = None,
    ) -> BarOutput:
        """:meth:`update` with the session columns of the tracker's output for these ticks."""
        assert sessions.session_open is not None and sessions.session_close is not None
        assert sessions.session_rv is not None
        return self.update(
            slots,
            ts,
            price,
            sessions.session_open,
            sessions.session_close,
            sessions.session_rv,
            record_rv,
        )

    def judge(
        self,
        slots: np.ndarray,
        bars: BarOutput,
        var: np.ndarray,
        es: np.ndarray,
        sigma: np.ndarray,
    ) -> IntradayOutput:
        """Judge every tick of the batch against the VaR published at its symbol's last close.

        ``var[row, level]``, ``es[row]`` and ``sigma[row]`` are the published forecasts
        made at the batch's closes, one row per ``True`` in ``bars.closed`` (in order);
        they become the symbol's published values from that tick on (the closing tick
        itself is judged against them, with a ``session_return`` of its new session).
        """
        slots = np.asarray(slots, np.int64)
        m = slots.size
        row = np.cumsum(bars.closed) - 1
        st = self.state
        out_var = np.empty((m, self.n_levels))
        breach = np.zeros((m, self.n_levels), np.bool_)
        _judge(
            slots,
            bars.closed,
            row,
            bars.session_return,
            np.ascontiguousarray(var, np.float64).reshape(-1, self.n_levels),
            np.asarray(es, np.float64),
            np.asarray(sigma, np.float64),
            st["var"],
            st["es"],
            st["sigma"],
            out_var,
            breach,
        )
        return IntradayOutput(slots, bars.session_return, out_var, breach)

    def published(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(var[slot, level], es, sigma)`` published at each symbol's last close."""
        st = self.state
        return st["var"][slots].copy(), st["es"][slots].copy(), st["sigma"][slots].copy()
