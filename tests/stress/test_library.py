"""The scenario library: bundled TOML files, validated on load, calibrated from real data."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.stress.calibrate import calibrate
from engine.stress.library import ScenarioError, load_library
from engine.stress.scenarios import HistoricalScenario, SpotVolGrid

LEHMAN = """\
id = "lehman"
version = 1
status = "approved"
kind = "historical"
description = "test"
proxy = "SPX"
[window]
start = 2008-09-12
end = 2008-10-10
source = "arch:sp500"
[moves]
SPX = -0.28
"""

SHOCK = """\
id = "crash"
version = 2
status = "draft"
kind = "hypothetical"
description = "test"
propagation = "beta"
proxy = "SPX"
[[shocks]]
target = "factor"
name = "SPX"
value = -0.2
"""


def _file(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_bundled_library_loads_with_every_kind_and_status():
    library = load_library()
    kinds = {s.kind for s in library}
    assert kinds == {"historical", "hypothetical", "grid"}
    assert {s.status for s in library} == {"draft", "approved", "retired"}
    ids = [s.id for s in library]
    assert len(ids) == len(set(ids)) and ids == sorted(ids)
    for wanted in ("hist-1987-black-monday", "hist-2008-lehman", "hist-2011-euro-crisis",
                   "hist-2020-covid", "hist-2022-rates-inflation"):  # fmt: skip
        assert wanted in ids


def test_retired_scenarios_never_run_and_drafts_only_on_request():
    library = load_library()
    approved = library.runnable()
    with_drafts = library.runnable(include_draft=True)
    assert all(s.status == "approved" for s in approved)
    assert {s.status for s in with_drafts} == {"approved", "draft"}
    assert "hypo-equity-crash-15" not in {s.id for s in with_drafts}


def test_every_historical_description_names_the_data_that_calibrated_it():
    for scenario in load_library():
        if isinstance(scenario, HistoricalScenario):
            assert "Calibrated from real closes" in scenario.description
            for source in scenario.window.source.split("+"):
                assert source in scenario.description


def test_every_stored_historical_move_is_what_the_real_data_says():
    """The library ships numbers; this recomputes each from its data set (1e-12)."""
    for scenario in load_library():
        if isinstance(scenario, HistoricalScenario):
            recomputed = calibrate(scenario.window)
            assert recomputed.keys() == scenario.moves.keys(), scenario.id
            for symbol, move in recomputed.items():
                assert scenario.moves[symbol] == pytest.approx(move, rel=1e-12, abs=0), (
                    scenario.id,
                    symbol,
                )


def test_grid_cells_are_named_by_their_spot_and_vol_moves():
    grid = load_library().get("grid-spot-vol")
    assert isinstance(grid, SpotVolGrid)
    cells = grid.cells()
    assert len(cells) == len(grid.spot) * len(grid.vol)
    assert "grid-spot-vol:spot-0.20:vol+0.05" in cells


def test_a_single_file_or_a_directory_can_replace_the_bundled_library(tmp_path):
    _file(tmp_path, LEHMAN, "a.toml")
    _file(tmp_path, SHOCK, "b.toml")
    assert [s.id for s in load_library(tmp_path)] == ["crash", "lehman"]
    assert [s.id for s in load_library(tmp_path / "b.toml")] == ["crash"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (LEHMAN.replace('kind = "historical"', 'kind = "what"'), "kind: got 'what'; expected one of"),
        (LEHMAN.replace("version = 1", "version = 0"), "version: expected an integer >= 1"),
        (LEHMAN.replace('status = "approved"', 'status = "live"'), "status: got 'live'"),
        (LEHMAN.replace('id = "lehman"', 'id = "a b"'), "id: use letters"),
        (LEHMAN.replace("start = 2008-09-12", 'start = "Sept 12"'), "window.start: expected a date"),
        (LEHMAN.replace("end = 2008-10-10", "end = 2008-09-01"), "window.end: must be after"),
        (LEHMAN.replace('source = "arch:sp500"', 'source = "yahoo"'), "window.source: unknown data set yahoo"),
        (LEHMAN.replace("SPX = -0.28", "SPX = -1.5"), "moves.SPX: relative move -1.5"),
        (LEHMAN.replace("SPX = -0.28", 'SPX = "down"'), "moves.SPX: expected a finite number"),
        (LEHMAN.replace("SPX = -0.28", "NDX = -0.28"), "proxy: 'SPX' is not one of the [moves]"),
        ("colour = 1\n" + LEHMAN, "unknown field(s) colour"),
        (LEHMAN.replace('description = "test"\n', ""), "description: missing"),
        (SHOCK.replace('target = "factor"', 'target = "sector"'), "shocks[0].target: got 'sector'"),
        (SHOCK.replace("value = -0.2", 'value = "x"'), "shocks[0].value: expected a finite number"),
        (SHOCK.replace('proxy = "SPX"', 'proxy = "NDX"'), "proxy: 'NDX' must be a shocked symbol"),
        (SHOCK.replace('propagation = "beta"', 'propagation = "magic"'), "propagation: got 'magic'"),
        (SHOCK + SHOCK[SHOCK.index("[[shocks]]"):], "shocks[1]: factor 'SPX' is shocked twice"),
        ("id = 'g'\nversion = 1\nstatus = 'draft'\nkind = 'grid'\ndescription = 'd'\nspot = []\nvol = [0.0]\n",
         "spot: expected a non-empty list"),
        ("id = [1\n", "not valid TOML"),
    ],
)  # fmt: skip
def test_a_bad_scenario_file_is_refused_naming_the_file_and_the_field(tmp_path, text, message):
    path = _file(tmp_path, text, "bad.toml")
    with pytest.raises(ScenarioError) as caught:
        load_library(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_two_scenarios_with_one_id_are_refused(tmp_path):
    _file(tmp_path, LEHMAN, "a.toml")
    _file(tmp_path, LEHMAN, "b.toml")
    with pytest.raises(ScenarioError, match=r"b\.toml: id: 'lehman' is also the id in .*a\.toml"):
        load_library(tmp_path)


def test_a_missing_path_or_an_empty_directory_is_refused(tmp_path):
    with pytest.raises(ScenarioError, match="scenario path not found"):
        load_library(tmp_path / "nope")
    with pytest.raises(ScenarioError, match="no scenario files"):
        load_library(tmp_path)
