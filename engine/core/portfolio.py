"""Portfolio risk: EWMA covariance on an event-time grid, portfolio VaR/ES, Euler allocation.

Ticks of different symbols arrive at different times, and a covariance needs returns over
the same intervals. :class:`PortfolioBook` therefore samples prices on a grid: event time
is cut into buckets of ``interval_ms`` (a day for daily closes, a minute for intraday
feeds); when the first tick of a later bucket arrives, the open bucket *closes*, and each
symbol's grid return is the log of its last price at that close over its last price at
the previous close (previous-tick sampling: a symbol without a tick in the bucket has
return 0). Empty buckets (weekends, halts) are not grid points. A close is stamped with
the timestamp of the last tick in its bucket, so every output is causal: it uses ticks up
to and including that time and forecasts the profit and loss of the next grid interval.

Covariance (RiskMetrics, zero mean): ``C <- lam * C + (1 - lam) * r r'`` at every close,
over every symbol seen so far (a symbol that appears later has had returns 0 before, so
``C`` stays positive semi-definite). The early bias of the zero start is removed by
``D C D`` with ``d_i = 1 / sqrt(1 - lam ** n_i)``, ``n_i`` the symbol's number of grid
returns: exactly the ``adjust=True`` weighting of an exponentially weighted mean when all
symbols start together, and still positive semi-definite when they do not.

Positions are quantities (units held, negative for short) per portfolio and symbol; a
position update replaces the previous quantity (idempotent under redelivery) and takes
effect at the first close at or after its timestamp. Exposures are ``quantity * price``
at the close, in the price's currency, and so are VaR and ES: delta-normal (or
Student-t) risk of the linear P&L ``sum_i x_i r_i`` over the next interval::

    sigma_p = sqrt(x' C x),   VaR = q * sigma_p,   ES = e * sigma_p

with ``(q, e)`` the standardised distribution's factors (:mod:`engine.core.dists`).
Marginal VaR is the gradient ``dVaR/dx_i = q (C x)_i / sigma_p`` (VaR per unit of extra
exposure) and component VaR ``x_i * dVaR/dx_i``. VaR is homogeneous of degree 1 in ``x``,
so by Euler's theorem the components sum to the total exactly (up to rounding), for VaR
and ES alike.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.core.dists import normal_factors, student_factors
from engine.core.riskmetrics import DEFAULT_LAMBDA


@dataclass(frozen=True)
class Allocation:
    """One portfolio's risk at one close and one confidence level (currency units).

    ``marginal`` is dVaR/dx per unit of exposure (dimensionless); ``component`` sums to
    ``var`` and ``es_component`` to ``es``. Arrays follow ``symbols``. ``pnl_before`` is
    the realised linear P&L ``sum_i x_i r_i`` of the interval that ended at this close, on
    the exposures of the previous close (NaN at the first): what the previous close's
    VaR forecast, for backtesting.
    """

    ts_ms: int
    portfolio: str
    level: float
    value: float
    var: float
    es: float
    symbols: tuple[str, ...]
    exposure: np.ndarray
    marginal: np.ndarray
    component: np.ndarray
    es_component: np.ndarray
    pnl_before: float = float("nan")


def _pack(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _unpack(text: str, dtype: type) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=dtype).copy()


def allocate(
    cov: np.ndarray, exposure: np.ndarray, var_factor: float, es_factor: float
) -> tuple[float, float, np.ndarray, np.ndarray, np.ndarray]:
    """``(var, es, marginal, component, es_component)`` of exposures under covariance ``cov``.

    A flat book (``sigma_p == 0``) has zero risk and zero marginals.

    >>> cov = np.array([[0.04, 0.0], [0.0, 0.01]])
    >>> var, es, marginal, component, _ = allocate(cov, np.array([1.0, 2.0]), 2.0, 2.5)
    >>> round(var, 6), [round(float(c), 6) for c in component], round(float(component.sum()), 6)
    (0.565685, [0.282843, 0.282843], 0.565685)
    """
    cx = cov @ exposure
    variance = float(exposure @ cx)
    sigma = float(np.sqrt(max(variance, 0.0)))
    if sigma == 0.0:
        zero = np.zeros_like(exposure)
        return 0.0, 0.0, zero, zero.copy(), zero.copy()
    marginal = var_factor * cx / sigma
    component = exposure * marginal
    es_component = component * (es_factor / var_factor)
    return var_factor * sigma, es_factor * sigma, marginal, component, es_component


class EwmaCovariance:
    """RiskMetrics covariance of grid log returns over a growing set of symbols."""

    def __init__(self, lam: float = DEFAULT_LAMBDA) -> None:
        if not 0.0 < lam < 1.0:
            raise ValueError(f"lambda must be in (0, 1), got {lam}")
        self.lam = lam
        self.raw = np.zeros((0, 0))
        self.count = np.zeros(0, dtype=np.int64)

    def grow(self, n: int) -> None:
        """Make room for ``n`` symbols (new ones start with zero covariance and no returns)."""
        old = len(self.count)
        if n <= old:
            return
        raw = np.zeros((n, n))
        raw[:old, :old] = self.raw
        self.raw = raw
        self.count = np.concatenate([self.count, np.zeros(n - old, dtype=np.int64)])

    def update(self, returns: np.ndarray, observed: np.ndarray) -> None:
        """Fold in one grid step: ``returns`` (0 where not ``observed``) of every symbol."""
        self.raw *= self.lam
        self.raw += (1.0 - self.lam) * np.outer(returns, returns)
        self.count += observed

    def matrix(self) -> np.ndarray:
        """The bias-corrected covariance ``D C D`` (NaN rows for symbols without a return)."""
        with np.errstate(divide="ignore"):
            d = 1.0 / np.sqrt(1.0 - self.lam ** self.count.astype(float))
        d[self.count == 0] = np.nan
        return self.raw * np.outer(d, d)


class PortfolioBook:
    """Grid prices, EWMA covariance, positions and their risk; pure, no I/O.

    Feed ticks with :meth:`on_ticks` and positions with :meth:`set_position`, in any
    interleaving; each grid close returns the :class:`Allocation` of every portfolio with
    a non-zero position, at every level, once each of its symbols has ``min_obs`` grid
    returns. :meth:`flush` closes the open bucket (end of a file).
    """

    def __init__(
        self,
        *,
        interval_ms: int,
        lam: float = DEFAULT_LAMBDA,
        levels: Sequence[float] = (0.95, 0.99),
        min_obs: int = 20,
        nu: float | None = None,
    ) -> None:
        if interval_ms <= 0:
            raise ValueError(f"interval_ms must be positive, got {interval_ms}")
        if nu is not None and nu <= 2.0:
            raise ValueError(f"Student-t needs nu > 2 for a variance, got {nu}")
        self.interval_ms = int(interval_ms)
        self.levels = tuple(levels)
        self.min_obs = int(min_obs)
        self.nu = nu
        self.factors = [
            normal_factors(level) if nu is None else student_factors(level, nu)
            for level in self.levels
        ]
        self.cov = EwmaCovariance(lam)
        self.symbols: list[str] = []
        self.index: dict[str, int] = {}
        self.last_price = np.zeros(0)
        self.last_ts = np.zeros(0, dtype=np.int64)
        self.close_price = np.zeros(0)
        self.bucket: int | None = None
        self.bucket_ts: int | None = None
        self.last_close_ms: int | None = None
        """Timestamp of the latest grid close (None before the first)."""
        self.positions: dict[str, dict[str, float]] = {}
        self.pending: list[tuple[int, str, str, float]] = []
        self.exposures: dict[str, dict[str, float]] = {}
        self._returns = np.zeros(0)

    # ---- input -------------------------------------------------------------------------

    def set_position(self, portfolio: str, symbol: str, quantity: float, ts_ms: int) -> None:
        """Hold ``quantity`` of ``symbol`` in ``portfolio`` from the first close at or after ``ts_ms``."""
        if not np.isfinite(quantity):
            raise ValueError(f"position {portfolio}/{symbol}: quantity must be finite")
        self.pending.append((int(ts_ms), portfolio, symbol, float(quantity)))
        self._slot(symbol)

    def on_ticks(
        self, symbols: Iterable[str], ts_ms: np.ndarray, prices: np.ndarray
    ) -> list[Allocation]:
        """Accepted ticks in arrival order (each symbol's in time order); closes as they happen.

        A tick from an earlier bucket than the open one (another symbol's clock ran ahead)
        counts in the open bucket; a tick older than its symbol's last is ignored (the
        sequencer refuses those before they get here).
        """
        out: list[Allocation] = []
        slots = np.fromiter((self._slot(s) for s in symbols), dtype=np.int64, count=len(ts_ms))
        buckets = np.asarray(ts_ms, dtype=np.int64) // self.interval_ms
        start = 0
        n = len(slots)
        while start < n:
            if self.bucket is None:
                self.bucket = int(buckets[start])
            # the run of ticks that stays in the open bucket (or earlier buckets)
            later = np.flatnonzero(buckets[start:] > self.bucket)
            stop = start + int(later[0]) if len(later) else n
            self._apply(slots[start:stop], ts_ms[start:stop], prices[start:stop])
            if stop < n:
                if self.bucket_ts is not None:
                    out.extend(self._close())
                self.bucket = int(buckets[stop])
            start = stop
        return out

    def flush(self) -> list[Allocation]:
        """Close the open bucket now (an offline file has ended; a stream never calls this)."""
        if self.bucket is None or self.bucket_ts is None:
            return []
        out = self._close()
        self.bucket = None
        return out

    # ---- one portfolio's state, to move it between books ------------------------------

    def portfolio_state(self, portfolio: str) -> dict[str, Any]:
        """What the book keeps about one portfolio: held and pending positions, last exposures.

        Together with a book at the same grid close (the market), it continues the
        portfolio exactly: :meth:`put_portfolio` of it into such a book.
        """
        return {
            "positions": dict(self.positions.get(portfolio, {})),
            "pending": [[t, s, q] for t, p, s, q in self.pending if p == portfolio],
            "exposures": self.exposures.get(portfolio),
        }

    def drop_portfolio(self, portfolio: str) -> None:
        """Forget a portfolio (it moved to another book); the market is untouched."""
        self.positions.pop(portfolio, None)
        self.exposures.pop(portfolio, None)
        self.pending = [p for p in self.pending if p[1] != portfolio]

    def put_portfolio(self, portfolio: str, state: dict[str, Any]) -> None:
        """Take over a portfolio from :meth:`portfolio_state` (replacing what this book had)."""
        self.drop_portfolio(portfolio)
        for symbol in state["positions"]:
            self._slot(symbol)
        if state["positions"]:
            self.positions[portfolio] = {s: float(q) for s, q in state["positions"].items()}
        for t, symbol, quantity in state["pending"]:
            self.set_position(portfolio, symbol, quantity, t)
        if state["exposures"] is not None:
            self.exposures[portfolio] = dict(state["exposures"])

    # ---- persistence -------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Everything the book knows, JSON-safe and bit-exact (arrays as raw bytes, base64)."""
        return {
            "version": 1,
            "interval_ms": self.interval_ms,
            "lam": self.cov.lam,
            "levels": list(self.levels),
            "min_obs": self.min_obs,
            "nu": self.nu,
            "symbols": self.symbols,
            "raw": _pack(self.cov.raw),
            "count": _pack(self.cov.count),
            "last_price": _pack(self.last_price),
            "last_ts": _pack(self.last_ts),
            "close_price": _pack(self.close_price),
            "returns": _pack(self._returns),
            "bucket": self.bucket,
            "bucket_ts": self.bucket_ts,
            "last_close_ms": self.last_close_ms,
            "positions": self.positions,
            "pending": [list(p) for p in self.pending],
            "exposures": self.exposures,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PortfolioBook:
        """The book :meth:`to_state` saved, continuing exactly where it stopped."""
        if state.get("version") != 1:
            raise ValueError(f"unknown portfolio state version {state.get('version')!r}")
        book = cls(
            interval_ms=state["interval_ms"],
            lam=state["lam"],
            levels=state["levels"],
            min_obs=state["min_obs"],
            nu=state["nu"],
        )
        n = len(state["symbols"])
        book.symbols = list(state["symbols"])
        book.index = {s: i for i, s in enumerate(book.symbols)}
        book.cov.raw = _unpack(state["raw"], np.float64).reshape(n, n)
        book.cov.count = _unpack(state["count"], np.int64)
        book.last_price = _unpack(state["last_price"], np.float64)
        book.last_ts = _unpack(state["last_ts"], np.int64)
        book.close_price = _unpack(state["close_price"], np.float64)
        book._returns = _unpack(state["returns"], np.float64)
        book.bucket = state["bucket"]
        book.bucket_ts = state["bucket_ts"]
        book.last_close_ms = state.get("last_close_ms")
        book.positions = {k: dict(v) for k, v in state["positions"].items()}
        book.pending = [(int(t), p, s, float(q)) for t, p, s, q in state["pending"]]
        book.exposures = {k: dict(v) for k, v in state["exposures"].items()}
        return book

    # ---- internals ---------------------------------------------------------------------

    def _slot(self, symbol: str) -> int:
        slot = self.index.get(symbol)
        if slot is None:
            slot = self.index[symbol] = len(self.symbols)
            self.symbols.append(symbol)
            n = len(self.symbols)
            self.cov.grow(n)
            self.last_price = np.concatenate([self.last_price, [np.nan]])
            self.last_ts = np.concatenate([self.last_ts, [np.iinfo(np.int64).min]])
            self.close_price = np.concatenate([self.close_price, [np.nan]])
        return slot

    def _apply(self, slots: np.ndarray, ts_ms: np.ndarray, prices: np.ndarray) -> None:
        """Ticks in arrival order: each symbol's last price is its latest tick's.

        Equal to taking the ticks one by one and keeping a tick whose time is not before
        the symbol's last: per symbol that keeps the last-arriving tick of the latest
        time, if that time is not before the symbol's last.
        """
        if not len(slots):
            return
        ts_ms = np.asarray(ts_ms, dtype=np.int64)
        order = np.lexsort((np.arange(len(slots)), ts_ms, slots))  # by slot, time, arrival
        ordered = slots[order]
        ends = np.flatnonzero(np.r_[ordered[1:] != ordered[:-1], True])
        latest = order[ends]  # per symbol: the last-arriving tick of its latest time
        slot, ts = slots[latest], ts_ms[latest]
        kept = ts >= self.last_ts[slot]
        if not kept.any():
            return
        slot, ts = slot[kept], ts[kept]
        self.last_ts[slot] = ts
        self.last_price[slot] = np.asarray(prices)[latest[kept]]
        newest = int(ts.max())
        self.bucket_ts = newest if self.bucket_ts is None else max(self.bucket_ts, newest)

    def _close(self) -> list[Allocation]:
        ts = self.bucket_ts
        assert ts is not None
        priced = np.isfinite(self.last_price)
        had = np.isfinite(self.close_price) & priced
        returns = np.zeros(len(self.symbols))
        returns[had] = np.log(self.last_price[had] / self.close_price[had])
        self.cov.update(returns, had)
        self._returns = returns
        self.close_price[priced] = self.last_price[priced]
        self._apply_positions(ts)
        self.bucket_ts = None
        self.last_close_ms = ts
        return self._allocations(ts)

    def _apply_positions(self, ts: int) -> None:
        due = [p for p in self.pending if p[0] <= ts]
        if not due:
            return
        self.pending = [p for p in self.pending if p[0] > ts]
        for _, portfolio, symbol, quantity in sorted(due, key=lambda p: p[0]):
            book = self.positions.setdefault(portfolio, {})
            if quantity == 0.0:
                book.pop(symbol, None)
            else:
                book[symbol] = quantity

    def _allocations(self, ts: int) -> list[Allocation]:
        out = []
        cov = None
        for portfolio in sorted(self.positions):
            held = self.positions[portfolio]
            if not held:
                continue
            names = tuple(sorted(held))
            slots = np.array([self.index[s] for s in names])
            if (self.cov.count[slots] < self.min_obs).any():
                continue
            cov = self.cov.matrix() if cov is None else cov
            exposure = np.array([held[s] for s in names]) * self.close_price[slots]
            sub = cov[np.ix_(slots, slots)]
            previous = self.exposures.get(portfolio)
            pnl = (
                float("nan")
                if previous is None
                else sum(x * self._returns[self.index[s]] for s, x in previous.items())
            )
            self.exposures[portfolio] = dict(zip(names, exposure.tolist(), strict=True))
            for level, (q, e) in zip(self.levels, self.factors, strict=True):
                var, es, marginal, component, es_component = allocate(sub, exposure, q, e)
                out.append(
                    Allocation(
                        ts,
                        portfolio,
                        level,
                        float(exposure.sum()),
                        var,
                        es,
                        names,
                        exposure,
                        marginal,
                        component,
                        es_component,
                        pnl,
                    )
                )
        return out
