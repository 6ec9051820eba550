"""Scenario moves on today's market: the (cells x symbols) move matrix, proxies flagged.

:class:`Market` is what a scenario needs to know about today: each symbol's last price
and the engine's EWMA covariance of grid log returns
(:class:`~engine.core.portfolio.PortfolioBook`, the one ``riskstream portfolio var``
uses). :func:`scenario_moves` turns a scenario into relative price moves of every market
symbol, one row per P&L column (a grid has one per cell), with a :class:`Source` code
saying how each move was obtained.

Proxy and propagation rules (in log-return space, where the covariance lives: a
relative move ``m`` is the log move ``l = log(1 + m)``, and a propagated log move maps
back as ``m = exp(l) - 1``, so no proxied price goes negative):

* **beta** (historical replay of a symbol the window does not cover, and hypothetical
  ``beta`` propagation): ``l_u = beta_u * l_p`` with ``beta_u = C[u, p] / C[p, p]`` the
  regression beta of the symbol's grid returns on the proxy's under the EWMA covariance
  ``C``. When the proxy is not in the price file, or either has fewer than ``min_obs``
  grid returns, there is no beta to estimate: the symbol takes the proxy's move as is
  (beta 1) and is flagged :attr:`Source.UNIT_BETA`.
* **correlation** (hypothetical ``correlation`` propagation): the Gaussian conditional
  mean ``l_U = C[U, S] C[S, S]^+ l_S`` of the unshocked symbols ``U`` given the log moves
  ``l_S`` of the directly shocked symbols with history (``^+``: pseudo-inverse). With
  one shocked symbol it is the beta rule. Without a shocked symbol with history the
  unshocked symbols do not move (:attr:`Source.NONE`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from engine.errors import InputError
from engine.stress.scenarios import (
    HistoricalScenario,
    HypotheticalScenario,
    Scenario,
    SpotVolGrid,
)


class Source(IntEnum):
    """How a symbol's move in a scenario was obtained; everything above DIRECT is a proxy."""

    NONE = 0
    """Not moved: not shocked and nothing propagated to it."""
    DIRECT = 1
    """Shocked directly, or covered by the historical window."""
    BETA = 2
    """The proxy's log move times the symbol's estimated beta."""
    UNIT_BETA = 3
    """The proxy's move as is: no common history to estimate a beta."""
    CORRELATION = 4
    """The Gaussian conditional mean given the directly shocked symbols."""

    @property
    def label(self) -> str:
        """Lower-case name for files and reports (``unit-beta``)."""
        return self.name.lower().replace("_", "-")


@dataclass(frozen=True, slots=True)
class Market:
    """Today's prices and covariance of the symbols of a price file.

    ``prices`` are each symbol's last price; ``cov`` the EWMA covariance of grid log
    returns (per grid interval, NaN for a symbol without returns); ``observations`` the
    number of grid returns behind each symbol's variance; symbols with fewer than
    ``min_obs`` count as without history. ``asset_classes`` maps symbols to classes for
    asset-class shocks.
    """

    symbols: tuple[str, ...]
    prices: np.ndarray
    cov: np.ndarray
    observations: np.ndarray
    min_obs: int = 20
    asset_classes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.symbols)
        if self.prices.shape != (n,) or self.cov.shape != (n, n) or self.observations.shape != (n,):
            raise ValueError("prices, cov and observations must match the symbols")

    def slot(self, symbol: str) -> int | None:
        """The symbol's position, or None when the price file has no such symbol."""
        try:
            return self.symbols.index(symbol)
        except ValueError:
            return None

    @property
    def history(self) -> np.ndarray:
        """Boolean: the symbol has at least ``min_obs`` grid returns."""
        return (self.observations >= self.min_obs) & np.isfinite(np.diag(self.cov))


@dataclass(frozen=True, slots=True)
class ScenarioMoves:
    """Relative moves per P&L column (``names``) and market symbol.

    ``spot`` (cells x symbols) are relative price changes (fractions), ``vol`` absolute
    changes of annualised volatility, ``source`` the :class:`Source` code of each spot
    move, ``scenario`` the scenario id of each cell.
    """

    names: tuple[str, ...]
    scenario: tuple[str, ...]
    spot: np.ndarray
    vol: np.ndarray
    source: np.ndarray

    @classmethod
    def stack(cls, parts: Sequence[ScenarioMoves], n_symbols: int) -> ScenarioMoves:
        """Several scenarios' moves as one matrix, in order."""
        if not parts:
            empty = np.zeros((0, n_symbols))
            return cls((), (), empty, empty.copy(), np.zeros((0, n_symbols), np.int8))
        return cls(
            tuple(n for p in parts for n in p.names),
            tuple(s for p in parts for s in p.scenario),
            np.vstack([p.spot for p in parts]),
            np.vstack([p.vol for p in parts]),
            np.vstack([p.source for p in parts]),
        )


def library_moves(scenarios: Sequence[Scenario], market: Market) -> ScenarioMoves:
    """The moves of every scenario, stacked in order."""
    return ScenarioMoves.stack([scenario_moves(s, market) for s in scenarios], len(market.symbols))


