"""Real data, as event streams in time order.

Bundled with the ``arch`` package (always available, no files needed):

* ``sp500`` - S&P 500 daily adjusted close, 1999-01-04 to 2018-12-31, symbol ``SPX``;
* ``nasdaq`` - NASDAQ Composite daily adjusted close, same dates, symbol ``NASDAQ``.

Daily bars are stamped at the 16:00 New York close, in UTC.

From the shared data directory (:func:`engine.paths.shared_file`):

* :func:`sp500_1min` - S&P 500 one-minute bars, 2019-11-05 to 2019-11-08, symbol ``SPX``;
* :func:`fraud_handbook` - 1.75 million simulated card transactions with fraud labels,
  2018-04-01 to 2018-09-30, streamed in chunks.

And any price CSV in the offline CLI's format (:func:`read_price_csv`, long or wide).

Loaders return long-format frames (``timestamp`` tz-aware UTC, ``symbol``, ``price`` and
sometimes ``volume``); :func:`frame_to_ticks` / :func:`ticks_from_frame` turn them into
:class:`~engine.boundary.schemas.PriceTick` events. Bad files raise :class:`~engine.errors.InputError`
with one line naming the file, column and row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.boundary.schemas import PriceTick, Transaction
from engine.errors import InputError, cell_text
from engine.paths import shared_file

ARCH_DATASETS = {"sp500": "SPX", "nasdaq": "NASDAQ"}


def arch_daily(name: str) -> pd.DataFrame:
    """``timestamp`` (UTC, tz-aware), ``symbol``, ``price`` for an ``arch.data`` index."""
    if name not in ARCH_DATASETS:
        raise ValueError(f"unknown arch dataset {name!r}; choose from {sorted(ARCH_DATASETS)}")
    module = __import__(f"arch.data.{name}", fromlist=["load"])
    frame = module.load()
    close = frame["Adj Close"].dropna()
    stamps = (pd.DatetimeIndex(close.index) + pd.Timedelta(hours=16)).tz_localize(
        "America/New_York"
    )
    return pd.DataFrame(
        {
            "timestamp": stamps.tz_convert("UTC"),
            "symbol": ARCH_DATASETS[name],
            "price": close.to_numpy(dtype=float),
        }
    ).reset_index(drop=True)


def frame_to_ticks(frame: pd.DataFrame) -> Iterator[PriceTick]:
    """Long-format ``timestamp, symbol, price`` rows as ticks, in the frame's order."""
    ms = frame["timestamp"].to_numpy(dtype="datetime64[ms]").astype("int64")
    for ts, symbol, price in zip(
        ms.tolist(), frame["symbol"].tolist(), frame["price"].tolist(), strict=True
    ):
        yield PriceTick(symbol=symbol, ts=ts, price=price)


def bundled_prices() -> pd.DataFrame:
    """S&P 500 and NASDAQ daily closes merged in time order (what ``riskstream run`` replays)."""
    merged = pd.concat([arch_daily("sp500"), arch_daily("nasdaq")], ignore_index=True)
    return merged.sort_values(["timestamp", "symbol"], kind="stable").reset_index(drop=True)


# --- one-minute S&P 500 bars --------------------------------------------------------------

SP500_1MIN = "market/sp500_1min_2019-11-05_08.csv"
SP500_1MIN_COLUMNS = ("Date", "Open", "Close", "High", "Low", "Volume")


def sp500_1min(path: Path | None = None) -> pd.DataFrame:
    """S&P 500 one-minute bars as ``timestamp`` (UTC), ``symbol`` (``SPX``), ``price``, ``volume``.

    ``price`` is the bar's close in index points and ``volume`` its volume (zero throughout
    in this file). The file's ``Date`` column (``11/5/2019 9:30``) is New York wall-clock
    time; it is converted to UTC, so ``11/5/2019 9:30`` becomes ``2019-11-05T14:30:00Z``
    (EST, UTC-5). A bar is stamped at its minute as the file gives it.

    Parameters
    ----------
    path
        The CSV file; by default the shared ``market/sp500_1min_2019-11-05_08.csv``.

    Raises
    ------
    InputError
        If the file is missing, lacks a column or has an unparseable date or price.
    """
    path = shared_file(SP500_1MIN) if path is None else _existing(path)
    frame = _read_csv(path)
    _require_columns(frame, SP500_1MIN_COLUMNS, path)
    local = pd.to_datetime(frame["Date"], format="%m/%d/%Y %H:%M", errors="coerce")
    _no_missing(frame["Date"], local, path, "Date", "a date like 11/5/2019 9:30")
    stamps = pd.DatetimeIndex(local).tz_localize("America/New_York", ambiguous="raise")
    price = _numeric(frame["Close"], path, "Close")
    volume = _numeric(frame["Volume"], path, "Volume")
    out = pd.DataFrame(
        {
            "timestamp": stamps.tz_convert("UTC"),
            "symbol": "SPX",
            "price": price.to_numpy(dtype=float),
            "volume": volume.to_numpy(dtype=float),
        }
    )
    return out.sort_values("timestamp", kind="stable").reset_index(drop=True)


