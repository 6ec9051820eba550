"""Greeks in the stream: reference data, positions and a throttle around :func:`portfolio_greeks`.

:class:`GreeksMonitor` is pure (no Redis, no Kafka), like
:class:`~engine.stress.live.StressMonitor`: the portfolio service feeds it the
``instruments`` listings and every position it accepts, and after a poll that released
ticks asks it for each option portfolio's :class:`~engine.options.greeks.GreeksSnapshot`
at the newest released tick, with the spots of the portfolio book (the latest released
price of each symbol). The numbers are those of ``riskstream options greeks`` on the same
positions, instruments and market rows.

Market besides spot (a documented, simple source): one :class:`UnderlyingMarket` per
underlying (rate, dividend yield, vol) configured at start, and an option's own ``vol``
from its ``instruments`` record, which overrides the underlying's vol (republish the
instrument to move it: the topic is compacted, the latest record counts).

Positions take effect at their timestamp (held when ``ts <= `` the evaluation time),
applied in timestamp order; a quantity of 0 closes the position.

Throttling is in event time, as for stress: a recomputation happens when the newest
released tick is at least ``every_ms`` after the previous recomputation's. Limits:
``delta_limit`` (currency per 1.00 relative move) and ``vega_limit`` (currency per 1.00
of vol), on absolute values. A portfolio crossing a limit raises one ``greek_limit``
alert (id from portfolio, greek, limit and the evaluation time, so a replay repeats the
id), none while it stays beyond, and is re-armed when it comes back within. Positions,
the throttle and the breaches are saved with the service's state; the reference data is
not (the service re-reads the compacted topic at start).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from engine.alerts import Alert, alert_id
from engine.options.greeks import GREEK_NAMES, GreeksSnapshot, UnderlyingMarket, portfolio_greeks
from engine.options.instruments import Instrument
from engine.options.live_var import options_var
from engine.options.reference import Listing

KIND = "greek_limit"
MODEL = "options-greeks"
MODEL_VERSION = "bsm-baw-1"


@dataclass
class GreeksMonitor:
    """Option Greeks of every portfolio, throttled, with delta and vega limits."""

    markets: Mapping[str, UnderlyingMarket]
    every_ms: int = 0
    delta_limit: float | None = None
    vega_limit: float | None = None
    instruments: dict[str, Instrument] = field(default_factory=dict)
    vols: dict[str, float] = field(default_factory=dict)
    positions: dict[str, dict[str, float]] = field(default_factory=dict)
    pending: list[tuple[int, str, str, float]] = field(default_factory=list)
    last_ms: int | None = None
    breached: set[str] = field(default_factory=set)
    """``"<portfolio>|<greek>"`` of the limits currently crossed."""
    var_scenarios: int = 0
    """Scenarios of the options VaR (:mod:`engine.options.live_var`); 0 turns it off."""
    var_level: float = 0.99
    es_level: float = 0.975
    """Confidence level of the options ES (``RISKSTREAM_ES_LEVEL`` in the service)."""
    var_seed: int = 0
    base_currency: str | None = None
    """Greeks and options VaR in this currency, through the reference data's FX pairs at
    their latest prices (:mod:`engine.options.greeks`); None: each price currency."""

    def __post_init__(self) -> None:
        if self.var_scenarios < 0:
            raise ValueError(f"var_scenarios must be >= 0, got {self.var_scenarios}")
        if self.every_ms < 0:
            raise ValueError(f"every_ms must be >= 0, got {self.every_ms}")
        for name, limit in (("delta", self.delta_limit), ("vega", self.vega_limit)):
            if limit is not None and not limit > 0.0:
                raise ValueError(f"the {name} limit must be a positive amount, got {limit}")

    # ---- inputs ------------------------------------------------------------------------

    def apply(self, listings: Iterable[Listing]) -> None:
        """Upsert (or, for a tombstone, delete) instruments, in arrival order."""
        for listing in listings:
            if listing.instrument is None:
                self.instruments.pop(listing.key, None)
                self.vols.pop(listing.key, None)
                continue
            self.instruments[listing.key] = listing.instrument
            if listing.vol is None:
                self.vols.pop(listing.key, None)
            else:
                self.vols[listing.key] = listing.vol

    def is_option(self, symbol: str) -> bool:
        """Whether ``symbol`` is an option of the reference data (the book skips those)."""
        inst = self.instruments.get(symbol)
        return inst is not None and inst.is_option

    def set_position(self, portfolio: str, symbol: str, quantity: float, ts_ms: int) -> None:
        """Hold ``quantity`` contracts of ``symbol`` in ``portfolio`` from ``ts_ms`` on."""
        self.pending.append((int(ts_ms), portfolio, symbol, float(quantity)))

    # ---- evaluation --------------------------------------------------------------------

    def due(self, ts_ms: int) -> bool:
        """Whether a recomputation triggered by a tick at ``ts_ms`` is due."""
        return self.last_ms is None or ts_ms - self.last_ms >= self.every_ms

    def held(self, ts_ms: int) -> dict[str, dict[str, float]]:
        """Apply the positions effective at ``ts_ms`` and return the holdings."""
        due = sorted((p for p in self.pending if p[0] <= ts_ms), key=lambda p: p[0])
        if due:
            self.pending = [p for p in self.pending if p[0] > ts_ms]
            for _, portfolio, symbol, quantity in due:
                book = self.positions.setdefault(portfolio, {})
                if quantity == 0.0:
                    book.pop(symbol, None)
                else:
                    book[symbol] = quantity
        return self.positions

    def evaluate(
        self,
        spots: Mapping[str, float],
        ts_ms: int,
        *,
        covariance: tuple[list[str], np.ndarray] | None = None,
        horizon_ms: int | None = None,
    ) -> tuple[list[GreeksSnapshot], list[Alert]]:
        """Snapshots of every portfolio holding options at ``ts_ms``, and new limit alerts.

        With ``covariance`` (symbols and the covariance of their log returns over
        ``horizon_ms``) and ``var_scenarios > 0``, each snapshot carries its options VaR.
        """
        self.last_ms = ts_ms
        held = self.held(ts_ms)
        snapshots = portfolio_greeks(
            held,
            self.instruments,
            self.vols,
            spots,
            self.markets,
            ts_ms=ts_ms,
            base_currency=self.base_currency,
        )
        if self.var_scenarios and covariance is not None and horizon_ms is not None:
            snapshots = [
                replace(
                    snap,
                    var=options_var(
                        held[snap.portfolio],
                        self.instruments,
                        self.vols,
                        spots,
                        self.markets,
                        covariance,
                        ts_ms=ts_ms,
                        horizon_ms=horizon_ms,
                        level=self.var_level,
                        es_level=self.es_level,
                        n_scenarios=self.var_scenarios,
                        seed=self.var_seed,
                        base_currency=self.base_currency,
                    ),
                )
                for snap in snapshots
            ]
        return snapshots, self._alerts(snapshots)

    def _alerts(self, snapshots: list[GreeksSnapshot]) -> list[Alert]:
        alerts = []
        for snap in snapshots:
            for greek, limit in (("delta", self.delta_limit), ("vega", self.vega_limit)):
                if limit is None:
                    continue
                value = snap.total(greek)
                tag = f"{snap.portfolio}|{greek}"
                if abs(value) > limit and tag not in self.breached:
                    self.breached.add(tag)
                    alerts.append(
                        Alert(
                            alert_id(KIND, snap.portfolio, f"{greek}>{limit!r}", str(snap.ts_ms)),
                            KIND,
                            snap.portfolio,
                            snap.ts_ms,
                            "warning",
                            abs(value),
                            limit,
                            MODEL,
                            MODEL_VERSION,
                            {"greek": greek, "signed_value": value},
                        )
                    )
                elif abs(value) <= limit:
                    self.breached.discard(tag)
        return alerts

    # ---- state -------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """What a restart needs: positions, pending positions, the throttle and breaches."""
        return {
            "positions": self.positions,
            "pending": self.pending,
            "last_ms": self.last_ms,
            "breached": sorted(self.breached),
        }

    def portfolio_state(self, portfolio: str) -> dict[str, Any]:
        """One portfolio's part of :meth:`to_state` (held, pending, crossed limits), to move
        it to another instance of a scaled-out service (:meth:`put_portfolio`)."""
        return {
            "positions": dict(self.positions.get(portfolio, {})),
            "pending": [list(p) for p in self.pending if p[1] == portfolio],
            "breached": sorted(t for t in self.breached if t.rsplit("|", 1)[0] == portfolio),
        }

    def put_portfolio(self, portfolio: str, state: Mapping[str, Any]) -> None:
        """Take over a portfolio from :meth:`portfolio_state` (replacing what was held)."""
        self.drop_portfolio(portfolio)
        if state["positions"]:
            self.positions[portfolio] = {str(s): float(q) for s, q in state["positions"].items()}
        self.pending += [(int(t), portfolio, str(s), float(q)) for t, _, s, q in state["pending"]]
        self.breached |= set(state["breached"])

    def drop_portfolio(self, portfolio: str) -> None:
        """Forget a portfolio: its holdings, pending positions and crossed limits."""
        self.positions.pop(portfolio, None)
        self.pending = [p for p in self.pending if p[1] != portfolio]
        self.breached = {t for t in self.breached if t.rsplit("|", 1)[0] != portfolio}

    def restore(self, state: Mapping[str, Any] | None) -> None:
        """Continue from :meth:`to_state` (``None``: nothing saved yet)."""
        if state:
            self.positions = {p: dict(h) for p, h in state["positions"].items()}
            self.pending = [(int(t), str(p), str(s), float(q)) for t, p, s, q in state["pending"]]
            self.last_ms = state["last_ms"]
            self.breached = set(state["breached"])


def greeks_fields(snap: GreeksSnapshot) -> dict[str, str]:
    """The Redis hash ``riskstream:greeks:<portfolio>``.

    ``ts``, ``ts_ms``, the totals ``value``, ``delta``, ``gamma``, ``vega``, ``theta``,
    ``rho`` (currency; see :mod:`engine.options.greeks`), the counts ``options``,
    ``expired``, ``unpriced``, and per underlying ``<greek>:<underlying>`` for every
    greek including ``delta_units:<underlying>`` (units of the underlying). With a base
    currency, ``currency`` (of every amount) and ``fx_missing`` (the currencies without a
    rate, ``;``-separated, empty when every rate is known), as in the portfolio hash. With an
    options VaR: ``var_method``, ``var_level``, ``var_horizon_ms``, ``var_scenarios``,
    ``var`` (the method's VaR of the options part), ``var_full`` (full revaluation),
    ``var_gap`` (``var - var_full``), ``var_excluded``, and the expected shortfall on the
    same scenarios: ``es_level``, ``es``, ``es_full`` and ``es_gap`` (``es - es_full``).
    """
    from engine.boundary.timeutil import format_ts

    fields = {
        "ts": format_ts(snap.ts_ms),
        "ts_ms": str(snap.ts_ms),
        "options": str(snap.options),
        "expired": str(snap.expired),
        "unpriced": str(snap.unpriced),
    }
    if snap.currency is not None:
        fields["currency"] = snap.currency
        fields["fx_missing"] = ";".join(snap.missing_fx)
    for name in GREEK_NAMES:
        if name != "delta_units":
            fields[name] = repr(snap.total(name))
        for u, v in zip(snap.underlyings, snap.by_underlying[name], strict=True):
            fields[f"{name}:{u}"] = repr(float(v))
    if snap.var is not None:
        v = snap.var
        fields.update(
            {
                "var_method": v.method,
                "var_level": repr(v.level),
                "var_horizon_ms": str(v.horizon_ms),
                "var_scenarios": str(v.scenarios),
                "var": repr(v.var),
                "var_full": repr(v.var_full),
                "var_gap": repr(v.var_gap),
                "var_excluded": str(v.excluded),
                "es_level": repr(v.es_level),
                "es": repr(v.es),
                "es_full": repr(v.es_full),
                "es_gap": repr(v.es_gap),
            }
        )
    return fields
