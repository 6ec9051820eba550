r"""Seeded synthetic streams: multi-symbol prices and card transactions.

Both generators are deterministic: the same arguments (seed included) give the same
events, byte for byte, on every run. Randomness is drawn with numpy in vectorised
chunks; events are yielded lazily, so a stream of any length runs in constant memory.

Prices
------
``N`` symbols tick together every ``interval_ms``: one tick per symbol per step, symbols
in order within a step. For symbol ``i`` at step ``t``, in log-return units per step:

.. math::

    r_{i,t} &= \varepsilon_{i,t} + J_{i,t}, \qquad
    \log P_{i,t} = \log P_{i,t-1} + r_{i,t} \\
    \varepsilon_{i,t} &= \sigma_{i,t} z_{i,t}, \qquad
    \sigma^2_{i,t} = \omega_i + \alpha_i \varepsilon^2_{i,t-1} + \beta_i \sigma^2_{i,t-1}
    \quad \text{(GARCH(1,1))} \\
    z_{i,t} &= b_i m_t + \sqrt{1 - b_i^2}\, e_{i,t}, \qquad
    m_t \sim t_{\nu_m},\ e_{i,t} \sim t_{\nu_i} \text{ (standardised to unit variance)} \\
    J_{i,t} &= \sum_{k=1}^{N_{i,t}} s_k \kappa_k \sqrt{\bar h_i}, \qquad
    N_{i,t} \sim \mathrm{Poisson}(\lambda_i),\ P(s_k = -1) = 0.55,\ \kappa_k \sim U(4, 8)

``m_t`` is a market factor common to all symbols, so innovations of symbols ``i`` and
``j`` have correlation ``b_i b_j``. ``\bar h_i = \sigma_{\mathrm{ann},i}^2 \Delta / Y``
is the per-step variance of an annual volatility ``\sigma_{\mathrm{ann},i}`` over a
step of ``\Delta`` seconds (``Y`` = 252 × 6.5 × 3600 s, a year of trading time) and
``\omega_i = \bar h_i (1 - \alpha_i - \beta_i)``, so ``\bar h_i`` is the unconditional
variance of the diffusive part; jumps (not fed back into ``\sigma^2``) add
``\lambda_i E[\kappa^2] \bar h_i`` to it. The recursion starts at
``\sigma^2 = \bar h_i``. Per-symbol parameters are drawn from the seed:
``\sigma_{\mathrm{ann}} \sim U(0.10, 0.60)``, ``\alpha \sim U(0.03, 0.12)``,
``\alpha + \beta \sim U(0.93, 0.99)``, ``\nu_i \sim U(4, 10)``, ``\nu_m = 6``,
``b \sim U(0.3, 0.8)``, ``\lambda \sim U(0.0005, 0.002)`` jumps per step, first price
log-uniform on [10, 500]. Volume is
``V_i (\sigma_{i,t} / \sqrt{\bar h_i}) \exp(u/2 - 1/8)``, ``u \sim N(0, 1)``, rounded to
whole units, with ``V_i`` log-uniform on [100, 10 000]. Prices are rounded to 6
decimals. Drift is zero: log prices are martingales.

Transactions
------------
``C`` customers, each with a rate ``\lambda_c \sim U(0.5, 4)`` transactions per day,
a mean amount ``\mu_c \sim U(5, 150)`` (currency units) and amounts
``\mu_c \exp(s_c u - s_c^2 / 2)`` with ``s_c \sim U(0.3, 0.8)``, ``u \sim N(0, 1)``
(mean ``\mu_c``, rounded to cents, at least 0.01), a preferred hour
``h_c \sim U(8, 21)`` with spread ``d_c \sim U(1, 4)`` hours (time of day
``h_c + d_c u`` modulo 24 h, UTC), ``1 + \mathrm{Poisson}(4)`` usual terminals (2% of
transactions go to a random terminal instead) and a share ``p_c \sim \mathrm{Beta}(1, 4)``
of ``online`` transactions (else ``pos``). The stream covers whole UTC days, enough of
them that ``count`` transactions match the customers' rates, ``count`` split uniformly
over the days; within a day a transaction's customer is drawn in proportion to
``\lambda_c``. Events come out in time order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numba
import numpy as np

from engine.boundary.schemas import PriceTick, Transaction
from engine.boundary.timeutil import now_ms
from engine.errors import InputError

TRADING_YEAR_S = 252 * 6.5 * 3600
"""Seconds in a year of trading time; annual volatilities are per this year."""
DAY_MS = 86_400_000
CHUNK_TICKS = 65_536
"""Ticks (or transactions) drawn per vectorised chunk."""
MARKET_NU = 6.0
JUMP_DOWN_PROB = 0.55


@dataclass(frozen=True, slots=True)
class SymbolParams:
    """Per-symbol model parameters (arrays of length ``N``; see the module docstring)."""

    symbols: tuple[str, ...]
    sigma_ann: np.ndarray
    """Annual volatility of the diffusive part, fraction (0.2 = 20%)."""
    h_bar: np.ndarray
    """Unconditional per-step variance of the diffusive part, log-return units squared."""
    omega: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    nu: np.ndarray
    """Student-t degrees of freedom of the idiosyncratic innovation."""
    loading: np.ndarray
    """Market-factor loading ``b``; innovation correlation of ``i``, ``j`` is ``b_i b_j``."""
    jump_rate: np.ndarray
    """Expected jumps per step."""
    price0: np.ndarray
    base_volume: np.ndarray


@dataclass(frozen=True, slots=True)
class PriceBlock:
    """One vectorised chunk of steps: arrays of shape ``(steps,)`` or ``(steps, N)``.

    ``ts`` is epoch milliseconds; ``log_return`` is ``r`` (from unrounded prices),
    ``sigma`` the conditional standard deviation ``σ_t`` used for the step, ``jump`` the
    jump part ``J`` (0 without a jump); all per step, in log-return units.
    """

    first_step: int
    ts: np.ndarray
    price: np.ndarray
    log_return: np.ndarray
    sigma: np.ndarray
    jump: np.ndarray
    volume: np.ndarray


@numba.njit(cache=True, nogil=True)
def _garch(z, jumps, omega, alpha, beta, h, eps, logp, out_logp, out_sigma):  # pragma: no cover
    """Advance the GARCH(1,1) recursion over a chunk; ``h``, ``eps``, ``logp`` carry state."""
    steps, n = z.shape
    for t in range(steps):
        for i in range(n):
            var = omega[i] + alpha[i] * eps[i] * eps[i] + beta[i] * h[i]
            sd = math.sqrt(var)
            e = sd * z[t, i]
            logp[i] += e + jumps[t, i]
            h[i] = var
            eps[i] = e
            out_logp[t, i] = logp[i]
            out_sigma[t, i] = sd


def _standard_t(
    rng: np.random.Generator, nu: np.ndarray | float, size: tuple[int, ...]
) -> np.ndarray:
    """Student-t draws with ``nu`` degrees of freedom, scaled to unit variance (``nu > 2``)."""
    return rng.standard_t(nu, size=size) * np.sqrt((np.asarray(nu) - 2.0) / np.asarray(nu))


def symbol_names(n: int) -> tuple[str, ...]:
    """``SYN000``, ``SYN001``, ... (at least three digits, enough for ``n``)."""
    width = max(3, len(str(n - 1)))
    return tuple(f"SYN{i:0{width}d}" for i in range(n))


def _require_at_least_one(**counts: int) -> None:
    """Raise :class:`InputError` naming the first of ``counts`` (in order) that is below 1."""
    for name, value in counts.items():
        if value < 1:
            raise InputError(f"{name} must be at least 1, got {value}")


def _time_span(
    steps: int, interval_ms: int, start_ms: int | None, end_ms: int | None, allow_future: bool
) -> int:
    """First timestamp of ``steps`` steps ``interval_ms`` apart (see :class:`SyntheticPrices`)."""
    if start_ms is not None and end_ms is not None:
        raise InputError("give a start or an end time, not both")
    span = (steps - 1) * interval_ms
    if start_ms is None:
        end = now_ms() if end_ms is None else end_ms
        if end_ms is None:
            end -= end % interval_ms
        start_ms = end - span
        if start_ms < 0:
            raise InputError(
                f"{steps} steps of {interval_ms} ms ending at {end} ms would start before 1970"
            )
    if start_ms < 0:
        raise InputError("the start time is before 1970")
    last = start_ms + span
    if not allow_future and last > now_ms():
        raise InputError(
            f"the last of {steps} steps of {interval_ms} ms from the start would be in the "
            "future (the engine rejects timestamps ahead of now); start earlier or send fewer"
        )
    return start_ms


class SyntheticPrices:
    """Seeded multi-symbol GARCH-t prices with jumps and a market factor (see the module).

    Parameters
    ----------
    n_symbols
        Number of symbols, named by :func:`symbol_names`.
    ticks
        Total ticks over all symbols; the stream has ``ceil(ticks / n_symbols)`` steps, the
        last one possibly partial.
    interval_ms
        Milliseconds between steps; also sets the per-step variance (module docstring).
    seed
        Seed of everything random. Same seed and arguments give byte-identical ticks.
    start_ms, end_ms
        Epoch milliseconds of the first or the last step (at most one). By default the
        last step is now, rounded down to a whole interval, so every tick is in the past
        (the engine rejects timestamps more than a few minutes ahead) but timestamps
        differ between runs; give ``start_ms`` or ``end_ms`` for byte-identical output.
    allow_future
        Allow steps after now (they will be dead-lettered unless the engine's clock agrees).

    Notes
    -----
    Prices do not depend on ``ticks``: a longer stream starts with the same prices as a
    shorter one with the same seed, symbols and interval.

    Examples
    --------
    >>> gen = SyntheticPrices(3, ticks=6, interval_ms=1000, seed=7, start_ms=0)
    >>> [(t.symbol, t.ts) for t in gen][:4]
    [('SYN000', 0), ('SYN001', 0), ('SYN002', 0), ('SYN000', 1000)]
    """

    def __init__(
        self,
        n_symbols: int = 10,
        *,
        ticks: int,
        interval_ms: int = 1000,
        seed: int = 0,
        start_ms: int | None = None,
        end_ms: int | None = None,
        allow_future: bool = False,
    ) -> None:
        _require_at_least_one(n_symbols=n_symbols, ticks=ticks, interval_ms=interval_ms)
        self.n_symbols = n_symbols
        self.ticks = ticks
        self.interval_ms = interval_ms
        self.seed = seed
        self.steps = -(-ticks // n_symbols)
        self.start_ms = _time_span(self.steps, interval_ms, start_ms, end_ms, allow_future)
        self.params = self._draw_params()

    def _draw_params(self) -> SymbolParams:
        n = self.n_symbols
        rng = np.random.default_rng([self.seed, 0])
        sigma_ann = rng.uniform(0.10, 0.60, n)
        alpha = rng.uniform(0.03, 0.12, n)
        beta = rng.uniform(0.93, 0.99, n) - alpha
        h_bar = sigma_ann**2 * (self.interval_ms / 1000.0) / TRADING_YEAR_S
        return SymbolParams(
            symbols=symbol_names(n),
            sigma_ann=sigma_ann,
            h_bar=h_bar,
            omega=h_bar * (1.0 - alpha - beta),
            alpha=alpha,
            beta=beta,
            nu=rng.uniform(4.0, 10.0, n),
            loading=rng.uniform(0.3, 0.8, n),
            jump_rate=rng.uniform(0.0005, 0.002, n),
            price0=np.exp(rng.uniform(np.log(10.0), np.log(500.0), n)),
            base_volume=np.exp(rng.uniform(np.log(100.0), np.log(10_000.0), n)),
        )

    def blocks(self) -> Iterator[PriceBlock]:
        """The stream as vectorised chunks of whole steps (the last step may be cut later)."""
        p = self.params
        n = self.n_symbols
        rng = np.random.default_rng([self.seed, 1])
        h = p.h_bar.copy()
        eps = np.zeros(n)
        logp = np.log(p.price0)
        idio = np.sqrt(1.0 - p.loading**2)
        chunk = max(1, CHUNK_TICKS // n)
        for first in range(0, self.steps, chunk):
            # Always draw a whole chunk, so the draws, and the prices, do not depend on
            # how many steps the stream has; the last chunk is cut afterwards.
            market = _standard_t(rng, MARKET_NU, (chunk,))
            z = p.loading * market[:, None] + idio * _standard_t(rng, p.nu, (chunk, n))
            jumps = self._jumps(rng, chunk)
            noise = rng.standard_normal((chunk, n))
            steps = min(chunk, self.steps - first)
            z, jumps, noise = z[:steps], jumps[:steps], noise[:steps]
            prev = logp.copy()
            out_logp = np.empty((steps, n))
            sigma = np.empty((steps, n))
            _garch(z, jumps, p.omega, p.alpha, p.beta, h, eps, logp, out_logp, sigma)
            log_return = np.diff(out_logp, axis=0, prepend=prev[None, :])
            price = np.maximum(np.round(np.exp(out_logp), 6), 1e-6)
            volume = np.round(
                p.base_volume * (sigma / np.sqrt(p.h_bar)) * np.exp(0.5 * noise - 0.125)
            )
            ts = self.start_ms + (first + np.arange(steps, dtype=np.int64)) * self.interval_ms
            yield PriceBlock(first, ts, price, log_return, sigma, jumps, volume)

    def _jumps(self, rng: np.random.Generator, steps: int) -> np.ndarray:
        p = self.params
        counts = rng.poisson(p.jump_rate, (steps, self.n_symbols))
        jumps = np.zeros((steps, self.n_symbols))
        where = np.flatnonzero(counts)
        if where.size:
            repeat = np.repeat(where, counts.ravel()[where])
            sign = np.where(rng.random(repeat.size) < JUMP_DOWN_PROB, -1.0, 1.0)
            size = rng.uniform(4.0, 8.0, repeat.size)
            scale = np.sqrt(p.h_bar)[repeat % self.n_symbols]
            np.add.at(jumps.ravel(), repeat, sign * size * scale)
        return jumps

    def __iter__(self) -> Iterator[PriceTick]:
        """Ticks in time order, symbols in order within a step; ``event_id`` is ``SYMBOL-step``."""
        symbols = self.params.symbols
        left = self.ticks
        for block in self.blocks():
            for j, ts in enumerate(block.ts.tolist()):
                step = block.first_step + j
                row_price = block.price[j].tolist()
                row_volume = block.volume[j].astype(np.int64).tolist()
                for symbol, price, volume in zip(symbols, row_price, row_volume, strict=True):
                    if left == 0:
                        return
                    left -= 1
                    yield PriceTick(symbol, ts, price, volume, f"{symbol}-{step}")


class SyntheticTransactions:
    """Seeded card transactions of customers with their own habits (see the module).

    Parameters
    ----------
    n_customers, n_terminals
        Population sizes; ids are ``C0000``-style and ``T0000``-style text.
    count
        Number of transactions.
    seed
        Seed of everything random; same arguments give byte-identical transactions.
    start_ms
        Epoch milliseconds where the first day starts. By default the days end at the
        last UTC midnight at or before now, so every transaction is in the past.
    allow_future
        Allow days that end after now.

    Examples
    --------
    >>> txs = list(SyntheticTransactions(50, 100, count=5, seed=3, start_ms=0))
    >>> len(txs), all(a.ts <= b.ts for a, b in zip(txs, txs[1:]))
    (5, True)
    """

    def __init__(
        self,
        n_customers: int = 1000,
        n_terminals: int = 2000,
        *,
        count: int,
        seed: int = 0,
        start_ms: int | None = None,
        allow_future: bool = False,
    ) -> None:
        _require_at_least_one(n_customers=n_customers, n_terminals=n_terminals, count=count)
        self.n_customers = n_customers
        self.n_terminals = n_terminals
        self.count = count
        self.seed = seed
        rng = np.random.default_rng([seed, 2])
        c = n_customers
        self.rate = rng.uniform(0.5, 4.0, c)
        """Transactions per day, per customer."""
        self.mean_amount = rng.uniform(5.0, 150.0, c)
        self.amount_spread = rng.uniform(0.3, 0.8, c)
        self.peak_hour = rng.uniform(8.0, 21.0, c)
        self.hour_spread = rng.uniform(1.0, 4.0, c)
        self.online_share = rng.beta(1.0, 4.0, c)
        n_usual = 1 + rng.poisson(4.0, c)
        self.terminal_start = np.concatenate([[0], np.cumsum(n_usual)])
        self.terminals = rng.integers(0, n_terminals, int(self.terminal_start[-1]))
        self.days = max(1, math.ceil(count / float(self.rate.sum())))
        if start_ms is None:
            today = now_ms() // DAY_MS * DAY_MS
            start_ms = today - self.days * DAY_MS
        if start_ms < 0:
            raise InputError("the start time is before 1970")
        if not allow_future and start_ms + self.days * DAY_MS > now_ms():
            raise InputError(
                f"{count} transactions take {self.days} day(s) from the start, which ends in "
                "the future (the engine rejects timestamps ahead of now); start earlier"
            )
        self.start_ms = start_ms
        self._cwidth = max(4, len(str(n_customers - 1)))
        self._twidth = max(4, len(str(n_terminals - 1)))

    def __iter__(self) -> Iterator[Transaction]:
        """Transactions in time order; ``tx_id`` is ``s<seed>-<n>`` with ``n`` counting from 0.

        One UTC day is drawn at a time (vectorised), then yielded in time order.
        """
        rng = np.random.default_rng([self.seed, 3])
        per_day = rng.multinomial(self.count, np.full(self.days, 1.0 / self.days))
        weights = self.rate / self.rate.sum()
        n = 0
        for day, size in enumerate(per_day.tolist()):
            if size:
                yield from self._day(rng, day, size, weights, n)
                n += size

    def _day(
        self, rng: np.random.Generator, day: int, size: int, weights: np.ndarray, n0: int
    ) -> Iterator[Transaction]:
        customer = rng.choice(self.n_customers, size, p=weights)
        hours = self.peak_hour[customer] + self.hour_spread[customer] * rng.standard_normal(size)
        tod = np.floor(np.mod(hours, 24.0) * 3_600_000.0).astype(np.int64)
        spread = self.amount_spread[customer]
        amount = self.mean_amount[customer] * np.exp(
            spread * rng.standard_normal(size) - spread**2 / 2
        )
        amount = np.maximum(np.round(amount, 2), 0.01)
        n_usual = np.diff(self.terminal_start)[customer]
        usual = self.terminal_start[customer] + (rng.random(size) * n_usual).astype(np.int64)
        terminal = np.where(
            rng.random(size) < 0.02,
            rng.integers(0, self.n_terminals, size),
            self.terminals[usual],
        )
        online = rng.random(size) < self.online_share[customer]
        order = np.argsort(tod, kind="stable")
        ts = (self.start_ms + day * DAY_MS + tod[order]).tolist()
        cw, tw = self._cwidth, self._twidth
        rows = zip(
            ts,
            customer[order].tolist(),
            amount[order].tolist(),
            terminal[order].tolist(),
            online[order].tolist(),
            strict=True,
        )
        for k, (t, c, a, m, web) in enumerate(rows):
            yield Transaction(
                tx_id=f"s{self.seed}-{n0 + k}",
                ts=t,
                customer_id=f"C{c:0{cw}d}",
                amount=a,
                terminal_id=f"T{m:0{tw}d}",
                type="online" if web else "pos",
            )
