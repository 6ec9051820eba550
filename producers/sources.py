"""Real data, as event streams in time order.

Bundled with the ``arch`` package (always available, no files needed):

* ``sp500`` - S&P 500 daily adjusted close, 1999-01-04 to 2018-12-31, symbol ``SPX``;
* ``nasdaq`` - NASDAQ Composite daily adjusted close, same dates, symbol ``NASDAQ``.

Daily bars are stamped at the 16:00 New York close, in UTC.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from engine.schemas import PriceTick

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