# --- generic price CSV (the offline CLI's format) -----------------------------------------


def read_price_csv(path: Path) -> pd.DataFrame:
    """A price CSV in the offline CLI's format, as long ``timestamp, symbol, price`` rows.

    The file has a ``timestamp`` column plus either ``symbol`` and ``price`` columns
    (long format; optional ``volume`` and ``rv`` (realized variance, decimal^2) columns
    are kept) or one price column per symbol
    (wide format; the column name is the symbol, an empty cell means no price then).
    Timestamps are ISO 8601 (text without an offset is UTC) or integers of epoch
    milliseconds. Rows come out sorted by timestamp; rows with equal timestamps keep the
    file's order (and, in wide format, the column order).

    Raises
    ------
    InputError
        If the file is missing or empty, the columns fit neither format, or a timestamp or
        price is unparseable, missing (long format), non-finite or not positive. The message
        names the file, the column and the first offending row (1-based, header excluded).
    """
    path = _existing(path)
    frame = _read_csv(path)
    if "timestamp" not in frame.columns:
        raise InputError(
            f"{path}: no 'timestamp' column (columns: {', '.join(map(str, frame.columns))})"
        )
    others = [c for c in frame.columns if c != "timestamp"]
    if "symbol" in others or "price" in others:
        if not {"symbol", "price"} <= set(others):
            raise InputError(
                f"{path}: long format needs both 'symbol' and 'price' columns; "
                "wide format has one price column per symbol and neither of those"
            )
        long = _long_prices(frame, path)
    else:
        if not others:
            raise InputError(f"{path}: no price columns besides 'timestamp'")
        long = _wide_prices(frame, others, path)
    return long.sort_values("timestamp", kind="stable").reset_index(drop=True)


def ticks_from_frame(frame: pd.DataFrame) -> Iterator[PriceTick]:
    """Long-format rows as ticks, in the frame's order, with ``volume`` when the frame has it.

    Like :func:`frame_to_ticks`; a NaN volume is left out of its tick.
    """
    if "volume" not in frame.columns:
        yield from frame_to_ticks(frame)
        return
    ms = frame["timestamp"].to_numpy(dtype="datetime64[ms]").astype("int64")
    for ts, symbol, price, volume in zip(
        ms.tolist(),
        frame["symbol"].tolist(),
        frame["price"].tolist(),
        frame["volume"].tolist(),
        strict=True,
    ):
        yield PriceTick(
            symbol=symbol, ts=ts, price=price, volume=None if volume != volume else volume
        )


