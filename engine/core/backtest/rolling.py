"""Rolling backtests inside the stream: per symbol, monitored method and level, O(1) per tick.

Over each symbol's last ``W`` returns (default 250), for every monitored method and VaR
level: Kupiec's proportion of failures, Christoffersen's independence and conditional
coverage, and the Basel traffic light (binomial thresholds for ``W`` and the level); for
every monitored method at the ES level: the Acerbi-Szekely Z2 test. The same statistics
as :mod:`engine.core.backtest.stats` (a test checks they agree), kept incrementally:

* two bit rings (one bit per series: forecast tested, violated; of the narrowest
  integer type holding the series) give the tick leaving
  the window, so the violation count and the four transition counts update in O(1);
* a ring of the Z2 terms ``L_t I_t / ES_t`` per ES series, with their running sum and
  sum of squares (reset exactly whenever the window holds no violation, so rounding
  cannot accumulate).

A series is judged only once all ``W`` ticks of its window were tested. Judging costs a
few logarithms, so it is redone only when a violation enters or leaves the window.
An :class:`Event` is produced when a test *starts* rejecting (or the light turns amber
or red), at most once per window length per series and test: a test hovering at its
critical value as violations enter and leave the window does not alert on every
flip. The pipeline turns events into alerts naming the test and its p-value.
Causality: the window at tick ``t`` holds the returns up to and including ``t``, each
judged against the forecast made before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np
from scipy import stats

from engine.core.backtest.stats import (
    TestResult,
    independence_lr,
    kupiec_lr,
    z2_from_sums,
    zone_of,
    zone_thresholds,
)
from engine.core.online import OnlineComponent
from engine.core.slots import Column, bit_dtype, ring_capacity

# Test bits of a series' flags.
KUPIEC, INDEPENDENCE, COVERAGE, AMBER, RED, ES_Z2 = 1, 2, 4, 8, 16, 32
MAX_SERIES = 63
"""VaR series (monitored methods x VaR levels) fit the bits of one int64."""


@numba.njit(cache=True, nogil=True)
def _xlogy(x, y):  # pragma: no cover - compiled
    return 0.0 if x == 0 else x * np.log(y)


@numba.njit(cache=True, nogil=True)
def _lr_pof(n, x, alpha):  # pragma: no cover - compiled
    rate = x / n
    lr = -2.0 * (
        _xlogy(n - x, 1.0 - alpha) + _xlogy(x, alpha) - _xlogy(n - x, 1.0 - rate) - _xlogy(x, rate)
    )
    return max(lr, 0.0)


@numba.njit(cache=True, nogil=True)
def _lr_ind(n00, n01, n10, n11):  # pragma: no cover - compiled
    total = n00 + n01 + n10 + n11
    if total == 0:
        return 0.0
    pi = (n01 + n11) / total
    pi01 = n01 / (n00 + n01) if n00 + n01 > 0 else 0.0
    pi11 = n11 / (n10 + n11) if n10 + n11 > 0 else 0.0
    restricted = _xlogy(n00 + n10, 1.0 - pi) + _xlogy(n01 + n11, pi)
    unrestricted = (
        _xlogy(n00, 1.0 - pi01) + _xlogy(n01, pi01) + _xlogy(n10, 1.0 - pi11) + _xlogy(n11, pi11)
    )
    return max(-2.0 * (restricted - unrestricted), 0.0)


@numba.njit(cache=True, nogil=True)
def _quiet(new, last, p, window):  # pragma: no cover - compiled
    """The bits of ``new`` not alerted within the last ``window`` ticks; stamps them at ``p``.

    ``last[j]`` is 1 + the tick of test bit ``j``'s last alert (0: never).
    """
    out = np.int64(0)
    for j in range(last.shape[0]):
        bit = np.int64(1) << j
        if new & bit and (last[j] == 0 or p + 1 - last[j] >= window):
            out |= bit
            last[j] = p + 1
    return out


@numba.njit(cache=True, nogil=True)
def _roll(  # pragma: no cover - compiled
    slots, returns, var_before, es_before,
    var_method, var_level, alphas, amber_at, red_at,
    es_method, es_level, es_alpha,
    window, chi1, chi2, z_crit,
    pushed, tested_ring, hit_ring, es_ring, counts, flags, es_sums, es_counts, es_flags,
    alerted, es_alerted, ev_row, ev_series, ev_bits, ev_int, ev_float,
):  # fmt: skip
    n_series = var_method.shape[0]
    n_es = es_method.shape[0]
    cap = tested_ring.shape[1]
    es_cap = es_ring.shape[1]
    events = 0
    for i in range(slots.shape[0]):
        s = slots[i]
        p = pushed[s]
        r = returns[i]
        full = p >= window
        # --- VaR series: bits in, bits out, transition pairs in and out ----------------------
        t_in = np.int64(0)
        h_in = np.int64(0)
        for k in range(n_series):
            v = var_before[i, var_method[k], var_level[k]]
            if not (np.isnan(r) or np.isnan(v)):
                t_in |= np.int64(1) << k
                if -r > v:
                    h_in |= np.int64(1) << k
        t_prev = tested_ring[s, (p - 1) % cap] if p >= 1 else np.int64(0)
        h_prev = hit_ring[s, (p - 1) % cap] if p >= 1 else np.int64(0)
        t_out = tested_ring[s, (p - window) % cap] if full else np.int64(0)
        h_out = hit_ring[s, (p - window) % cap] if full else np.int64(0)
        t_next = tested_ring[s, (p - window + 1) % cap] if full else np.int64(0)
        h_next = hit_ring[s, (p - window + 1) % cap] if full else np.int64(0)
        for k in range(n_series):
            c = counts[s, k]  # n, x, pairs, n01, n10, n11
            was_full = c[0] == window
            ti, to = (t_in >> k) & 1, (t_out >> k) & 1
            hi, ho = (h_in >> k) & 1, (h_out >> k) & 1
            hp, hn = (h_prev >> k) & 1, (h_next >> k) & 1
            c[0] += ti - to
            c[1] += hi - ho
            if (t_prev >> k) & 1 and ti:  # the pair (t-1, t) enters
                c[2] += 1
                c[3] += (1 - hp) * hi
                c[4] += hp * (1 - hi)
                c[5] += hp * hi
            if to and (t_next >> k) & 1:  # the pair (t-W, t-W+1) leaves
                c[2] -= 1
                c[3] -= (1 - ho) * hn
                c[4] -= ho * (1 - hn)
                c[5] -= ho * hn
            if c[0] < window:
                flags[s, k] = 0
                continue
            if was_full and not (hi | ho | hp | hn):  # no violation moved: same verdicts
                continue
            lr_pof = _lr_pof(window, c[1], alphas[k])
            lr_ind = _lr_ind(c[2] - c[3] - c[4] - c[5], c[3], c[4], c[5])
            f = np.int64(0)
            if lr_pof > chi1:
                f |= KUPIEC
            if lr_ind > chi1:
                f |= INDEPENDENCE
            if lr_pof + lr_ind > chi2:
                f |= COVERAGE
            if c[1] >= red_at[k]:
                f |= RED | AMBER
            elif c[1] >= amber_at[k]:
                f |= AMBER
            new = _quiet(f & ~flags[s, k], alerted[s, k], p, window)
            flags[s, k] = f
            if new:
                ev_row[events] = i
                ev_series[events] = k
                ev_bits[events] = new
                for j in range(6):
                    ev_int[events, j] = c[j]
                events += 1
        tested_ring[s, p % cap] = t_in
        hit_ring[s, p % cap] = h_in
        # --- ES series: Z2 terms -------------------------------------------------------------
        for e in range(n_es):
            v = var_before[i, es_method[e], es_level]
            es = es_before[i, es_method[e], es_level]
            term = np.nan
            if not (np.isnan(r) or np.isnan(v) or np.isnan(es)) and es > 0:
                term = -r / es if -r > v else 0.0
            old = es_ring[s, ((p - window) * n_es + e) % es_cap] if full else np.nan
            sums = es_sums[s, e]
            cnt = es_counts[s, e]  # n, violations
            was_full = cnt[0] == window
            if not np.isnan(term):
                cnt[0] += 1
                if term != 0.0:
                    cnt[1] += 1
                    sums[0] += term
                    sums[1] += term * term
            if not np.isnan(old):
                cnt[0] -= 1
                if old != 0.0:
                    cnt[1] -= 1
                    sums[0] -= old
                    sums[1] -= old * old
            if cnt[1] == 0:
                sums[0] = 0.0
                sums[1] = 0.0
            es_ring[s, (p * n_es + e) % es_cap] = term
            if cnt[0] < window:
                es_flags[s, e] = 0
                continue
            moved = (not np.isnan(term) and term != 0.0) or (not np.isnan(old) and old != 0.0)
            if was_full and not moved:
                continue
            z2 = 1.0 - sums[0] / (window * es_alpha)
            variance = (sums[1] - sums[0] * sums[0] / window) / (window - 1)
            sd = np.sqrt(variance) if variance > 0 else 0.0
            score = z2 * es_alpha / (sd / np.sqrt(window)) if sd > 0.0 else 0.0
            rejects = z2 < 0.0 if sd == 0.0 else score < z_crit
            f = np.int64(1) if rejects else np.int64(0)
            new = _quiet(f & ~es_flags[s, e], es_alerted[s, e : e + 1], p, window)
            es_flags[s, e] = f
            if new:
                ev_row[events] = i
                ev_series[events] = n_series + e
                ev_bits[events] = ES_Z2
                ev_int[events, 0] = cnt[0]
                ev_int[events, 1] = cnt[1]
                ev_float[events, 0] = sums[0]
                ev_float[events, 1] = sums[1]
                events += 1
        pushed[s] = p + 1
    return events


@dataclass(frozen=True, slots=True)
class Event:
    """A test started rejecting (or the traffic light worsened) at accepted row ``row``."""

    row: int
    method: str
    level: float
    test: str
    """``kupiec``, ``christoffersen_independence``, ``christoffersen_cc``,
    ``traffic_light`` or ``acerbi_szekely_z2``."""
    result: TestResult
    """The test's statistic and p-value (for the traffic light: the violation count and
    the binomial probability of at most that many under a correct model)."""
    window: int
    violations: int
    zone: str | None = None
    """The traffic light's new zone (``amber`` or ``red``) for ``traffic_light`` events."""

    @property
    def expected(self) -> float:
        """Violations a correct model expects in the window."""
        return self.window * (1.0 - self.level)


