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

Currencies (optional, ``base_currency`` set): every symbol's price is in the currency its
reference data gives (:meth:`PortfolioBook.set_reference`; a symbol without one is taken
as quoted in the base currency), and exposures, value, VaR and ES are in the base
currency. A price in another currency is converted at the close through the FX pair
symbols of the book (:mod:`engine.core.fx`: direct, inverse or crossed through USD),
which are ordinary price series with their own grid returns. FX is a risk factor: the
base-currency log return of a holding quoted in ``C`` is its local log return plus the
rate's, ``r_i + sum_k e_k r_k`` over the route's pairs ``k`` (exponent ``e_k`` = +1 or
-1), so its P&L ``x_i (r_i + sum_k e_k r_k)`` is linear in the *factor* exposures: the
holding's own symbol carries ``x_i`` and each pair of its route ``e_k x_i``. VaR, ES and
the Euler allocation are taken over those factor exposures and the same EWMA covariance,
so an FX pair appears as a component of every portfolio exposed to it (a EUR asset with
a flat local price still has the EURUSD pair's VaR). A currency without a route, or
whose pairs have no price yet, is a *missing rate*: the portfolio's allocations at that
close carry ``missing_fx`` and NaN value, VaR and ES; no rate is ever assumed to be 1.

Calendars: a symbol marked ``continuous`` (a 24/7 calendar, crypto) does not make grid
points of its own while the book has session symbols (24/5 FX, exchange sessions): a
bucket holding only continuous ticks (a weekend, an exchange holiday without FX) does not
close, so the continuous symbol's move over it accumulates into the return of the next
bucket that closes, the next common date. A book of continuous symbols only closes every
non-empty bucket.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.core.dists import normal_factors, student_factors
from engine.core.fx import route
from engine.core.riskmetrics import DEFAULT_LAMBDA


@dataclass(frozen=True)
class Allocation:
    """One portfolio's risk at one close and one confidence level (currency units).

    ``marginal`` is dVaR/dx per unit of exposure (dimensionless); ``component`` sums to
    ``var`` and ``es_component`` to ``es``. Arrays follow ``symbols``. ``pnl_before`` is
    the realised linear P&L ``sum_i x_i r_i`` of the interval that ended at this close, on
    the exposures of the previous close (NaN at the first): what the previous close's
    VaR forecast, for backtesting. In a book with a base currency, ``symbols`` are the
    risk factors (held symbols and the FX pairs they are converted through) and
    ``exposure`` the base-currency exposure to each; ``value`` is the holdings' sum.
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
    currency: str | None = None
    """The base currency of every amount (None: a book without currencies)."""
    missing_fx: tuple[str, ...] = ()
    """Currencies of held symbols without a rate at this close (then NaN figures)."""


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
        base_currency: str | None = None,
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
        self.base_currency = base_currency
        """Currency of every amount, or None: prices taken as they are (no conversion)."""
        self.currency: dict[str, str] = {}
        """Quote currency of each symbol with reference data."""
        self.pairs: dict[str, tuple[str, str]] = {}
        """FX pair symbols: ``(foreign, quote)``; the price is quote units per foreign unit."""
        self.continuous: set[str] = set()
        """Symbols on a 24/7 calendar (they make no grid point of their own)."""
        self._session_tick = False

    # ---- input -------------------------------------------------------------------------

    def set_position(self, portfolio: str, symbol: str, quantity: float, ts_ms: int) -> None:
        """Hold ``quantity`` of ``symbol`` in ``portfolio`` from the first close at or after ``ts_ms``."""
        if not np.isfinite(quantity):
            raise ValueError(f"position {portfolio}/{symbol}: quantity must be finite")
        self.pending.append((int(ts_ms), portfolio, symbol, float(quantity)))
        self._slot(symbol)

    def set_reference(
        self,
        symbol: str,
        *,
        currency: str,
        pair: tuple[str, str] | None = None,
        continuous: bool = False,
    ) -> None:
        """What the book needs to know of ``symbol``: its price currency, whether it is an
        FX pair ``(foreign, quote)``, and whether it trades around the clock (24/7).

        Replaces what was known before; takes effect from the next close.
        """
        self.currency[symbol] = currency
        if pair is None:
            self.pairs.pop(symbol, None)
        else:
            self.pairs[symbol] = pair
        if continuous:
            self.continuous.add(symbol)
        else:
            self.continuous.discard(symbol)

    def drop_reference(self, symbol: str) -> None:
        """Forget ``symbol``'s reference data (withdrawn): base currency, no pair, sessions."""
        self.currency.pop(symbol, None)
        self.pairs.pop(symbol, None)
        self.continuous.discard(symbol)

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
                if self.bucket_ts is not None and self._clocked():
                    out.extend(self._close())
                self.bucket = int(buckets[stop])
            start = stop
        return out

    def flush(self) -> list[Allocation]:
        """Close the open bucket now (an offline file has ended; a stream never calls this).

        A bucket that is not a grid point (only 24/7 ticks since the last session close)
        stays open: its moves belong to a next common date the file does not have.
        """
        if self.bucket is None or self.bucket_ts is None or not self._clocked():
            return []
        out = self._close()
        self.bucket = None
        return out

    def _clocked(self) -> bool:
        """Whether the open bucket is a grid point: it holds a session tick, or the book
        has no session symbol with a price (only 24/7 symbols, or no calendars at all)."""
        if self._session_tick or not self.continuous:
            return True
        return not any(
            np.isfinite(self.last_price[i])
            for s, i in self.index.items()
            if s not in self.continuous
        )

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
            "base_currency": self.base_currency,
            "currency": self.currency,
            "pairs": {s: list(p) for s, p in self.pairs.items()},
            "continuous": sorted(self.continuous),
            "session_tick": self._session_tick,
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
            base_currency=state.get("base_currency"),
        )
        book.currency = dict(state.get("currency", {}))
        book.pairs = {s: (p[0], p[1]) for s, p in state.get("pairs", {}).items()}
        book.continuous = set(state.get("continuous", ()))
        book._session_tick = bool(state.get("session_tick", False))
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
        if not self._session_tick:
            self._session_tick = not self.continuous or any(
                self.symbols[i] not in self.continuous for i in slot.tolist()
            )
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
        self._session_tick = False
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
            if self.base_currency is None:
                slots = np.array([self.index[s] for s in names])
                if (self.cov.count[slots] < self.min_obs).any():
                    continue
                exposure = np.array([held[s] for s in names]) * self.close_price[slots]
                value = float(exposure.sum())
            else:
                factors = self._factor_exposures(held, names)
                if isinstance(factors, tuple):  # missing rates: reported, not skipped
                    out += self._missing(ts, portfolio, factors)
                    continue
                names = tuple(sorted(factors))
                slots = np.array([self.index[s] for s in names])
                if (self.cov.count[slots] < self.min_obs).any():
                    continue
                exposure = np.array([factors[s] for s in names])
                value = factors.value
            cov = self.cov.matrix() if cov is None else cov
            sub = cov[np.ix_(slots, slots)]
            pnl = self._pnl(portfolio)
            self.exposures[portfolio] = dict(zip(names, exposure.tolist(), strict=True))
            for level, (q, e) in zip(self.levels, self.factors, strict=True):
                var, es, marginal, component, es_component = allocate(sub, exposure, q, e)
                out.append(
                    Allocation(
                        ts,
                        portfolio,
                        level,
                        value,
                        var,
                        es,
                        names,
                        exposure,
                        marginal,
                        component,
                        es_component,
                        pnl,
                        self.base_currency,
                    )
                )
        return out

    def _pnl(self, portfolio: str) -> float:
        """The realised linear P&L of the interval that just ended, on the last exposures."""
        previous = self.exposures.get(portfolio)
        if previous is None:
            return float("nan")
        return sum(x * self._returns[self.index[s]] for s, x in previous.items())

    def _factor_exposures(
        self, held: dict[str, float], names: tuple[str, ...]
    ) -> _Factors | tuple[str, ...]:
        """Base-currency exposure to each risk factor (own symbols and FX pairs), or the
        currencies without a rate (sorted) when one of the held symbols has none."""
        assert self.base_currency is not None
        factors = _Factors()
        missing: set[str] = set()
        total = []
        for symbol in names:
            currency = self.currency.get(symbol, self.base_currency)
            legs = route(currency, self.base_currency, self.pairs)
            if legs is None:
                missing.add(currency)
                continue
            fx = 1.0
            for pair, exponent in legs:
                slot = self.index.get(pair)
                price = np.nan if slot is None else self.close_price[slot]
                if not (np.isfinite(price) and price > 0.0):
                    missing.add(currency)
                    break
                fx *= float(price) ** exponent
            else:
                x = held[symbol] * float(self.close_price[self.index[symbol]]) * fx
                total.append(x)
                factors[symbol] = factors.get(symbol, 0.0) + x
                for pair, exponent in legs:
                    factors[pair] = factors.get(pair, 0.0) + exponent * x
        if missing:
            return tuple(sorted(missing))
        factors.value = float(np.sum(total))
        return factors

    def _missing(self, ts: int, portfolio: str, currencies: tuple[str, ...]) -> list[Allocation]:
        """The explicit missing-rate state: NaN figures, the currencies named, no exposures
        kept (the next close's realised P&L is unknown too)."""
        pnl = self._pnl(portfolio)
        self.exposures.pop(portfolio, None)
        nan, empty = float("nan"), np.zeros(0)
        return [
            Allocation(
                ts,
                portfolio,
                level,
                nan,
                nan,
                nan,
                (),
                empty,
                empty,
                empty,
                empty,
                pnl,
                self.base_currency,
                currencies,
            )
            for level in self.levels
        ]


class _Factors(dict[str, float]):
    """Factor exposures (base currency) and the portfolio's value (sum of holdings)."""

    value: float = 0.0