def _long_prices(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    symbol = frame["symbol"]
    blank = symbol.isna() | (symbol.astype(str).str.strip() == "")
    if blank.any():
        raise InputError(f"{path}: column 'symbol' is empty in row {_first(blank)}")
    out = pd.DataFrame(
        {
            "timestamp": _timestamps(frame["timestamp"], path),
            "symbol": symbol.astype(str).str.strip(),
            "price": _prices(frame["price"], path, "price", allow_missing=False),
        }
    )
    for name in ("volume", "rv"):
        if name in frame.columns:
            values = _numeric(frame[name], path, name, allow_missing=True)
            if (values < 0).any():
                raise InputError(f"{path}: column {name!r} is negative in row {_first(values < 0)}")
            out[name] = values.to_numpy(dtype=float)
    return out


def _wide_prices(frame: pd.DataFrame, symbols: list[str], path: Path) -> pd.DataFrame:
    stamps = _timestamps(frame["timestamp"], path)
    parts = []
    for order, name in enumerate(symbols):
        price = _prices(frame[name], path, str(name), allow_missing=True)
        part = pd.DataFrame(
            {"timestamp": stamps, "symbol": str(name).strip(), "price": price, "_col": order}
        )
        parts.append(part.assign(_row=np.arange(len(part))).dropna(subset=["price"]))
    long = pd.concat(parts, ignore_index=True).sort_values(["_row", "_col"], kind="stable")
    return long.drop(columns=["_row", "_col"]).reset_index(drop=True)


def _timestamps(column: pd.Series, path: Path) -> pd.DatetimeIndex:
    if pd.api.types.is_integer_dtype(column):
        if (column < 0).any():
            raise InputError(f"{path}: 'timestamp' is before 1970 in row {_first(column < 0)}")
        return pd.DatetimeIndex(pd.to_datetime(column, unit="ms", utc=True))
    text = column.astype("string").str.strip()
    parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    _no_missing(column, parsed, path, "timestamp", "ISO 8601 or epoch milliseconds")
    return pd.DatetimeIndex(parsed)


def _prices(column: pd.Series, path: Path, name: str, *, allow_missing: bool) -> np.ndarray:
    price = _numeric(column, path, name, allow_missing=allow_missing)
    values = price.to_numpy(dtype=float)
    bad = ~np.isnan(values) & ~(np.isfinite(values) & (values > 0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{path}: column {name!r} has price {cell_text(column.iloc[row])} in row {row + 1}; "
            "prices must be finite and positive"
        )
    return values


def _numeric(column: pd.Series, path: Path, name: str, *, allow_missing: bool = False) -> pd.Series:
    values = pd.to_numeric(column, errors="coerce")
    unparsed = values.isna() & column.notna()
    if unparsed.any():
        row = _first(unparsed)
        raise InputError(
            f"{path}: column {name!r} has {cell_text(column.iloc[row - 1])} in row {row}, "
            "expected a number"
        )
    if not allow_missing and values.isna().any():
        raise InputError(f"{path}: column {name!r} is empty in row {_first(values.isna())}")
    return values.astype(float)


def _no_missing(raw: pd.Series, parsed: pd.Series, path: Path, name: str, want: str) -> None:
    bad = pd.Series(pd.isna(parsed), index=raw.index)
    if bad.any():
        row = _first(bad)
        raise InputError(
            f"{path}: column {name!r} has {cell_text(raw.iloc[row - 1])} in row {row}, expected {want}"
        )


def _first(mask: pd.Series) -> int:
    """1-based row number (header excluded) of the first true entry."""
    return int(np.flatnonzero(np.asarray(mask, dtype=bool))[0]) + 1


def _existing(path: Path | str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"file not found: {path}")
    return path


def _read_csv(path: Path, **kwargs: Any) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable CSV file ({exc})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _require_columns(frame: pd.DataFrame, columns: Iterable[str], path: Path) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {', '.join(missing)} "
            f"(found: {', '.join(map(str, frame.columns))})"
        )


# --- fraud-handbook transactions ----------------------------------------------------------

FRAUD_HANDBOOK = "transactions/fraud_handbook_simulated_transactions_2018-04-01_2018-09-30.csv.gz"
FRAUD_HANDBOOK_COLUMNS = (
    "TRANSACTION_ID",
    "TX_DATETIME",
    "CUSTOMER_ID",
    "TERMINAL_ID",
    "TX_AMOUNT",
    "TX_FRAUD",
    "TX_FRAUD_SCENARIO",
)


def fraud_handbook(
    path: Path | None = None, *, labels: bool = False, chunksize: int = 100_000
) -> Iterator[Transaction]:
    """Replay the fraud-handbook transactions lazily, in file (= time) order.

    The file is read ``chunksize`` rows at a time, so replaying all 1.75 million rows
    never holds more than one chunk in memory. Each row becomes
    ``Transaction(tx_id=TRANSACTION_ID, ts=TX_DATETIME, customer_id=CUSTOMER_ID,
    amount=TX_AMOUNT, terminal_id=TERMINAL_ID)`` with ids as decimal text and the amount
    in the simulator's currency units. ``TX_DATETIME`` has no time zone (the simulator's
    clock); it is read as UTC.

    Parameters
    ----------
    path
        The CSV (gzip or plain); by default the shared fraud-handbook file.
    labels
        Add the ground truth as the features ``tx_fraud`` (0/1) and ``tx_fraud_scenario``
        (0 = genuine, 1-3 = the simulator's fraud scenarios). Off by default: a scorer must
        not see the label it is scored on.
    chunksize
        Rows read per chunk.

    Raises
    ------
    InputError
        If the file is missing, lacks a column, or a row has an unparseable date or amount.
    """
    if chunksize < 1:
        raise InputError(f"chunksize must be at least 1, got {chunksize}")
    path = shared_file(FRAUD_HANDBOOK) if path is None else _existing(path)
    try:
        reader = pd.read_csv(
            path,
            chunksize=chunksize,
            usecols=lambda name: name in FRAUD_HANDBOOK_COLUMNS,
            dtype={"TX_DATETIME": str},
        )
        first = True
        rows = 0
        with reader:
            for chunk in reader:
                if first:
                    _require_columns(chunk, FRAUD_HANDBOOK_COLUMNS, path)
                    first = False
                yield from _fraud_chunk(chunk, path, rows, labels)
                rows += len(chunk)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError) as exc:
        raise InputError(f"{path}: not a readable CSV file ({exc})") from None


