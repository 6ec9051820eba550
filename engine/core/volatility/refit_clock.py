"""When a refitted model requests a fit and when the fit takes effect, return by return.

The rules of :class:`~engine.core.volatility.fitting.RefitSchedule`, as compiled helpers
shared by the models' kernels and the book's plan of a micro-batch, so that the book
splits batches exactly where the models will request and switch.

Each return of a slot carries a *clock* value ``c``: its session ordinal (the number of
trading sessions the symbol has opened, from
:class:`~engine.core.volatility.session_rv.SessionRVTracker`) on the ``sessions`` clock,
or its return count ``n`` on the ``returns`` clock. A return is a clock *tick* when its
clock value differs from the slot's previous return's: the first return of a session
(every return, on the returns clock). Per slot the state is ``req`` (the return count of
the pending request, -1 for none), ``rq_clock`` (the clock value of the latest request,
-1 before the first) and ``rclock`` (the clock value of the latest return).

* **Request**, with no fit pending: the first at the ``first``-th return (wherever it
  falls in its session); later ones at a tick at least ``every`` clock units after the
  latest request (on the sessions clock: ``every`` sessions have closed since).
* **Switch** (the fit takes effect): at the first tick at least ``delay`` clock units
  after its request, i.e. at the first return of session ``d + delay`` for a fit
  requested in session ``d``, or of a later session if the symbol did not trade in it.
  The first fit, which gives the model its first parameters, switches ``delay`` returns
  after its request on either clock.

On a daily-close feed every return opens a session, ``c`` grows by one per return, and
both clocks give the same requests and switches as the returns schedule of
:meth:`RefitSchedule.requests_at` (``n = first + k * every``, switch at ``req + delay``).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, inline="always")
def advance_clock(c, rclock, s):  # pragma: no cover - compiled
    """Record a return of slot ``s`` at clock value ``c``; whether it is a clock tick."""
    tick = c != rclock[s]
    rclock[s] = c
    return tick


@numba.njit(cache=True, nogil=True, inline="always")
def switches_at(n, c, tick, req, rq_clock, delay, first):  # pragma: no cover - compiled
    """Whether the slot's pending fit takes effect at this return (``n``-th, clock ``c``).

    The first fit (requested at the ``first``-th return) is the model's first parameters:
    it takes effect ``delay`` *returns* after its request on either clock, so a symbol on
    an intraday feed is not left without its model for ``delay`` sessions.
    """
    if req < 0 or n <= req:
        return False
    if req == first:
        return n >= req + delay
    return tick and c >= rq_clock + delay


@numba.njit(cache=True, nogil=True, inline="always")
def requests_at(n, c, tick, req, rq_clock, first, every):  # pragma: no cover - compiled
    """Whether the slot requests a fit at this return (no fit may be pending)."""
    if req >= 0:
        return False
    if rq_clock < 0:
        return n >= first
    return tick and c - rq_clock >= every


@numba.njit(cache=True, nogil=True)
def plan_refits(
    slots, valid, clock, by_returns, nobs, req, rq_clock, rclock, first, every, delay, reach
):  # pragma: no cover - compiled
    """Where a batch's requests and switches fall, without changing the model's state.

    Returns ``(switch, end)`` per row: ``switch`` marks the rows at which a pending fit
    takes effect; ``end`` is, for a row that requests a fit, the row by which its job
    must be built and (delay > 0) installed (the switch, or the ``reach``-th return after
    the request if that comes first; the request itself when ``delay`` is 0), -1 when
    that lies beyond the batch, and -2 on rows that request nothing.
    """
    m = slots.shape[0]
    n_ = nobs.copy()
    req_ = req.copy()
    rqc = rq_clock.copy()
    rc = rclock.copy()
    open_row = np.full(nobs.shape[0], -1, np.int64)
    switch = np.zeros(m, np.bool_)
    end = np.full(m, -2, np.int64)
    for i in range(m):
        if not valid[i]:
            continue
        s = slots[i]
        n = n_[s] + 1
        n_[s] = n
        c = n if by_returns else clock[i]
        tick = advance_clock(c, rc, s)
        if req_[s] >= 0 and n > req_[s]:
            j = open_row[s]
            if switches_at(n, c, tick, req_[s], rqc[s], delay, first):
                switch[i] = True
                req_[s] = -1
                if j >= 0:
                    end[j] = i
                    open_row[s] = -1
            elif j >= 0 and n - req_[s] >= reach:
                end[j] = i
                open_row[s] = -1
        if requests_at(n, c, tick, req_[s], rqc[s], first, every):
            rqc[s] = c
            if delay == 0:
                end[i] = i
            else:
                req_[s] = n
                end[i] = -1
                open_row[s] = i
    return switch, end
