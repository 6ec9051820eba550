"""``riskstream options price``: prices and Greeks of listed options from two CSV files.

The contract is DESIGN.md's "Options" section; the reading, validation and pricing are
:mod:`engine.options.tables`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from engine.cli.app import app

options_app = typer.Typer(
    help="Listed options: prices and Greeks (European closed form, American by Barone-Adesi–Whaley).",
    no_args_is_help=True,
)
app.add_typer(options_app, name="options")


@options_app.command("price")
def price(
    instruments: Path = typer.Option(
        ...,
        "--instruments",
        help="Instruments CSV: instrument,underlying,strike,expiry,right,style "
        "(right call/put, style european/american, expiry YYYY-MM-DD, at 00:00 UTC).",
    ),
    market: Path = typer.Option(
        ...,
        "--market",
        help="Market CSV: timestamp,underlying,spot,rate,dividend_yield,vol "
        "(continuously compounded rate and yield, annualised vol, decimals).",
    ),
    out: Path = typer.Option(
        ..., "--out", help="Output CSV: timestamp,instrument,price,delta,gamma,vega,theta,rho."
    ),
) -> None:
    """Price and Greeks of every option at every market row of its underlying before expiry.

    Per unit of underlying; time to expiry Actual/365 Fixed from the row's timestamp; vega
    and rho per 1.00 change of vol and rate, theta per year (QuantLib's conventions).
    European options in closed form (Black–Scholes–Merton with the dividend yield),
    American ones by Barone-Adesi–Whaley.
    """
    from engine.options.tables import price_table, read_instruments, read_market

    table = price_table(read_instruments(instruments), read_market(market), source=str(market))
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)  # shortest exact repr: numbers round-trip to the bit
    typer.echo(f"wrote {len(table):,} rows to {out}", err=sys.stderr.isatty())
