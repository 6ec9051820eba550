"""Read the PromQL of the provisioned Grafana dashboards (deploy/grafana/dashboards)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"

#: Grafana's built-in interval variables and the value a test evaluates them with (a
#: scrape interval of 1 s: Grafana's $__rate_interval is at least four scrape intervals).
BUILTINS = {"$__rate_interval": "15s", "$__interval": "5s", "$__range": "5m"}
_LABEL_VALUES = re.compile(r"^label_values\((?P<metric>[^,]+),\s*(?P<label>\w+)\)$")


@dataclass(frozen=True, slots=True)
class Query:
    dashboard: str
    panel: str
    expr: str
    """As written in the dashboard."""

    def promql(self, variables: dict[str, str]) -> str:
        """The expression with Grafana's variables replaced (multi-value ones by ``.*``)."""
        text = self.expr
        for name, value in BUILTINS.items():
            text = text.replace(name, value)
        for name, value in variables.items():
            text = text.replace(f"${{{name}}}", value).replace(f"${name}", value)
        if "$" in text:
            raise ValueError(f"{self}: unresolved variable in {text!r}")
        return text


def dashboards() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def _panels(panels: list[dict]) -> Iterator[dict]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def queries() -> list[Query]:
    """Every panel target's ``expr``, and each query variable as a series selector."""
    found = []
    for name, board in dashboards().items():
        for panel in _panels(board["panels"]):
            for target in panel.get("targets", []):
                found.append(Query(name, panel["title"], target["expr"]))
        for var in board.get("templating", {}).get("list", []):
            if var.get("type") == "query":
                query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
                match = _LABEL_VALUES.match(query)
                if match is None:
                    raise ValueError(f"{name}: variable {var['name']}: unsupported query {query!r}")
                found.append(Query(name, f"variable {var['name']}", match["metric"]))
    return found


def variables(board: dict) -> dict[str, str]:
    """Template variables as a test evaluates them: every value (``.*``)."""
    return {v["name"]: ".*" for v in board.get("templating", {}).get("list", [])}
