"""Today's market from a price frame, through the engine's own covariance.

:func:`market_from_prices` feeds a long price frame (``timestamp, symbol, price``, time
order, as :func:`producers.sources.read_price_csv` returns it) through
:class:`~engine.core.portfolio.PortfolioBook`, the book of ``riskstream portfolio var``
and of the streaming portfolio service, so the covariance, the grid and the last prices
are the engine's, not a second implementation. :func:`market_from_book` does the same
for a live book.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from engine.core.portfolio import PortfolioBook
from engine.core.riskmetrics import DEFAULT_LAMBDA
from engine.errors import InputError
from engine.stress.moves import Market


def market_from_book(book: PortfolioBook, asset_classes: Mapping[str, str] | None = None) -> Market:
    """The market as of a book's latest grid close: close prices and the EWMA covariance.

    Prices and covariance are both those of the latest close, so they belong together;
    after :meth:`~engine.core.portfolio.PortfolioBook.flush` (the end of a file) the close
    prices are each symbol's last price. Symbols without a close yet are left out.
    """
    priced = np.flatnonzero(np.isfinite(book.close_price))
    cov = book.cov.matrix()
    return Market(
        tuple(book.symbols[i] for i in priced),
        book.close_price[priced].copy(),
        cov[np.ix_(priced, priced)],
        book.cov.count[priced].copy(),
        book.min_obs,
        dict(asset_classes or {}),
    )


def market_from_prices(
    prices: pd.DataFrame,
    *,
    interval_ms: int = 86_400_000,
    lam: float = DEFAULT_LAMBDA,
    min_obs: int = 20,
    asset_classes: Mapping[str, str] | None = None,
) -> Market:
    """The market at the end of a long price frame: last prices, EWMA covariance.

    ``interval_ms`` is the covariance's grid interval (a day by default), ``lam`` its
    RiskMetrics decay; a symbol needs ``min_obs`` grid returns to count as with history.
    """
    if prices.empty:
        raise InputError("the price file has no prices")
    book = PortfolioBook(interval_ms=interval_ms, lam=lam, min_obs=min_obs)
    ts = prices["timestamp"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    book.on_ticks(prices["symbol"].astype(str), ts, prices["price"].to_numpy(float))
    book.flush()
    return market_from_book(book, asset_classes)


def daily_log_returns(prices: pd.DataFrame, symbols: list[str]) -> tuple[pd.Index, np.ndarray]:
    """Log returns between consecutive grid days on which every one of ``symbols`` has a price.

    Days are UTC calendar days of the timestamps, each symbol's last price of the day.
    Returns the dates of the returns' end days and a (days x symbols) array.
    """
    frame = prices[prices["symbol"].isin(symbols)]
    day = frame["timestamp"].dt.tz_convert("UTC").dt.floor("D")
    wide = (
        frame.assign(day=day)
        .pivot_table(index="day", columns="symbol", values="price", aggfunc="last")
        .reindex(columns=symbols)
        .dropna()
    )
    if len(wide) < 2:
        raise InputError(
            f"fewer than two days on which {', '.join(symbols)} all have prices: no returns"
        )
    values = np.log(wide.to_numpy(float))
    return wide.index[1:], np.diff(values, axis=0)


def read_asset_classes(path: str) -> dict[str, str]:
    """``symbol,asset_class`` CSV as a mapping; InputError naming file and row otherwise."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise InputError(f"file not found: {path}") from None
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty") from None
    missing = {"symbol", "asset_class"} - set(frame.columns)
    if missing:
        raise InputError(
            f"{path}: missing column(s) {', '.join(sorted(missing))} (expected symbol,asset_class)"
        )
    out: dict[str, str] = {}
    for row, (symbol, cls) in enumerate(zip(frame["symbol"], frame["asset_class"], strict=True)):
        if not symbol.strip() or not cls.strip():
            raise InputError(f"{path}: row {row + 1}: empty symbol or asset_class")
        out[symbol.strip()] = cls.strip()
    if not out:
        raise InputError(f"{path}: no rows")
    return out
