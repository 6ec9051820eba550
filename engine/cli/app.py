"""The root Typer application; command modules attach themselves to it.

Heavy imports (numba kernels, faust, torch) happen inside commands, so ``--help``
stays fast.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="riskstream",
    help="Streaming risk engine: online volatility, VaR/ES and backtests, anomalies and credit risk "
    "over Kafka, Faust and Redis, or embedded with no services at all.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
