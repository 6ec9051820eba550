"""Portfolios: positions at the boundary, and price files through :class:`PortfolioBook`.

Positions come from a file (``--positions``) or the ``positions`` topic (key = portfolio
id), one message per holding::

    {"portfolio": "main", "symbol": "SPX", "quantity": 10.0, "ts": "2019-11-05T09:30:00Z"}

``quantity`` is the number of units held (negative for a short, 0 to close the position);
it replaces the previous quantity rather than adding to it, so a redelivered message
changes nothing. ``ts`` (ISO 8601 or epoch milliseconds) is when it takes effect; a file
without a ``timestamp`` column holds its positions from the start.

Currencies: with a base currency, the instruments reference data
(:mod:`engine.options.reference`, the ``instruments`` topic or its CSV file) tells the
book each symbol's price currency, which symbols are FX pairs and which trade 24/7
(:func:`apply_listings`); the offline command and the service call the same function.

Files: CSV with columns ``portfolio,symbol,quantity`` (optional ``timestamp``), or JSON
``{"<portfolio>": {"<symbol>": quantity, ...}, ...}``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from engine.boundary.records import DeadLetter, RecordLike
from engine.boundary.timeutil import parse_ts
from engine.boundary.validation import (
    MAX_RECORD_BYTES,
    MAX_SYMBOL_LEN,
    Refused,
    _check_key,
    _identifier,
    _number,
    _timestamp,
    check_size,
    load_object,
)
from engine.core.fx import pair_currencies
from engine.core.portfolio import Allocation, PortfolioBook
from engine.core.riskmetrics import DEFAULT_LAMBDA
from engine.errors import InputError
from engine.kafka.topics import POSITIONS
from engine.options.reference import Listing

#: Effective time of positions given without one: before any price.
START_MS = -(2**62)


@dataclass(frozen=True, slots=True)
class Position:
    """Hold ``quantity`` units of ``symbol`` in ``portfolio`` from ``ts`` (epoch ms) on."""

    portfolio: str
    symbol: str
    quantity: float
    ts: int = START_MS

    def to_json(self) -> bytes:
        from engine.boundary.timeutil import format_ts

        return orjson.dumps(
            {
                "portfolio": self.portfolio,
                "symbol": self.symbol,
                "quantity": self.quantity,
                "ts": format_ts(max(self.ts, 0)),
            }
        )


def check_position(obj: dict[str, Any], key: bytes | None, latest_ms: int) -> Position:
    """A decoded ``positions`` message as a :class:`Position`, or :class:`Refused`."""
    portfolio = _identifier(obj, "portfolio", MAX_SYMBOL_LEN, required=True)
    symbol = _identifier(obj, "symbol", MAX_SYMBOL_LEN, required=True)
    quantity = _number(obj, "quantity", required=True)
    ts = _timestamp(obj, latest_ms)
    assert portfolio is not None and symbol is not None and quantity is not None
    _check_key(key, portfolio, "portfolio id")
    return Position(portfolio, symbol, quantity, ts)


def decode_positions(
    records: Iterable[RecordLike],
    *,
    now_ms: int,
    max_future_skew_ms: int,
    max_bytes: int = MAX_RECORD_BYTES,
) -> tuple[list[Position], list[DeadLetter]]:
    """Accepted positions in arrival order, and a dead letter (with its reason) per refusal."""
    accepted, dead = [], []
    latest = now_ms + max_future_skew_ms
    for record in records:
        try:
            check_size(record.value, max_bytes)
            accepted.append(check_position(load_object(record.value), record.key, latest))
        except Refused as exc:
            dead.append(DeadLetter.of(POSITIONS, record, exc.reason, exc.detail))
    return accepted, dead


def read_positions(path: Path | str) -> list[Position]:
    """Positions from a CSV or JSON file (see the module docstring); clear errors otherwise."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"file not found: {path}")
    if path.suffix.lower() == ".json":
        return _json_positions(path)
    try:
        frame = pd.read_csv(path, dtype={"portfolio": str, "symbol": str})
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty") from None
    missing = {"portfolio", "symbol", "quantity"} - set(frame.columns)
    if missing:
        raise InputError(
            f"{path}: missing column(s) {', '.join(sorted(missing))} "
            "(expected portfolio,symbol,quantity[,timestamp])"
        )
    quantity = pd.to_numeric(frame["quantity"], errors="coerce")
    bad = ~np.isfinite(quantity.to_numpy(dtype=float))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{path}: column 'quantity', row {row + 1}: {frame['quantity'].iloc[row]!r} "
            "is not a finite number"
        )
    positions = []
    for row, (portfolio, symbol, qty) in enumerate(
        zip(frame["portfolio"], frame["symbol"], quantity, strict=True)
    ):
        if not isinstance(portfolio, str) or not isinstance(symbol, str):
            raise InputError(f"{path}: row {row + 1}: empty portfolio or symbol")
        ts = START_MS
        if "timestamp" in frame.columns and not pd.isna(frame["timestamp"].iloc[row]):
            try:
                ts = parse_ts(frame["timestamp"].iloc[row])
            except ValueError as exc:
                raise InputError(f"{path}: column 'timestamp', row {row + 1}: {exc}") from None
        positions.append(Position(portfolio, symbol, float(qty), ts))
    if not positions:
        raise InputError(f"{path}: no positions")
    return positions


