"""Stress scenarios as values: historical windows, hypothetical shocks, spot x vol grids.

A scenario says how prices (and implied volatilities) move; it knows nothing of
portfolios. Every move is a *relative* price change, a fraction (``-0.10`` is a 10%
fall), unless a :class:`Shock` says ``absolute`` (a change in price units). Volatility
moves in a grid are absolute changes of annualised volatility in decimals (``0.05`` is
five vol points).

Three kinds, after ORE's shift scenarios and kinetix's library:

* :class:`HistoricalScenario` - the relative moves of real index closes from the close
  of ``window.start`` to the close of ``window.end``, calibrated from a named data set
  (:mod:`engine.stress.calibrate` recomputes them, a test checks the stored numbers).
  Held symbols the window does not cover follow ``proxy`` by their beta (the proxy rule,
  :mod:`engine.stress.moves`).
* :class:`HypotheticalScenario` - shocks per symbol, per asset class or per factor, with
  ``propagation`` to the symbols not shocked directly: ``none`` (they stay), ``beta``
  (each follows the factor ``proxy`` by its beta) or ``correlation`` (the Gaussian
  conditional mean given every directly shocked symbol).
* :class:`SpotVolGrid` - every combination of a spot move (the same relative move for
  every symbol in scope) and a volatility move: one cell per pair.

Each scenario has an ``id``, an integer ``version`` (bumped whenever its numbers change),
a ``description`` that says which data calibrated it, and a governance ``status``: only
``approved`` scenarios run by default, ``draft`` ones on request, ``retired`` ones never
(they stay in the library for the audit trail).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

Status = Literal["draft", "approved", "retired"]
ShockType = Literal["relative", "absolute"]
Target = Literal["symbol", "asset_class", "factor"]
Propagation = Literal["none", "beta", "correlation"]

STATUSES: tuple[Status, ...] = ("draft", "approved", "retired")
SHOCK_TYPES: tuple[ShockType, ...] = ("relative", "absolute")
TARGETS: tuple[Target, ...] = ("symbol", "asset_class", "factor")
PROPAGATIONS: tuple[Propagation, ...] = ("none", "beta", "correlation")


@dataclass(frozen=True, slots=True)
class Shock:
    """Move ``name`` (a symbol, an asset class or a factor symbol) by ``value``.

    ``value`` is a relative price change (fraction) when ``type`` is ``relative``, a
    change in price units when ``absolute``. A factor is a symbol, typically an index,
    that need not be held: its move reaches the held symbols through propagation only.
    """

    target: Target
    name: str
    value: float
    type: ShockType = "relative"

    def relative(self, price: float) -> float:
        """The relative move this shock means at ``price`` (fraction).

        >>> Shock("symbol", "SPX", -300.0, "absolute").relative(3000.0)
        -0.1
        """
        return self.value / price if self.type == "absolute" else self.value


@dataclass(frozen=True, slots=True)
class Window:
    """A historical window: moves are from the close of ``start`` to the close of ``end``.

    ``source`` names the data set that calibrated them (see
    :data:`engine.stress.calibrate.SOURCES`).
    """

    start: date
    end: date
    source: str


@dataclass(frozen=True, slots=True)
class ScenarioBase:
    """What every scenario has: identity, version, description and governance status."""

    id: str
    version: int
    description: str
    status: Status

    @property
    def kind(self) -> str:
        """``historical``, ``hypothetical`` or ``grid``."""
        raise NotImplementedError

    def cells(self) -> tuple[str, ...]:
        """The names of the P&L columns this scenario produces (one, or one per grid cell)."""
        return (self.id,)


@dataclass(frozen=True, slots=True)
class HistoricalScenario(ScenarioBase):
    """Replay of a real window: ``moves`` maps each covered symbol to its relative move.

    ``proxy`` is the covered symbol (an index) that uncovered held symbols follow by
    their beta.
    """

    window: Window
    moves: Mapping[str, float]
    proxy: str

    @property
    def kind(self) -> str:
        return "historical"


@dataclass(frozen=True, slots=True)
class HypotheticalScenario(ScenarioBase):
    """Shocks as stated, propagated to the symbols not shocked directly.

    ``proxy`` is the factor that ``beta`` propagation follows (a shocked symbol or
    factor); it is unused by ``none`` and ``correlation``.
    """

    shocks: tuple[Shock, ...]
    propagation: Propagation = "none"
    proxy: str | None = None

    @property
    def kind(self) -> str:
        return "hypothetical"


@dataclass(frozen=True, slots=True)
class SpotVolGrid(ScenarioBase):
    """Every (spot move, vol move) pair, applied to ``symbols`` (empty: every symbol).

    ``spot`` are relative price changes, ``vol`` absolute changes of annualised
    volatility (decimals). Cell names are ``<id>:spot<spot>:vol<vol>`` with signed
    numbers, e.g. ``grid:spot-0.10:vol+0.05``.
    """

    spot: tuple[float, ...]
    vol: tuple[float, ...]
    symbols: tuple[str, ...] = field(default=())

    @property
    def kind(self) -> str:
        return "grid"

    def cells(self) -> tuple[str, ...]:
        """One name per cell, spot-major.

        >>> SpotVolGrid("g", 1, "", "draft", (-0.1, 0.0), (0.05,)).cells()
        ('g:spot-0.10:vol+0.05', 'g:spot+0.00:vol+0.05')
        """
        return tuple(cell_name(self.id, s, v) for s in self.spot for v in self.vol)


def cell_name(scenario: str, spot: float, vol: float) -> str:
    """The name of one grid cell (moves to two decimals, signed)."""
    return f"{scenario}:spot{spot:+.2f}:vol{vol:+.2f}"


Scenario = HistoricalScenario | HypotheticalScenario | SpotVolGrid
