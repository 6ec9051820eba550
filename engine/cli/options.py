"""``riskstream options price``: prices and Greeks of listed options from two CSV files.

The contract is DESIGN.md's "Options" section; the reading, validation and pricing are
:mod:`engine.options.tables`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import typer

from engine.cli.app import command_group
from engine.errors import InputError

options_app = command_group(
    "options",
    "Listed options: prices and Greeks (European closed form, American by Barone-Adesi–Whaley).",
)


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


@options_app.command("greeks")
def greeks(
    positions: Path = typer.Option(
        ...,
        "--positions",
        help="Positions CSV portfolio,symbol,quantity[,timestamp] (contracts; negative = short).",
    ),
    instruments: Path = typer.Option(
        ...,
        "--instruments",
        help="Instruments CSV: the options price file with optional kind,currency,multiplier,"
        "calendar,vol columns (kind defaults to option).",
    ),
    market: Path = typer.Option(
        ..., "--market", help="Market CSV: timestamp,underlying,spot,rate,dividend_yield,vol."
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        help="Output CSV: timestamp,portfolio,underlying,value,delta,delta_units,gamma,vega,"
        "theta,rho,options,expired,unpriced (underlying * is the portfolio total).",
    ),
    base_currency: str = typer.Option(
        None,
        "--base-currency",
        help="Every amount in this currency (the portfolio service's RISKSTREAM_BASE_CURRENCY), "
        "converted at the spots of the FX pairs (kind fx, named <foreign><currency>) in "
        "--market; adds the columns currency,missing_fx. Default: each price currency.",
    ),
) -> None:
    """Portfolio Greeks in currency at every market timestamp: what the portfolio service streams.

    delta per 1.00 relative move of the underlying, gamma per (1.00 relative move)^2,
    vega and rho per 1.00 of vol and rate, theta per year; spot positions add their delta.
    """
    from engine.options.greeks_table import greeks_table
    from engine.options.reference import read_instrument_file
    from engine.options.tables import read_market
    from engine.portfolio.positions import read_positions

    if base_currency is not None and not re.fullmatch(r"[A-Z][A-Z0-9]{2,4}", base_currency):
        raise InputError(f"--base-currency {base_currency!r}: expected a currency code such as USD")
    table = greeks_table(
        read_positions(positions),
        read_instrument_file(instruments),
        read_market(market),
        base_currency=base_currency,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    typer.echo(f"wrote {len(table):,} rows to {out}", err=sys.stderr.isatty())
