"""``riskstream options greeks`` offline: positions, instruments and market rows to a Greeks table.

The table is what the streaming portfolio service publishes in ``riskstream:greeks:<id>``
for the same inputs: both run a :class:`~engine.options.live.GreeksMonitor`.

Inputs:

- positions: ``portfolio,symbol,quantity[,timestamp]`` (as ``riskstream portfolio var``),
  quantities in contracts, each effective from its timestamp (from the start without one);
- instruments: :func:`engine.options.reference.read_instrument_file` (the ``options price``
  file, optional ``kind``, ``currency``, ``multiplier``, ``calendar``, ``vol`` columns);
- market: the ``options price`` market file ``timestamp,underlying,spot,rate,
  dividend_yield,vol``.

The Greeks are evaluated at every distinct market timestamp, in time order, on the latest
row of each underlying at or before it. Output columns :data:`COLUMNS`: per evaluation
and portfolio holding options, a total row (``underlying`` ``*``, ``delta_units`` empty:
units of different underlyings do not add up) then one row per underlying, sorted; units
as :mod:`engine.options.greeks` states (currency; delta per 1.00 relative move, gamma per
(1.00 relative move)^2, vega and rho per 1.00, theta per year).

With a base currency, every amount is in that currency, converted at the FX pairs' spots
of the market file (so it needs rows for the pairs, as it does for every held symbol),
and two more columns follow: ``currency`` and ``missing_fx`` (``;``-separated, empty
when every rate was known).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from engine.errors import InputError
from engine.options.greeks import GREEK_NAMES, UnderlyingMarket
from engine.options.live import GreeksMonitor
from engine.options.reference import Listing
from engine.options.tables import iso_utc

TOTAL = "*"
COLUMNS = (
    "timestamp",
    "portfolio",
    "underlying",
    *GREEK_NAMES,
    "options",
    "expired",
    "unpriced",
)


class PositionLike(Protocol):
    """A position as :class:`engine.portfolio.positions.Position` has it (``ts`` epoch ms)."""

    @property
    def portfolio(self) -> str: ...
    @property
    def symbol(self) -> str: ...
    @property
    def quantity(self) -> float: ...
    @property
    def ts(self) -> int: ...


def greeks_table(
    positions: Iterable[PositionLike],
    listings: Sequence[Listing],
    market: pd.DataFrame,
    base_currency: str | None = None,
) -> pd.DataFrame:
    """The Greeks table (see the module docstring).

    ``market`` as :func:`engine.options.tables.read_market` returns it.
    """
    markets: dict[str, UnderlyingMarket] = {}
    monitor = GreeksMonitor(markets, base_currency=base_currency)
    currencies: list[tuple[str, str]] = []
    monitor.apply(listings)
    for p in positions:
        monitor.set_position(p.portfolio, p.symbol, p.quantity, p.ts)
    frame = market.sort_values("timestamp", kind="stable")
    stamps = frame["timestamp"].dt.as_unit("ms").astype("int64").to_numpy()
    spots: dict[str, float] = {}
    rows: list[tuple[object, ...]] = []
    columns = [frame[c].to_numpy() for c in ("underlying", "spot", "rate", "dividend_yield", "vol")]
    bounds = np.flatnonzero(np.diff(stamps)) + 1
    for block in np.split(np.arange(len(stamps)), bounds):
        if len(block) == 0:
            continue
        for i in block:
            u, spot, rate, dividend_yield, vol = (c[i] for c in columns)
            spots[str(u)] = float(spot)
            markets[str(u)] = UnderlyingMarket(float(rate), float(dividend_yield), float(vol))
        ts = int(stamps[block[0]])
        snapshots, _ = monitor.evaluate(spots, ts)
        for snap in snapshots:
            counts = (snap.options, snap.expired, snap.unpriced)
            totals = [snap.total(n) if n != "delta_units" else np.nan for n in GREEK_NAMES]
            rows.append((ts, snap.portfolio, TOTAL, *totals, *counts))
            for k, u in enumerate(snap.underlyings):
                values = [float(snap.by_underlying[n][k]) for n in GREEK_NAMES]
                rows.append((ts, snap.portfolio, u, *values, *counts))
            currency = (snap.currency or "", ";".join(snap.missing_fx))
            currencies += [currency] * (1 + len(snap.underlyings))
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    if base_currency is not None:
        table["currency"] = [c for c, _ in currencies]
        table["missing_fx"] = [m for _, m in currencies]
    table["timestamp"] = iso_utc(pd.to_datetime(table["timestamp"], unit="ms", utc=True))
    return table


def read_underlying_markets(path: Path | str) -> dict[str, UnderlyingMarket]:
    """Rate, dividend yield and vol per underlying from a CSV ``underlying,rate,dividend_yield,vol``.

    The streaming service's market besides spot. Extra columns are ignored, so the
    ``options price`` market file works too: the last row of each underlying counts.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such market file")
    try:
        table = pd.read_csv(path, dtype={"underlying": str})
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the market file is empty") from None
    missing = [c for c in ("underlying", "rate", "dividend_yield", "vol") if c not in table]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    out: dict[str, UnderlyingMarket] = {}
    for row, (u, r, q, v) in enumerate(
        zip(table["underlying"], table["rate"], table["dividend_yield"], table["vol"], strict=True),
        start=2,
    ):
        try:
            out[str(u).strip()] = UnderlyingMarket(float(r), float(q), float(v))
        except (TypeError, ValueError) as exc:
            raise InputError(f"{path}, row {row}: {exc}") from None
    if not out:
        raise InputError(f"{path}: no rows")
    return out