def _json_positions(path: Path) -> list[Position]:
    try:
        doc = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not all(isinstance(v, dict) for v in doc.values()):
        raise InputError(f'{path}: expected {{"<portfolio>": {{"<symbol>": quantity}}}}')
    positions = []
    for portfolio, held in doc.items():
        for symbol, qty in held.items():
            if isinstance(qty, bool) or not isinstance(qty, int | float) or not math.isfinite(qty):
                raise InputError(f"{path}: {portfolio}/{symbol}: quantity {qty!r} is not a number")
            positions.append(Position(portfolio, symbol, float(qty)))
    if not positions:
        raise InputError(f"{path}: no positions")
    return positions


def apply_listings(book: PortfolioBook, listings: Iterable[Listing]) -> None:
    """Tell ``book`` the reference data of its symbols, in arrival order.

    Options are left out (they are not price series of the linear book). An ``fx``
    instrument named ``<foreign><currency>`` (``EURUSD`` quoted in ``USD``) is an FX pair
    that converts prices between those currencies; an ``fx`` instrument named otherwise is
    an ordinary symbol in its currency. A ``24/7`` calendar marks the symbol continuous
    (crypto: no grid point of its own). A tombstone forgets the symbol's reference data.
    """
    for listing in listings:
        inst = listing.instrument
        if inst is None:
            book.drop_reference(listing.key)
            continue
        if inst.is_option:
            continue
        book.set_reference(
            listing.key,
            currency=inst.currency,
            pair=pair_currencies(listing.key, inst.currency) if inst.kind == "fx" else None,
            continuous=inst.calendar == "24/7",
        )


# --- offline ------------------------------------------------------------------------------