def scenario_moves(scenario: Scenario, market: Market) -> ScenarioMoves:
    """One scenario's relative moves of every market symbol (see the module docstring)."""
    if isinstance(scenario, SpotVolGrid):
        return _grid(scenario, market)
    n = len(market.symbols)
    spot, source = np.zeros(n), np.zeros(n, np.int8)
    if isinstance(scenario, HistoricalScenario):
        for symbol, move in scenario.moves.items():
            _set(market, spot, source, symbol, move)
        _beta(market, spot, source, scenario.proxy, scenario.moves[scenario.proxy])
    elif isinstance(scenario, HypotheticalScenario):
        _hypothetical(scenario, market, spot, source)
    else:  # pragma: no cover - the union is closed
        raise TypeError(f"not a scenario: {type(scenario).__name__}")
    return ScenarioMoves(
        (scenario.id,), (scenario.id,), spot[None, :], np.zeros((1, n)), source[None, :]
    )


def propagation_basis(market: Market, shocked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(targets, B)``: the log moves of ``targets`` are ``B @ l_S`` given shocked ``S``.

    ``shocked`` are market slots with history; targets are the other symbols with
    history; ``B = C[U, S] C[S, S]^+`` (the conditional-mean regression matrix).
    """
    history = market.history
    targets = np.flatnonzero(history & ~np.isin(np.arange(len(history)), shocked))
    if not len(shocked) or not len(targets):
        return targets, np.zeros((len(targets), len(shocked)))
    c = market.cov
    basis = c[np.ix_(targets, shocked)] @ np.linalg.pinv(c[np.ix_(shocked, shocked)])
    return targets, basis


# ---- internals -----------------------------------------------------------------------------


def _set(market: Market, spot: np.ndarray, source: np.ndarray, symbol: str, move: float) -> None:
    slot = market.slot(symbol)
    if slot is not None:
        spot[slot], source[slot] = move, Source.DIRECT


def _beta(market: Market, spot: np.ndarray, source: np.ndarray, proxy: str, move: float) -> None:
    """Every symbol not moved yet follows ``proxy`` (relative move ``move``) by its beta."""
    free = source == Source.NONE
    p = market.slot(proxy)
    history = market.history
    log_move = np.log1p(move)
    if p is not None and history[p] and market.cov[p, p] > 0.0:
        estimable = free & history
        beta = market.cov[:, p] / market.cov[p, p]
        spot[estimable] = np.expm1(beta[estimable] * log_move)
        source[estimable] = Source.BETA
        free &= ~estimable
    spot[free] = move
    source[free] = Source.UNIT_BETA


def _hypothetical(
    scenario: HypotheticalScenario, market: Market, spot: np.ndarray, source: np.ndarray
) -> None:
    factor_moves: dict[str, float] = {}
    for shock in scenario.shocks:
        if shock.target == "asset_class":
            for symbol, cls in market.asset_classes.items():
                slot = market.slot(symbol)
                if cls == shock.name and slot is not None:
                    spot[slot] = shock.relative(float(market.prices[slot]))
                    source[slot] = Source.DIRECT
            continue
        slot = market.slot(shock.name)
        if slot is None:
            if shock.type == "absolute":
                raise InputError(
                    f"scenario {scenario.id}: the absolute shock of {shock.name} needs its "
                    "price, and the price file has none"
                )
            factor_moves[shock.name] = shock.value
            continue
        move = shock.relative(float(market.prices[slot]))
        spot[slot], source[slot] = move, Source.DIRECT
        factor_moves[shock.name] = move
    if scenario.propagation == "beta":
        assert scenario.proxy is not None
        _beta(market, spot, source, scenario.proxy, factor_moves[scenario.proxy])
    elif scenario.propagation == "correlation":
        shocked = np.flatnonzero((source == Source.DIRECT) & market.history)
        targets, basis = propagation_basis(market, shocked)
        keep = source[targets] == Source.NONE
        targets, basis = targets[keep], basis[keep]
        if len(targets) and len(shocked):
            spot[targets] = np.expm1(basis @ np.log1p(spot[shocked]))
            source[targets] = Source.CORRELATION


def _grid(grid: SpotVolGrid, market: Market) -> ScenarioMoves:
    n = len(market.symbols)
    scope = np.ones(n, bool)
    if grid.symbols:
        scope = np.isin(np.array(market.symbols, dtype=object), list(grid.symbols))
    cells = [(s, v) for s in grid.spot for v in grid.vol]
    spot = np.array([s for s, _ in cells])[:, None] * scope[None, :]
    vol = np.array([v for _, v in cells])[:, None] * scope[None, :]
    source = np.where(scope, Source.DIRECT, Source.NONE).astype(np.int8)
    return ScenarioMoves(
        grid.cells(),
        (grid.id,) * len(cells),
        spot.astype(float),
        vol.astype(float),
        np.repeat(source[None, :], len(cells), axis=0),
    )
