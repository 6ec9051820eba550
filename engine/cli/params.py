"""Options that several ``riskstream`` commands share, written once as ``Annotated`` types.

A command declares ``prices: PricesFile`` (required) or ``scenarios: ScenariosPath = None``
and gets the same flag, help text and checks as every other command that reads that
input; the default, where there is one, stays with the command. The input formats are
DESIGN.md's "Offline CLI" and "Stress testing" contracts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

PRICES_HELP = (
    "Price CSV: a 'timestamp' column plus 'symbol' and 'price' columns (long; optional 'rv' realized "
    "variance) or one price column per symbol (wide)."
)
POSITIONS_HELP = (
    "Positions: CSV portfolio,symbol,quantity[,timestamp] (quantity in units, negative = short; "
    'a timestamp makes it effective from then) or JSON {"<portfolio>": {"<symbol>": quantity}}.'
)
SCENARIOS_HELP = "A scenario TOML file or a directory of them (default: the bundled library)."

PricesFile = Annotated[Path, typer.Option("--prices", help=PRICES_HELP)]
"""``--prices FILE``: the offline price file (long or wide)."""
PositionsFile = Annotated[Path, typer.Option("--positions", help=POSITIONS_HELP)]
"""``--positions FILE``: portfolio positions, CSV or JSON."""
ScenariosPath = Annotated[Path | None, typer.Option("--scenarios", help=SCENARIOS_HELP)]
"""``--scenarios PATH``: a scenario TOML file or directory; ``None`` is the bundled library."""