def run_portfolio(
    prices: pd.DataFrame,
    positions: Sequence[Position],
    *,
    interval_ms: int,
    lam: float = DEFAULT_LAMBDA,
    levels: Sequence[float] = (0.95, 0.975, 0.99),
    min_obs: int = 20,
    nu: float | None = None,
    base_currency: str | None = None,
    listings: Sequence[Listing] = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Portfolio risk at every grid close of a long price frame (file order), end included.

    With ``base_currency``, amounts are in that currency, converted through the FX pairs
    of ``listings`` (:func:`apply_listings`), and ``totals`` has two more columns:
    ``currency`` and ``missing_fx`` (the currencies without a rate, ``;``-separated,
    empty when every rate was known).

    Returns ``(totals, components)``: ``timestamp, portfolio, level, value, var, es, pnl``
    (``pnl``: the realised linear P&L of the next interval, the one forecast; empty at the
    end) and
    ``timestamp, portfolio, level, symbol, exposure, marginal_var, component_var,
    component_es``, in currency units (``marginal_var`` per unit of exposure).
    """
    book = PortfolioBook(
        interval_ms=interval_ms,
        lam=lam,
        levels=levels,
        min_obs=min_obs,
        nu=nu,
        base_currency=base_currency,
    )
    apply_listings(book, listings)
    for p in positions:
        book.set_position(p.portfolio, p.symbol, p.quantity, p.ts)
    ts = prices["timestamp"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    allocations = book.on_ticks(prices["symbol"].astype(str), ts, prices["price"].to_numpy(float))
    allocations += book.flush()
    return tables(allocations)


def tables(allocations: Sequence[Allocation]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Totals and per-symbol components as frames (``timestamp`` UTC)."""
    totals = pd.DataFrame(
        {
            "timestamp": pd.to_datetime([a.ts_ms for a in allocations], unit="ms", utc=True),
            "portfolio": [a.portfolio for a in allocations],
            "level": [a.level for a in allocations],
            "value": [a.value for a in allocations],
            "var": [a.var for a in allocations],
            "es": [a.es for a in allocations],
            "pnl_before": [a.pnl_before for a in allocations],
        }
    )
    # the P&L each forecast is about: the next close's realised P&L of the same portfolio
    totals["pnl"] = totals.groupby(["portfolio", "level"])["pnl_before"].shift(-1)
    totals = totals.drop(columns="pnl_before")
    if any(a.currency is not None for a in allocations):
        totals["currency"] = [a.currency for a in allocations]
        totals["missing_fx"] = [";".join(a.missing_fx) for a in allocations]
    sizes = [len(a.symbols) for a in allocations]
    components = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(
                np.repeat([a.ts_ms for a in allocations], sizes), unit="ms", utc=True
            ),
            "portfolio": np.repeat([a.portfolio for a in allocations], sizes),
            "level": np.repeat([a.level for a in allocations], sizes),
            "symbol": [s for a in allocations for s in a.symbols],
            "exposure": _cat([a.exposure for a in allocations]),
            "marginal_var": _cat([a.marginal for a in allocations]),
            "component_var": _cat([a.component for a in allocations]),
            "component_es": _cat([a.es_component for a in allocations]),
        }
    )
    return totals, components


def backtest(totals: pd.DataFrame, *, start: str | None = None) -> pd.DataFrame:
    """Violations of each portfolio's VaR by its next-interval P&L, with Kupiec and Christoffersen.

    ``start`` (ISO date) limits the evaluation to forecasts made from then on. One row per
    portfolio and level: ``forecasts``, ``violations``, ``rate``, ``expected``,
    ``kupiec_p``, ``christoffersen_p`` (independence), ``cc_p``.
    """
    from engine.core.backtest.coverage import coverage

    scored = totals.dropna(subset=["pnl", "var"])
    if start is not None:
        scored = scored[scored["timestamp"] >= pd.Timestamp(start, tz="UTC")]
    rows = []
    for (portfolio, level), group in scored.groupby(["portfolio", "level"], sort=True):
        tests = coverage((-group["pnl"] > group["var"]).to_numpy(), 1.0 - float(level))
        rows.append(
            {
                "portfolio": portfolio,
                "level": level,
                "forecasts": tests.n,
                "violations": tests.violations,
                "rate": tests.rate,
                "expected": tests.expected,
                "kupiec_p": tests.kupiec_p,
                "christoffersen_p": tests.christoffersen_p,
                "cc_p": tests.cc_p,
            }
        )
    return pd.DataFrame(rows)


def _cat(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.zeros(0)


def parse_interval(text: str) -> int:
    """``1d``, ``4h``, ``15m``, ``30s`` or ``500ms`` as milliseconds.

    >>> parse_interval("1d"), parse_interval("15m"), parse_interval("500ms")
    (86400000, 900000, 500)
    """
    units = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
    text = text.strip().lower()
    for suffix in ("ms", "s", "m", "h", "d"):
        if text.endswith(suffix):
            number = text[: -len(suffix)]
            try:
                value = float(number)
            except ValueError:
                break
            if value > 0 and math.isfinite(value):
                return round(value * units[suffix])
            break
    raise InputError(f"interval {text!r}: expected a positive duration like 1d, 4h, 15m, 30s")
