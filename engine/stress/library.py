"""The scenario library: TOML files, one scenario each, validated on load.

The bundled library ships as package data in ``engine/stress/library/``; ``--scenarios``
points at another file or directory. Every problem is a :class:`ScenarioError` (an
:class:`~engine.errors.InputError`, so the CLI exits with 2) naming the file and the
field, e.g. ``lehman.toml: window.start: expected a date like 2008-09-12``.

A file's fields (unknown fields are refused, so a typo never passes silently)::

    id = "hist-2008-lehman"          # letters, digits, '-', '_', '.'
    version = 1                      # integer >= 1, bumped when the numbers change
    status = "approved"              # draft | approved | retired
    kind = "historical"              # historical | hypothetical | grid
    description = "..."              # says which data calibrated it

    # historical
    proxy = "SPX"                    # a symbol of [moves]
    [window]
    start = 2008-09-12               # TOML dates; moves are close(start) -> close(end)
    end = 2008-10-10
    source = "arch:sp500+nasdaq"
    [moves]                          # relative moves (fractions), > -1
    SPX = -0.2935

    # hypothetical
    propagation = "beta"             # none | beta | correlation
    proxy = "SPX"                    # the factor 'beta' follows
    [[shocks]]
    target = "factor"                # symbol | asset_class | factor
    name = "SPX"
    value = -0.2                     # fraction, or price units when type = "absolute"
    type = "relative"

    # grid
    spot = [-0.2, -0.1, 0.0, 0.1]    # relative moves
    vol = [0.0, 0.05, 0.10]          # absolute changes of annualised vol
    symbols = []                     # empty: every symbol
"""

from __future__ import annotations

import contextlib
import math
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn, cast

from engine.errors import InputError
from engine.stress.calibrate import SOURCES, source_names
from engine.stress.scenarios import (
    PROPAGATIONS,
    SHOCK_TYPES,
    STATUSES,
    TARGETS,
    HistoricalScenario,
    HypotheticalScenario,
    Propagation,
    Scenario,
    Shock,
    ShockType,
    SpotVolGrid,
    Status,
    Target,
    Window,
)

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_COMMON = {"id", "version", "status", "kind", "description"}
_FIELDS = {
    "historical": _COMMON | {"proxy", "window", "moves"},
    "hypothetical": _COMMON | {"propagation", "proxy", "shocks"},
    "grid": _COMMON | {"spot", "vol", "symbols"},
}


class ScenarioError(InputError):
    """A scenario file is missing, unreadable or invalid; the message names file and field."""


@dataclass(frozen=True, slots=True)
class Library:
    """Validated scenarios in id order, each with the file it came from."""

    scenarios: tuple[Scenario, ...]
    files: Mapping[str, Path]

    def __iter__(self) -> Iterator[Scenario]:
        return iter(self.scenarios)

    def __len__(self) -> int:
        return len(self.scenarios)

    def get(self, scenario_id: str) -> Scenario:
        """The scenario ``scenario_id``; :class:`ScenarioError` listing the known ids if absent."""
        for scenario in self.scenarios:
            if scenario.id == scenario_id:
                return scenario
        known = ", ".join(s.id for s in self.scenarios)
        raise ScenarioError(f"no scenario {scenario_id!r} in the library (known: {known})")

    def runnable(self, *, include_draft: bool = False) -> tuple[Scenario, ...]:
        """Approved scenarios (and drafts when asked); retired ones never run."""
        wanted = {"approved", "draft"} if include_draft else {"approved"}
        return tuple(s for s in self.scenarios if s.status in wanted)


def bundled_dir() -> Path:
    """The directory of the library shipped with the package."""
    return Path(str(resources.files("engine.stress") / "library"))


