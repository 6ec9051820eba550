"""The files of ``riskstream options price``: option instruments and market data in, Greeks out.

Contract (``../shared/DESIGN.md``, "Options"):

- instruments CSV ``instrument,underlying,strike,expiry,right,style``: ``right`` call or
  put, ``style`` european or american, ``expiry`` an ISO date (expiry at 00:00 UTC);
- market CSV ``timestamp,underlying,spot,rate,dividend_yield,vol``: continuously
  compounded rate and yield, annualised vol, decimals; ``timestamp`` ISO 8601 (no offset
  means UTC);
- output ``timestamp,instrument,price,delta,gamma,vega,theta,rho`` per unit of underlying,
  one row for every market row of an instrument's underlying strictly before its expiry,
  in market-row order and, within a market row, instrument-file order; time to expiry is
  Actual/365 Fixed from the timestamp.

Every input is validated here; an error names the file, the row (as a spreadsheet shows
it: the header is row 1) and the column, and says what is expected. Extra columns are
ignored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import InputError
from engine.options.errors import InstrumentError, MarketDataError
from engine.options.instruments import option_terms
from engine.options.pricing import price_vanilla

INSTRUMENT_COLUMNS = ("instrument", "underlying", "strike", "expiry", "right", "style")
MARKET_COLUMNS = ("timestamp", "underlying", "spot", "rate", "dividend_yield", "vol")
OUTPUT_COLUMNS = ("timestamp", "instrument", "price", "delta", "gamma", "vega", "theta", "rho")
_NS_PER_YEAR = 365 * 86_400 * 10**9  # Actual/365 Fixed


def read_instruments(path: Path) -> pd.DataFrame:
    """The option instruments of ``path``, validated.

    Returns
    -------
    pandas.DataFrame
        Columns ``instrument``, ``underlying``, ``strike`` (float), ``expiry_ns`` (int64,
        nanoseconds since the epoch of 00:00 UTC on the expiry date), ``call`` and
        ``american`` (bool), in file order.
    """
    table = _read(path, INSTRUMENT_COLUMNS, "instruments")
    rows = []
    for i, record in enumerate(table.itertuples(index=False), start=2):
        name, underlying = record.instrument.strip(), record.underlying.strip()
        if not name:
            raise InstrumentError(f"{path}, row {i}, column instrument: the name is empty")
        if not underlying:
            raise InstrumentError(f"{path}, row {i} ({name}), column underlying: the name is empty")
        try:
            terms = option_terms(
                strike=record.strike.strip(),
                expiry=record.expiry.strip(),
                right=record.right.strip(),
                style=record.style.strip(),
            )
        except InstrumentError as exc:
            column = str(exc).split(" ", 1)[0]
            raise InstrumentError(f"{path}, row {i} ({name}), column {column}: {exc}") from None
        rows.append((name, underlying, terms.strike, terms.expiry, terms.is_call, terms.style))
    frame = pd.DataFrame(
        rows, columns=["instrument", "underlying", "strike", "expiry", "call", "style"]
    )
    repeated = frame["instrument"].duplicated()
    if repeated.any():
        first = int(np.flatnonzero(repeated.to_numpy())[0])
        raise InstrumentError(
            f"{path}, row {first + 2}, column instrument: {frame['instrument'].iloc[first]!r} "
            "appears more than once; instrument names must be unique"
        )
    expiry = pd.to_datetime(frame["expiry"].astype(str), format="%Y-%m-%d", utc=True)
    return pd.DataFrame(
        {
            "instrument": frame["instrument"],
            "underlying": frame["underlying"],
            "strike": frame["strike"].astype(np.float64),
            "expiry_ns": expiry.dt.as_unit("ns").astype("int64").to_numpy(),
            "call": frame["call"].astype(bool),
            "american": (frame["style"] == "american").to_numpy(),
        }
    )


def read_market(path: Path) -> pd.DataFrame:
    """The market rows of ``path``, validated: ``timestamp`` (UTC), ``underlying``, floats.

    ``spot`` and ``vol`` must be finite and > 0, ``rate`` and ``dividend_yield`` finite.
    """
    table = _read(path, MARKET_COLUMNS, "market")
    stamps = pd.to_datetime(
        table["timestamp"].str.strip(), utc=True, errors="coerce", format="ISO8601"
    )
    bad = stamps.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise MarketDataError(
            f"{path}, row {i + 2}, column timestamp: {table['timestamp'].iloc[i]!r} is not an "
            "ISO 8601 time like 2024-03-15T14:30:00Z"
        )
    underlying = table["underlying"].str.strip()
    empty = (underlying == "").to_numpy()
    if empty.any():
        raise MarketDataError(
            f"{path}, row {int(np.flatnonzero(empty)[0]) + 2}, column underlying: the name is empty"
        )
    columns = {"timestamp": stamps, "underlying": underlying}
    for name, positive in (
        ("spot", True),
        ("rate", False),
        ("dividend_yield", False),
        ("vol", True),
    ):
        raw = table[name].str.strip()
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        ok = np.isfinite(values) & ((values > 0.0) if positive else True)
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            want = "a finite number > 0" if positive else "a finite number (decimal, 0.05 is 5%)"
            shown = repr(raw.iloc[i]) if raw.iloc[i] else "empty"
            raise MarketDataError(f"{path}, row {i + 2}, column {name}: {shown} must be {want}")
        columns[name] = values
    return pd.DataFrame(columns)


def price_table(
    instruments: pd.DataFrame, market: pd.DataFrame, *, source: str = "market"
) -> pd.DataFrame:
    """The output table: every (market row, instrument on its underlying) before expiry.

    ``instruments`` and ``market`` as :func:`read_instruments` and :func:`read_market`
    return them; ``source`` names the market file in errors.

    Raises
    ------
    MarketDataError
        When an American option cannot be priced at a market row (Barone-Adesi–Whaley is
        not defined there: a negative rate), naming the row and the instrument.
    """
    market = market.reset_index(drop=True).assign(_row=lambda f: np.arange(len(f)))
    instruments = instruments.reset_index(drop=True).assign(_order=lambda f: np.arange(len(f)))
    pairs = market.merge(instruments, on="underlying", how="inner", sort=False)
    stamp_ns = pairs["timestamp"].dt.as_unit("ns").astype("int64").to_numpy()
    t = (pairs["expiry_ns"].to_numpy() - stamp_ns) / _NS_PER_YEAR
    pairs = pairs.loc[t > 0.0].assign(t=t[t > 0.0]).sort_values(["_row", "_order"], kind="stable")
    g = price_vanilla(
        pairs["spot"].to_numpy(),
        pairs["strike"].to_numpy(),
        pairs["t"].to_numpy(),
        pairs["rate"].to_numpy(),
        pairs["dividend_yield"].to_numpy(),
        pairs["vol"].to_numpy(),
        pairs["call"].to_numpy(),
        pairs["american"].to_numpy(),
    )
    unpriced = ~np.isfinite(g.price)
    if unpriced.any():
        i = int(np.flatnonzero(unpriced)[0])
        row = pairs.iloc[i]
        raise MarketDataError(
            f"{source}, row {int(row['_row']) + 2}: the American option {row['instrument']} cannot be "
            f"priced at rate {row['rate']} and dividend yield {row['dividend_yield']} "
            "(Barone-Adesi–Whaley needs a rate >= 0 unless early exercise is never optimal)"
        )
    return pd.DataFrame(
        {
            "timestamp": iso_utc(pairs["timestamp"]),
            "instrument": pairs["instrument"].to_numpy(),
            "price": g.price,
            "delta": g.delta,
            "gamma": g.gamma,
            "vega": g.vega,
            "theta": g.theta,
            "rho": g.rho,
        },
        columns=list(OUTPUT_COLUMNS),
    )


def iso_utc(stamps: pd.Series) -> np.ndarray:
    """ISO 8601 UTC text, ``Z`` suffix, microseconds only when present."""
    text = stamps.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").str.replace(".000000Z", "Z", regex=False)
    return text.to_numpy()


def _read(path: Path, columns: tuple[str, ...], what: str) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(f"{path}: no such {what} file")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise InputError(
            f"{path}: the {what} file is empty; expected a header {','.join(columns)}"
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: not a readable CSV {what} file ({reason})") from None
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {', '.join(missing)}; the {what} file needs "
            f"{','.join(columns)}"
        )
    if table.empty:
        raise InputError(f"{path}: the {what} file has a header but no rows")
    return table