def _fraud_chunk(
    chunk: pd.DataFrame, path: Path, offset: int, labels: bool
) -> Iterator[Transaction]:
    stamps = pd.to_datetime(chunk["TX_DATETIME"], format="%Y-%m-%d %H:%M:%S", errors="coerce")
    bad = stamps.isna()
    if bad.any():
        row = _first(bad)
        raise InputError(
            f"{path}: column 'TX_DATETIME' has {cell_text(chunk['TX_DATETIME'].iloc[row - 1])} "
            f"in row {offset + row}, expected YYYY-MM-DD HH:MM:SS"
        )
    amount = pd.to_numeric(chunk["TX_AMOUNT"], errors="coerce")
    bad = amount.isna() | ~np.isfinite(amount) | (amount < 0)
    if bad.any():
        row = _first(bad)
        raise InputError(
            f"{path}: column 'TX_AMOUNT' has {cell_text(chunk['TX_AMOUNT'].iloc[row - 1])} "
            f"in row {offset + row}, expected a finite amount >= 0"
        )
    ms = stamps.to_numpy(dtype="datetime64[ms]").astype("int64").tolist()
    columns = [
        chunk[name].astype(str).tolist()
        for name in ("TRANSACTION_ID", "CUSTOMER_ID", "TERMINAL_ID")
    ]
    amounts = amount.astype(float).tolist()
    if labels:
        fraud = chunk["TX_FRAUD"].astype(int).tolist()
        scenario = chunk["TX_FRAUD_SCENARIO"].astype(int).tolist()
        for tx_id, customer, terminal, ts, value, label, kind in zip(
            *columns, ms, amounts, fraud, scenario, strict=True
        ):
            yield Transaction(
                tx_id,
                ts,
                customer,
                value,
                terminal,
                features={"tx_fraud": label, "tx_fraud_scenario": kind},
            )
    else:
        for tx_id, customer, terminal, ts, value in zip(*columns, ms, amounts, strict=True):
            yield Transaction(tx_id, ts, customer, value, terminal)


SP500_RV = "market/sp500_returns_realized_variance.csv"


def sp500_realized(path: Path | None = None) -> pd.DataFrame:
    """S&P 500 daily closes with realized variance, 1971-2018, symbol ``SPX``.

    From the shared file of daily log returns in percent and realized variance
    (percent^2, from 2000; missing before). Prices are rebuilt from the returns
    (``100 * exp(cumsum(r / 100))``), so their log returns are exactly the file's;
    ``rv`` is converted to decimal^2. Dates are stamped at the 16:00 New York close.
    """
    file = path if path is not None else shared_file(SP500_RV)
    frame = _read_csv(_existing(Path(file)))
    for column in ("date", "return", "rv"):
        if column not in frame.columns:
            raise InputError(f"{file}: no {column!r} column")
    stamps = (pd.DatetimeIndex(pd.to_datetime(frame["date"])) + pd.Timedelta(hours=16)).tz_localize(
        "America/New_York"
    )
    returns = pd.to_numeric(frame["return"], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(returns).all():
        raise InputError(f"{file}: column 'return' has a missing or non-numeric value")
    rv = pd.to_numeric(frame["rv"], errors="coerce").to_numpy(dtype=float) / 1e4
    return pd.DataFrame(
        {
            "timestamp": stamps.tz_convert("UTC"),
            "symbol": "SPX",
            "price": 100.0 * np.exp(np.cumsum(returns / 100.0)),
            "rv": rv,
        }
    )