def load_library(path: Path | str | None = None) -> Library:
    """Every ``*.toml`` of ``path`` (a file or directory; default the bundled library).

    Raises
    ------
    ScenarioError
        If the path does not exist, holds no scenario file, a file is invalid, or two
        scenarios (or two grid cells) share a name.
    """
    root = bundled_dir() if path is None else Path(path)
    if root.is_dir():
        files = sorted(root.glob("*.toml"))
        if not files:
            raise ScenarioError(f"{root}: no scenario files (*.toml)")
    elif root.is_file():
        files = [root]
    else:
        raise ScenarioError(f"scenario path not found: {root}")
    seen: dict[str, Path] = {}
    cells: dict[str, Path] = {}
    scenarios = []
    for file in files:
        scenario = load_scenario(file)
        if scenario.id in seen:
            raise ScenarioError(
                f"{file}: id: {scenario.id!r} is also the id in {seen[scenario.id]}"
            )
        seen[scenario.id] = file
        for cell in scenario.cells():
            if cell in cells:
                raise ScenarioError(f"{file}: scenario name {cell!r} is also used in {cells[cell]}")
            cells[cell] = file
        scenarios.append(scenario)
    scenarios.sort(key=lambda s: s.id)
    return Library(tuple(scenarios), seen)


def load_scenario(file: Path) -> Scenario:
    """One scenario file, validated (see the module docstring for its fields)."""
    try:
        doc = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{file}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{file}: cannot be read: {exc}") from None
    return parse_scenario(doc, file)


def parse_scenario(doc: Mapping[str, Any], file: Path | str) -> Scenario:
    """A scenario from a parsed TOML document; errors name ``file`` and the field."""
    f = _Fields(doc, str(file))
    kind = f.choice("kind", tuple(_FIELDS))
    unknown = sorted(set(doc) - _FIELDS[kind])
    if unknown:
        allowed = ", ".join(sorted(_FIELDS[kind]))
        raise ScenarioError(
            f"{file}: unknown field(s) {', '.join(unknown)} for a {kind} scenario (allowed: {allowed})"
        )
    scenario_id = f.text("id")
    if not _ID.match(scenario_id):
        f.fail(
            "id",
            "use letters, digits, '-', '_' or '.' (at most 64), starting with a letter or digit",
        )
    version = doc.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        f.fail("version", "expected an integer >= 1")
    header = (
        scenario_id,
        version,
        f.text("description"),
        cast(Status, f.choice("status", STATUSES)),
    )
    if kind == "historical":
        return _historical(f, header)
    if kind == "hypothetical":
        return _hypothetical(f, header)
    return _grid(f, header)


def _historical(f: _Fields, header: tuple[str, int, str, Status]) -> HistoricalScenario:
    window = f.table("window")
    w = _Fields(window, f.file, "window.")
    unknown = sorted(set(window) - {"start", "end", "source"})
    if unknown:
        f.fail("window", f"unknown field(s) {', '.join(unknown)} (allowed: start, end, source)")
    start, end = w.day("start"), w.day("end")
    if not start < end:
        f.fail("window.end", f"must be after window.start ({start.isoformat()})")
    moves = {name: f.move(f"moves.{name}", value) for name, value in f.table("moves").items()}
    if not moves:
        f.fail("moves", "expected at least one symbol = relative move")
    proxy = f.text("proxy")
    if proxy not in moves:
        f.fail("proxy", f"{proxy!r} is not one of the [moves] symbols ({', '.join(moves)})")
    source = w.text("source")
    try:
        covered = {SOURCES[name].symbol for name in source_names(source)}
    except InputError as exc:
        f.fail("window.source", str(exc))
    if set(moves) != covered:
        f.fail(
            "moves", f"expected exactly the symbols of window.source ({', '.join(sorted(covered))})"
        )
    return HistoricalScenario(*header, Window(start, end, source), moves, proxy)


