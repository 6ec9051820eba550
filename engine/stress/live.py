"""Stress in the stream: every portfolio's scenario P&L, throttled, with a loss limit.

:class:`StressMonitor` is pure (no Redis, no Kafka): the portfolio service hands it its
:class:`~engine.core.portfolio.PortfolioBook` after each poll, and it answers with a
:class:`StressSnapshot` per portfolio and the ``stress_limit`` alerts that fired. The
numbers are those of ``riskstream stress run`` on the same prices and positions: the
same library, the same move matrix (:func:`~engine.stress.moves.library_moves`) on the
market of the book's latest close (:func:`~engine.stress.market.market_from_book`). Option
positions, when the service holds reference data (:class:`~engine.stress.option_pnl.OptionHoldings`
from its Greeks monitor), are revalued fully in every cell
(:func:`~engine.stress.option_pnl.option_stress_pnl`) and added to their portfolio's P&L.

Throttling is in event time: a recomputation happens when the newest released tick is at
least ``every_ms`` after the one that triggered the previous recomputation (``0``: on
every poll that released ticks). The limit is a loss in currency units; a portfolio
whose worst scenario loses more than ``limit`` raises one ``stress_limit`` alert when it
crosses into breach, none while it stays there, and is re-armed when it comes back
within the limit. What the monitor remembers (the last recomputation, the portfolios in
breach) is part of the service's saved state, so a restart neither repeats nor loses an
alert.

In a book with a base currency (FX pairs as risk factors), the exposures are the book's
factor exposures at its latest close, in the base currency (:func:`factor_exposures`): a
scenario moving an FX pair reaches every holding converted through it. Option positions
are revalued in their price currency and converted at the live rate of the latest close,
the rate moving with the scenario's FX moves (:mod:`engine.stress.option_pnl`); an option
whose currency has no rate is left out and its currency listed in ``fx_missing``.
:func:`stress_book` is that computation, shared with ``riskstream stress run
--base-currency``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from engine.alerts import Alert, alert_id
from engine.core.portfolio import PortfolioBook
from engine.stress.market import market_from_book
from engine.stress.moves import Market, ScenarioMoves, Source, library_moves
from engine.stress.option_pnl import OptionHoldings
from engine.stress.pnl import BookStress, Exposures, book_stress
from engine.stress.scenarios import Scenario, SpotVolGrid

KIND = "stress_limit"


@dataclass(frozen=True, slots=True)
class StressSnapshot:
    """One portfolio's P&L (currency units, negative = loss) in every scenario cell at ``ts_ms``.

    ``proxied`` counts the held positions whose move (an option's: its underlying's) in
    some scenario is a proxy; ``options`` the option positions revalued in ``pnl`` and
    ``options_excluded`` those left out (expired or unpriced, see
    :mod:`engine.stress.option_pnl`). In a book with a base currency, ``currency`` is that
    currency (of ``pnl``) and ``fx_missing`` the currencies of the options left out for
    want of a rate.
    """

    ts_ms: int
    portfolio: str
    names: tuple[str, ...]
    pnl: np.ndarray
    proxied: int
    options: int = 0
    options_excluded: int = 0
    currency: str | None = None
    fx_missing: tuple[str, ...] = ()

    @property
    def worst(self) -> tuple[str, float]:
        """The scenario cell with the lowest P&L and that P&L."""
        k = int(np.argmin(self.pnl))
        return self.names[k], float(self.pnl[k])


def factor_exposures(book: PortfolioBook, market: Market) -> Exposures:
    """A base-currency book's exposures at its latest close, per risk factor.

    In a book with a base currency, a holding quoted in another currency is exposed to
    its own symbol and to the FX pairs it is converted through
    (:class:`~engine.core.portfolio.PortfolioBook`); the scenario P&L of a relative move
    ``m`` of each factor is ``sum_f x_f m_f`` in the base currency, so a scenario that
    moves a pair reaches every holding converted through it. Portfolios without
    exposures at the latest close (warming up, or a missing FX rate) are left out.
    """
    slots = {s: i for i, s in enumerate(market.symbols)}
    names = tuple(
        p
        for p in sorted(book.exposures)
        if book.positions.get(p) and set(book.exposures[p]) <= set(slots)
    )
    matrix = np.zeros((len(names), len(market.symbols)))
    for row, name in enumerate(names):
        for symbol, x in book.exposures[name].items():
            matrix[row, slots[symbol]] += x
    return Exposures(names, matrix, matrix)


def _spare_fx_pairs(
    moves: ScenarioMoves, market: Market, scenarios: Sequence[Scenario], pairs: set[str]
) -> None:
    """Leave FX pairs out of the spot-vol grids that move "every symbol" (in place).

    A grid without a symbol list shocks the underlyings' spot; moving the FX pairs by the
    same fraction would cancel the shock of every holding converted through them (a
    dollar index +10% and GBPUSD +10% is no change in pounds). Grids that name pairs and
    the other scenarios are left as they are.
    """
    every = {g.id for g in scenarios if isinstance(g, SpotVolGrid) and not g.symbols}
    rows = [i for i, sid in enumerate(moves.scenario) if sid in every]
    cols = [i for i, symbol in enumerate(market.symbols) if symbol in pairs]
    if rows and cols:
        cells = np.ix_(rows, cols)
        moves.spot[cells] = 0.0
        moves.vol[cells] = 0.0
        moves.source[cells] = Source.NONE


def stress_book(
    book: PortfolioBook,
    scenarios: Sequence[Scenario],
    market: Market,
    options: OptionHoldings | None = None,
) -> tuple[BookStress, ScenarioMoves] | None:
    """Every portfolio's P&L in every cell of ``scenarios`` on the market of ``book``.

    ``book`` holds the spot positions, ``market`` is :func:`market_from_book` of it, and
    ``options`` (when given) the option positions and their reference data. A portfolio
    with a spot position in a symbol that has no close yet (or, in a base-currency book,
    without exposures at the latest close: warming up or missing an FX rate) is left out,
    options included. In a base-currency book the options are converted into the base
    (their ``base_currency`` is set to the book's). ``None`` when nothing is held.
    """
    known = set(market.symbols)
    held = {p: h for p, h in book.positions.items() if h}
    incomplete = {p for p, h in held.items() if not set(h) <= known}  # a close is missing
    x = None
    if book.base_currency is None:
        linear = {p: h for p, h in held.items() if p not in incomplete}
    else:
        x = factor_exposures(book, market)  # leaves out books missing an FX rate too
        incomplete |= set(held) - set(x.portfolios)
        linear = {p: held[p] for p in x.portfolios}
    if options is not None:
        kept = {p: h for p, h in options.positions.items() if p not in incomplete}
        options = replace(options, positions=kept, base_currency=book.base_currency)
    if not linear and (options is None or not options.portfolios()):
        return None
    moves = library_moves(scenarios, market)
    if book.base_currency is not None:
        _spare_fx_pairs(moves, market, scenarios, set(book.pairs))
    return book_stress(linear, options, market, moves, exposure=x), moves


def library_version(scenarios: Sequence[Scenario]) -> str:
    """A short digest of the scenarios' ids and versions: the alerts' ``model_version``.

    >>> from engine.stress.scenarios import SpotVolGrid
    >>> library_version([SpotVolGrid("g", 1, "", "approved", (0.1,), (0.0,))])
    'g@1:b663b6be'
    """
    text = ",".join(f"{s.id}@{s.version}" for s in scenarios)
    digest = hashlib.blake2b(text.encode(), digest_size=4).hexdigest()
    head = text if len(text) <= 40 else f"{len(scenarios)} scenarios"
    return f"{head}:{digest}"


@dataclass
class StressMonitor:
    """Recompute scenario P&L of every portfolio of a book; raise ``stress_limit`` alerts."""

    scenarios: Sequence[Scenario]
    every_ms: int = 0
    limit: float | None = None
    asset_classes: Mapping[str, str] = field(default_factory=dict)
    last_ms: int | None = None
    breached: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.every_ms < 0:
            raise ValueError(f"every_ms must be >= 0, got {self.every_ms}")
        if self.limit is not None and not self.limit > 0.0:
            raise ValueError(f"the stress loss limit must be a positive amount, got {self.limit}")
        self.version = library_version(self.scenarios)

    def due(self, ts_ms: int) -> bool:
        """Whether a recomputation triggered by a tick at ``ts_ms`` is due."""
        return self.last_ms is None or ts_ms - self.last_ms >= self.every_ms

    def evaluate(
        self, book: PortfolioBook, ts_ms: int, options: OptionHoldings | None = None
    ) -> tuple[list[StressSnapshot], list[Alert]]:
        """Snapshots of every portfolio with positions, and the alerts of new breaches.

        ``book`` holds the spot positions; ``options`` (when given) the option positions
        and their reference data. A portfolio with a spot position in a symbol that has
        no close yet is left out, options included.
        """
        self.last_ms = ts_ms
        market = market_from_book(book, self.asset_classes)
        done = stress_book(book, self.scenarios, market, options)
        if done is None:
            return [], []
        stress, moves = done
        snapshots = [
            StressSnapshot(
                ts_ms,
                name,
                moves.names,
                stress.pnl[k],
                int(stress.proxied[k]),
                int(stress.options[k]),
                int(stress.options_excluded[k]),
                book.base_currency,
                stress.fx_missing[k],
            )
            for k, name in enumerate(stress.portfolios)
        ]
        return snapshots, self._alerts(snapshots)

    def _alerts(self, snapshots: list[StressSnapshot]) -> list[Alert]:
        if self.limit is None:
            return []
        alerts = []
        for snap in snapshots:
            scenario, pnl = snap.worst
            if -pnl > self.limit and snap.portfolio not in self.breached:
                self.breached.add(snap.portfolio)
                alerts.append(
                    Alert(
                        alert_id(KIND, snap.portfolio, f"loss>{self.limit!r}", str(snap.ts_ms)),
                        KIND,
                        snap.portfolio,
                        snap.ts_ms,
                        "critical",
                        -pnl,
                        self.limit,
                        "stress-library",
                        self.version,
                        {"scenario": scenario, "pnl": pnl},
                    )
                )
            elif -pnl <= self.limit:
                self.breached.discard(snap.portfolio)
        return alerts

    def to_state(self) -> dict[str, Any]:
        """What a restart needs: the last recomputation and the portfolios in breach."""
        return {"last_ms": self.last_ms, "breached": sorted(self.breached)}

    def restore(self, state: Mapping[str, Any] | None) -> None:
        """Continue from :meth:`to_state` (``None``: nothing saved yet)."""
        if state:
            self.last_ms = state["last_ms"]
            self.breached = set(state["breached"])


def snapshot_fields(snap: StressSnapshot) -> dict[str, str]:
    """The Redis hash ``riskstream:stress:<portfolio>``: ``ts``, ``worst_scenario``,
    ``worst_pnl``, ``proxied``, one ``pnl:<scenario>`` field per scenario cell, and, for a
    portfolio holding options, ``options`` and ``options_excluded``; for a portfolio
    holding options in a book with a base currency also ``currency`` and ``fx_missing``
    (``;``-separated, empty when every option's currency has a rate)."""
    from engine.boundary.timeutil import format_ts

    scenario, pnl = snap.worst
    fields = {
        "ts": format_ts(snap.ts_ms),
        "ts_ms": str(snap.ts_ms),
        "worst_scenario": scenario,
        "worst_pnl": repr(pnl),
        "proxied": str(snap.proxied),
    }
    if snap.options or snap.options_excluded:
        fields["options"] = str(snap.options)
        fields["options_excluded"] = str(snap.options_excluded)
        if snap.currency is not None:
            fields["currency"] = snap.currency
            fields["fx_missing"] = ";".join(snap.fx_missing)
    fields.update({f"pnl:{n}": repr(float(v)) for n, v in zip(snap.names, snap.pnl, strict=True)})
    return fields