class RollingBacktests(OnlineComponent):
    """Rolling-window VaR and ES backtests per slot (see the module docstring).

    Parameters
    ----------
    methods : sequence of str
        All methods of the book (the order of the ``var_before`` axis).
    levels : sequence of float
        All levels of the book (the order of the last ``var_before`` axis).
    var_levels : sequence of float
        The VaR levels to backtest.
    es_level : float
        The ES level of the Z2 test.
    monitored : sequence of str
        The methods to backtest.
    window : int
        Returns per window ``W``.
    significance : float
        Tests reject when their p-value is below it.
    """

    name = "rolling_backtests"

    def __init__(
        self,
        methods: Sequence[str],
        levels: Sequence[float],
        var_levels: Sequence[float],
        es_level: float,
        monitored: Sequence[str],
        window: int = 250,
        significance: float = 0.05,
    ) -> None:
        if window < 20:
            raise ValueError("rolling backtest windows need at least 20 returns")
        if not monitored:
            raise ValueError("no method to backtest")
        unknown = set(monitored) - set(methods)
        if unknown:
            raise ValueError(f"cannot backtest unknown methods {sorted(unknown)}")
        self.methods, self.levels = tuple(methods), tuple(levels)
        self.monitored = tuple(monitored)
        self.var_levels, self.es_level = tuple(var_levels), float(es_level)
        self.series = [(m, lv) for m in self.monitored for lv in self.var_levels]
        if len(self.series) > MAX_SERIES:
            raise ValueError(
                f"{len(self.series)} VaR series to backtest (methods x levels); at most {MAX_SERIES}"
            )
        self.window, self.significance = int(window), float(significance)
        self._var_method = np.array([self.methods.index(m) for m, _ in self.series], np.int64)
        self._var_level = np.array([self.levels.index(lv) for _, lv in self.series], np.int64)
        self._alphas = np.array([1.0 - lv for _, lv in self.series])
        thresholds = [zone_thresholds(self.window, a) for a in self._alphas]
        self._amber_at = np.array([t[0] for t in thresholds], np.int64)
        self._red_at = np.array([t[1] for t in thresholds], np.int64)
        self._es_method = np.array([self.methods.index(m) for m in self.monitored], np.int64)
        self._es_level = self.levels.index(self.es_level)
        self._chi1 = float(stats.chi2.isf(self.significance, 1))
        self._chi2 = float(stats.chi2.isf(self.significance, 2))
        self._z_crit = float(stats.norm.ppf(self.significance))
        super().__init__()

    def columns(self) -> Sequence[Column]:
        s, e = len(self.series), len(self.monitored)
        ring = ring_capacity(self.window)
        bits = bit_dtype(s)  # one bit per VaR series
        return (
            Column("pushed", np.int64, 0),
            Column("es_pushed", np.int64, 0),
            Column("counts", np.int64, 0, s * 6),
            Column("flags", np.int64, 0, s),
            Column("es_sums", np.float64, 0.0, e * 2),
            Column("es_counts", np.int64, 0, e * 2),
            Column("es_flags", np.int64, 0, e),
            Column("alerted", np.int64, 0, s * 5),
            Column("es_alerted", np.int64, 0, e),
            Column("tested", bits, 0, ring, kind="ring", ring_head="pushed", was=np.int64),
            Column("hits", bits, 0, ring, kind="ring", ring_head="pushed", was=np.int64),
            Column(
                "es_terms",
                np.float64,
                np.nan,
                ring_capacity(self.window * e),
                kind="ring",
                ring_head="es_pushed",
            ),
        )

    def update(
        self,
        slots: np.ndarray,
        returns: np.ndarray,
        var_before: np.ndarray,
        es_before: np.ndarray,
    ) -> list[Event]:
        """Push one micro-batch (accepted rows, arrival order); the tests that started rejecting."""
        n = slots.shape[0]
        s, e = len(self.series), len(self.monitored)
        st = self.state
        cap = n * (s + e)
        ev_row = np.empty(cap, np.int64)
        ev_series = np.empty(cap, np.int64)
        ev_bits = np.empty(cap, np.int64)
        ev_int = np.zeros((cap, 6), np.int64)
        ev_float = np.zeros((cap, 2))
        count = _roll(
            slots, returns, var_before, es_before,
            self._var_method, self._var_level, self._alphas, self._amber_at, self._red_at,
            self._es_method, self._es_level, 1.0 - self.es_level,
            self.window, self._chi1, self._chi2, self._z_crit,
            st["pushed"], st["tested"], st["hits"], st["es_terms"],
            st["counts"].reshape(-1, s, 6), st["flags"],
            st["es_sums"].reshape(-1, e, 2), st["es_counts"].reshape(-1, e, 2), st["es_flags"],
            st["alerted"].reshape(-1, s, 5), st["es_alerted"], ev_row, ev_series, ev_bits, ev_int, ev_float,
        )  # fmt: skip
        st["es_pushed"][:] = st["pushed"] * e
        if count == 0:
            return []
        return self._events(
            ev_row[:count], ev_series[:count], ev_bits[:count], ev_int[:count], ev_float[:count]
        )

    def _events(
        self,
        rows: np.ndarray,
        series: np.ndarray,
        bits: np.ndarray,
        counts: np.ndarray,
        sums: np.ndarray,
    ) -> list[Event]:
        """The events of one micro-batch, in the order :func:`_roll` found them.

        Every VaR statistic and p-value of the batch is computed in one vectorised call
        each: a scipy distribution call costs tens of microseconds however long its
        array, and a volatile stream raises hundreds of events per second.
        """
        w, n_var = self.window, len(self.series)
        var = series < n_var
        k = series[var]
        alpha, x = self._alphas[k], counts[var, 1]
        pairs, n01, n10, n11 = (counts[var, j] for j in (2, 3, 4, 5))
        lr_pof = kupiec_lr(w, x, alpha)
        lr_ind = independence_lr(pairs - n01 - n10 - n11, n01, n10, n11)
        lr_cc = lr_pof + lr_ind
        p_pof, p_ind = stats.chi2.sf(lr_pof, 1), stats.chi2.sf(lr_ind, 1)
        p_cc = stats.chi2.sf(lr_cc, 2)
        cumulative = stats.binom.cdf(x, w, alpha)
        out: list[Event] = []
        v = 0  # position among the VaR events
        for row, s, b, c, sm in zip(
            rows.tolist(), series.tolist(), bits.tolist(), counts, sums, strict=True
        ):
            if s >= n_var:
                method = self.monitored[s - n_var]
                result = z2_from_sums(w, float(sm[0]), float(sm[1]), 1.0 - self.es_level)
                out.append(
                    Event(row, method, self.es_level, "acerbi_szekely_z2", result, w, int(c[1]))
                )
                continue
            method, level = self.series[s]
            violations = int(x[v])
            if b & KUPIEC:
                pof = TestResult(float(lr_pof[v]), float(p_pof[v]))
                out.append(Event(row, method, level, "kupiec", pof, w, violations))
            if b & INDEPENDENCE:
                ind = TestResult(float(lr_ind[v]), float(p_ind[v]))
                out.append(
                    Event(row, method, level, "christoffersen_independence", ind, w, violations)
                )
            if b & COVERAGE:
                cc = TestResult(float(lr_cc[v]), float(p_cc[v]))
                out.append(Event(row, method, level, "christoffersen_cc", cc, w, violations))
            if b & (AMBER | RED):
                light = TestResult(float(violations), float(cumulative[v]))
                zone = zone_of(light.p_value)
                out.append(
                    Event(row, method, level, "traffic_light", light, w, violations, zone=zone)
                )
            v += 1
        return out

    def zones(self, slots: np.ndarray, method: str) -> dict[float, list[str]]:
        """Traffic light per VaR level of ``method`` for ``slots`` (``""`` until a full window)."""
        out = {}
        counts, flags = self.state["counts"], self.state["flags"]
        for level in self.var_levels:
            k = self.series.index((method, level))
            full = counts[slots, k * 6] == self.window
            f = flags[slots, k]
            zone = np.where(f & RED, "red", np.where(f & AMBER, "amber", "green"))
            out[level] = np.where(full, zone, "").tolist()
        return out

    def rebuild(self, slot: int) -> None:
        """Nothing transient: counts, sums and flags are persisted state."""

    def status(self, slot: int) -> dict[tuple[str, float], dict[str, object]]:
        """Current window per series of one slot: ``n``, ``violations``, ``zone``, failing tests."""
        out: dict[tuple[str, float], dict[str, object]] = {}
        counts = self.state["counts"][slot].reshape(-1, 6)
        for k, (method, level) in enumerate(self.series):
            f = int(self.state["flags"][slot, k])
            zone = "red" if f & RED else "amber" if f & AMBER else "green"
            out[(method, level)] = {
                "n": int(counts[k, 0]),
                "violations": int(counts[k, 1]),
                "zone": zone if counts[k, 0] == self.window else None,
                "rejected": [
                    name
                    for bit, name in (
                        (KUPIEC, "kupiec"),
                        (INDEPENDENCE, "christoffersen_independence"),
                        (COVERAGE, "christoffersen_cc"),
                    )
                    if f & bit
                ],
            }
        es_counts = self.state["es_counts"][slot].reshape(-1, 2)
        for e, method in enumerate(self.monitored):
            out[(method, self.es_level)] = {
                "n": int(es_counts[e, 0]),
                "violations": int(es_counts[e, 1]),
                "zone": None,
                "rejected": ["acerbi_szekely_z2"] if self.state["es_flags"][slot, e] else [],
            }
        return out