def _hypothetical(f: _Fields, header: tuple[str, int, str, Status]) -> HypotheticalScenario:
    raw = f.doc.get("shocks")
    if not isinstance(raw, list) or not raw or not all(isinstance(s, dict) for s in raw):
        f.fail("shocks", "expected one or more [[shocks]] tables")
    shocks = []
    for k, item in enumerate(raw):
        s = _Fields(item, f.file, f"shocks[{k}].")
        unknown = sorted(set(item) - {"target", "name", "value", "type"})
        if unknown:
            s.fail(
                "", f"unknown field(s) {', '.join(unknown)} (allowed: target, name, value, type)"
            )
        shock_type = cast(ShockType, s.choice("type", SHOCK_TYPES, default="relative"))
        value = s.number("value")
        if shock_type == "relative":
            value = s.move("value", value)
        shocks.append(
            Shock(cast(Target, s.choice("target", TARGETS)), s.text("name"), value, shock_type)
        )
    keys = [(s.target, s.name) for s in shocks]
    for k, key in enumerate(keys):
        if key in keys[:k]:
            f.fail(f"shocks[{k}]", f"{key[0]} {key[1]!r} is shocked twice")
    propagation = cast(Propagation, f.choice("propagation", PROPAGATIONS, default="none"))
    proxy = None
    if propagation == "beta":
        proxy = f.text("proxy")
        names = {s.name for s in shocks if s.target != "asset_class"}
        if proxy not in names:
            f.fail("proxy", f"{proxy!r} must be a shocked symbol or factor for beta propagation")
    elif "proxy" in f.doc:
        f.fail("proxy", "only used with propagation = 'beta'")
    return HypotheticalScenario(*header, tuple(shocks), propagation, proxy)


def _grid(f: _Fields, header: tuple[str, int, str, Status]) -> SpotVolGrid:
    spot = tuple(f.move(f"spot[{k}]", v) for k, v in enumerate(f.numbers("spot")))
    vol = tuple(f.numbers("vol"))
    for name, values in (("spot", spot), ("vol", vol)):
        if len(set(values)) != len(values):
            f.fail(name, "values repeat")
    symbols = f.doc.get("symbols", [])
    if not isinstance(symbols, list) or not all(isinstance(s, str) and s for s in symbols):
        f.fail("symbols", "expected a list of symbol names (empty: every symbol)")
    return SpotVolGrid(*header, spot, vol, tuple(symbols))


class _Fields:
    """Typed access to a TOML table with errors that name the file and the field."""

    def __init__(self, doc: Mapping[str, Any], file: str, prefix: str = "") -> None:
        self.doc, self.file, self.prefix = doc, file, prefix

    def fail(self, name: str, problem: str) -> NoReturn:
        where = (self.prefix + name).rstrip(".")
        raise ScenarioError(f"{self.file}: {where}: {problem}")

    def text(self, name: str) -> str:
        value = self.doc.get(name)
        if not isinstance(value, str) or not value.strip():
            self.fail(name, "expected a non-empty string" if name in self.doc else "missing")
        return value.strip()

    def choice(self, name: str, options: Iterable[str], default: str | None = None) -> str:
        options = tuple(options)
        if name not in self.doc and default is not None:
            return default
        value = self.doc.get(name)
        if value not in options:
            got = "missing" if name not in self.doc else f"got {_show(value)}"
            self.fail(name, f"{got}; expected one of {', '.join(options)}")
        return cast(str, value)

    def number(self, name: str) -> float:
        value = self.doc.get(name)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            self.fail(name, "expected a finite number" if name in self.doc else "missing")
        return float(value)

    def numbers(self, name: str) -> list[float]:
        values = self.doc.get(name)
        if not isinstance(values, list) or not values:
            self.fail(name, "expected a non-empty list of numbers")
        out = []
        for k, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                self.fail(f"{name}[{k}]", "expected a finite number")
            out.append(float(v))
        return out

    def move(self, name: str, value: Any) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            self.fail(name, "expected a finite number (a relative move, fraction)")
        if value <= -1.0:
            self.fail(name, f"relative move {value} would make the price zero or negative")
        return float(value)

    def day(self, name: str) -> date:
        value = self.doc.get(name)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = date.fromisoformat(value)
        if not isinstance(value, date) or hasattr(value, "hour"):
            self.fail(name, "expected a date like 2008-09-12")
        return value

    def table(self, name: str) -> Mapping[str, Any]:
        value = self.doc.get(name)
        if not isinstance(value, dict):
            self.fail(name, f"expected a [{self.prefix}{name}] table")
        return value


def _show(value: Any) -> str:
    """A value for an error message: text quoted, a table or list by its kind, no reprs."""
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return str(value)
