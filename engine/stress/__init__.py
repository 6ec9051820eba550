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
from engine.stress.scenarios import (
    HistoricalScenario,
    HypotheticalScenario,
    Scenario,
    Shock,
    SpotVolGrid,
    Window,
)

__all__ = [
    "HistoricalScenario",
    "HypotheticalScenario",
    "Library",
    "Scenario",
    "ScenarioError",
    "Shock",
    "SpotVolGrid",
    "Window",
    "load_library",
]
