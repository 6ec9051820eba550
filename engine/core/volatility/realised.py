"""Realised variance per trading session, computed from intraday ticks.

For one symbol and one session ``d`` with ticks at prices ``p_0, ..., p_n`` inside it
(time order), the intraday log returns are ``r_i = log p_i - log p_{i-1}`` and

    RV_d = sum_i r_i^2                          (decimal^2, the session's realised variance)

Rules (the same for every calendar):

* **Sessions** are ``[open, close]`` intervals in epoch milliseconds, passed in as arrays
  (:class:`Sessions`; the engine builds them from ``exchange-calendars`` outside the core:
  24/7 and 24/5 are whole UTC days, an exchange code its trading hours). A tick at a close
  that is also the next session's open belongs to the next session. Ticks outside every
  session (pre- and post-market prints, holidays) are in no session's RV; they are counted
  (:attr:`SessionRV.outside`), and the price move over them is part of the gap below.
* **The gap is not in RV.** The log return from a session's last tick to the next session's
  first tick (overnight, weekend, the step across midnight on a 24/7 feed) is
  :attr:`SessionRV.gap`, kept apart from ``RV_d``.
* **Close-to-close.** The session-level models (HAR-RV, the deep models) forecast the
  variance of the *close-to-close* return ``R_d = gap_d + sum_i r_i`` (last tick to last
  tick), which is what VaR is judged against. They are fed

      RV_whole_d = gap_d^2 + RV_d

  the "RV plus squared overnight return" estimator of Hansen and Lunde (2005), "A Realized
  Variance for the Whole Day Based on Intermittent High-Frequency Data", *Journal of
  Financial Econometrics* 3(4), 525-554: with martingale-difference returns the cross terms
  of ``R_d^2`` have zero mean, so ``E[RV_whole_d] = E[R_d^2]`` exactly, with no parameter.
  Their scaled alternative ``c * RV_d`` (``c`` the ratio of mean ``R_d^2`` to mean ``RV_d``)
  is less noisy but estimates ``c`` over the whole sample, which a causal stream cannot.
* **Sparse sessions.** A session with fewer than ``min_returns`` intraday returns (default
  10) has ``RV_d = NaN`` (reason ``too_few_returns``): a handful of squared returns is not a
  variance measurement. The first session of a symbol has ``RV_whole_d = NaN`` (reason
  ``no_previous_close``): its close-to-close return does not exist. HAR-RV and the deep
  models skip a NaN (the session leaves their state and forecast unchanged, and HAR's
  weekly and monthly means run over the last 5 and 22 sessions *with* a value).
* **Stale prices count.** Repeated (constant) prices give zero returns, which are returns:
  they count towards ``min_returns`` and add zero to ``RV_d``.

Everything about a session uses the ticks up to and including its last one (causal); the
result row of a session is known at its last tick.

:func:`realised_variance` is the batch formula of these rules, vectorised over a whole
table. The stream and the offline path run the online accumulator of
:mod:`engine.core.volatility.session_rv` instead (the offline path replays it), which the
tests hold equal to this formula session by session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

#: Why a session's ``rv_whole`` is NaN; index 0 is a value.
RV_REASONS: Final = ("ok", "too_few_returns", "no_previous_close")
MIN_RETURNS: Final = 10


@dataclass(frozen=True, slots=True)
class Sessions:
    """Trading sessions ``[opens[k], closes[k]]``, epoch ms (UTC), sorted and not overlapping.

    >>> Sessions(np.array([0, 100]), np.array([50, 150])).size
    2
    """

    opens: np.ndarray
    closes: np.ndarray

    def __post_init__(self) -> None:
        opens = np.asarray(self.opens, dtype=np.int64)
        closes = np.asarray(self.closes, dtype=np.int64)
        if opens.ndim != 1 or opens.shape != closes.shape:
            raise ValueError("session opens and closes must be 1-d arrays of the same length")
        if (closes < opens).any():
            raise ValueError("every session must close at or after its open")
        if (opens[1:] < closes[:-1]).any():
            raise ValueError("sessions must be sorted and must not overlap")
        object.__setattr__(self, "opens", opens)
        object.__setattr__(self, "closes", closes)

    @property
    def size(self) -> int:
        return int(self.opens.size)

    def locate(self, ts: np.ndarray) -> np.ndarray:
        """The session index of each timestamp (epoch ms), ``-1`` outside every session."""
        ts = np.asarray(ts, dtype=np.int64)
        k = np.searchsorted(self.opens, ts, side="right") - 1
        inside = k >= 0
        inside[inside] = ts[inside] <= self.closes[k[inside]]
        return np.where(inside, k, -1)


@dataclass(frozen=True, slots=True)
class SessionRV:
    """One row per (symbol, session) with at least one tick; symbols in first-seen order,
    sessions in time order within a symbol.

    ``close_ts``/``close_price`` are the session's last tick (the row a session-level
    model is stepped on); ``rv`` and ``rv_whole`` are decimal^2, ``gap`` a log return.
    """

    symbol: np.ndarray
    session: np.ndarray
    open_ts: np.ndarray
    close_ts: np.ndarray
    close_price: np.ndarray
    n_returns: np.ndarray
    rv: np.ndarray
    gap: np.ndarray
    rv_whole: np.ndarray
    reason: np.ndarray
    """Index into :data:`RV_REASONS` of why ``rv_whole`` is NaN (0: it is not)."""
    outside: int
    """Ticks left out: outside every session."""

    def __len__(self) -> int:
        return int(self.session.size)

    def reasons(self) -> dict[str, int]:
        """How many sessions have no ``rv_whole``, by reason."""
        counts = np.bincount(self.reason, minlength=len(RV_REASONS))
        return {RV_REASONS[i]: int(c) for i, c in enumerate(counts) if i and c}


def realised_variance(
    symbols: np.ndarray,
    ts: np.ndarray,
    price: np.ndarray,
    sessions: Sessions,
    *,
    min_returns: int = MIN_RETURNS,
) -> SessionRV:
    """Per-session realised variance of every symbol's ticks (the rules in the module docstring).

    Parameters
    ----------
    symbols : array
        Each tick's symbol (any hashable values).
    ts : ndarray of int64
        Event time, epoch ms (UTC); any order (ticks are ordered by time per symbol, ties
        in input order).
    price : ndarray of float64
        Positive prices.
    sessions : Sessions
        The calendar's sessions covering the ticks.
    min_returns : int
        Fewest intraday returns for a session to have a realised variance.

    Examples
    --------
    >>> s = Sessions(np.array([0, 1000]), np.array([500, 1500]))
    >>> p = np.exp([0.0, 0.01, -0.01, 0.02, 0.02, 0.05])
    >>> out = realised_variance(np.array(["A"] * 6), np.array([0, 100, 200, 1000, 1100, 1200]), p, s, min_returns=2)
    >>> np.round(out.rv, 6).tolist(), np.round(out.gap, 6).tolist(), np.round(out.rv_whole, 6).tolist()
    ([0.0005, 0.0009], [nan, 0.03], [nan, 0.0018])
    """
    if min_returns < 1:
        raise ValueError(f"min_returns must be at least 1, got {min_returns}")
    symbols, ts, price = tick_columns(symbols, ts, price)
    where = sessions.locate(ts)
    keep = where >= 0
    outside = int(ts.size - keep.sum())
    _, first_seen, code = np.unique(symbols, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first_seen, kind="stable"), kind="stable")
    code = rank[code.reshape(-1)]
    idx = np.flatnonzero(keep)
    order = idx[np.lexsort((ts[idx], code[idx]))]
    sym, sess, t, px = code[order], where[order], ts[order], price[order]
    logp = np.log(px)
    n = order.size
    start = np.ones(n, dtype=bool)
    start[1:] = (sym[1:] != sym[:-1]) | (sess[1:] != sess[:-1])
    group = np.cumsum(start) - 1
    starts = np.flatnonzero(start)
    ends = np.append(starts[1:], n) - 1
    inner = ~start  # a tick that is not its session's first: it ends an intraday return
    r = np.zeros(n)
    r[1:] = logp[1:] - logp[:-1]
    g = starts.size
    count = np.bincount(group[inner], minlength=g)
    rv = np.bincount(group[inner], weights=r[inner] ** 2, minlength=g)
    rv = np.where(count >= min_returns, rv, np.nan)
    first_of_symbol = np.ones(g, dtype=bool)
    first_of_symbol[1:] = sym[starts[1:]] != sym[starts[:-1]]
    gap = np.full(g, np.nan)
    later = ~first_of_symbol
    gap[later] = logp[starts[later]] - logp[ends[:-1][later[1:]]]
    reason = np.zeros(g, dtype=np.int64)
    reason[np.isnan(rv)] = RV_REASONS.index("too_few_returns")
    reason[(reason == 0) & first_of_symbol] = RV_REASONS.index("no_previous_close")
    rv_whole = np.where(reason == 0, rv + gap**2, np.nan)
    names = symbols[order[starts]]
    return SessionRV(
        symbol=names,
        session=sess[starts],
        open_ts=t[starts],
        close_ts=t[ends],
        close_price=px[ends],
        n_returns=count,
        rv=rv,
        gap=gap,
        rv_whole=rv_whole,
        reason=reason,
        outside=outside,
    )


def tick_columns(
    symbols: object, ts: object, price: object
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ticks as three 1-d arrays of one length: symbols, epoch milliseconds (int64) and
    prices (float64). Raises ``ValueError`` on different lengths or a price that is not
    finite and positive."""
    symbols = np.asarray(symbols)
    ts = np.asarray(ts, dtype=np.int64)
    price = np.asarray(price, dtype=np.float64)
    if not (symbols.shape == ts.shape == price.shape) or ts.ndim != 1:
        raise ValueError("symbols, ts and price must be 1-d arrays of the same length")
    bad = np.flatnonzero(~(np.isfinite(price) & (price > 0)))
    if bad.size:
        raise ValueError(f"price must be finite and positive; row {bad[0]} has {price[bad[0]]}")
    return symbols, ts, price
