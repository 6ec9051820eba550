"""Stress testing and scenario analysis: scenarios as data, replay, reverse stress, stressed VaR.

The core (:mod:`~engine.stress.scenarios`, :mod:`~engine.stress.moves`,
:mod:`~engine.stress.pnl`, :mod:`~engine.stress.reverse`, :mod:`~engine.stress.stressed`)
is pure numpy: no files, no services. The library loader
(:mod:`~engine.stress.library`), the calibration from real data
(:mod:`~engine.stress.calibrate`), the market built from a price file
(:mod:`~engine.stress.market`) and the report (:mod:`~engine.stress.report`) sit at the
boundary; ``riskstream stress`` (:mod:`engine.cli.stress`) drives them.
"""

from __future__ import annotations

from engine.stress.library import Library, ScenarioError, load_library
from engine.stress.moves import Market, ScenarioMoves, Source, library_moves, scenario_moves
from engine.stress.pnl import Exposures, exposures, scenario_pnl
from engine.stress.reverse import (
    ReverseStress,
    min_norm_moves,
    min_norm_moves_numerical,
    reverse_stress,
)
from engine.stress.scenarios import (
    HistoricalScenario,
    HypotheticalScenario,
    Scenario,
    Shock,
    SpotVolGrid,
    Window,
)
from engine.stress.stressed import StressedRisk, stressed_risk, window_risk

__all__ = [
    "Exposures",
    "HistoricalScenario",
    "HypotheticalScenario",
    "Library",
    "Market",
    "ReverseStress",
    "Scenario",
    "ScenarioError",
    "ScenarioMoves",
    "Shock",
    "Source",
    "SpotVolGrid",
    "StressedRisk",
    "Window",
    "exposures",
    "library_moves",
    "load_library",
    "min_norm_moves",
    "min_norm_moves_numerical",
    "reverse_stress",
    "scenario_moves",
    "scenario_pnl",
    "stressed_risk",
    "window_risk",
]
