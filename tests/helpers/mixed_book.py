"""The mixed book the multi-asset end-to-end tests share: instruments, market, real series.

One equity (NVIDIA), one crypto coin (BTC-USD) and one FX pair (the ECB's ``EURUSD``),
second half of 2020, with three listed options on them quoted in USD. Option prices are
not quoted prices: the Greeks are model values from the real spots and the assumed flat
market of :data:`MARKET`. The services start from a file holding only the FX pair, so the
other instruments can reach them only through the compacted ``instruments`` topic.

Used by ``tests/e2e/test_mixed_book_e2e.py`` (one worker and one portfolio service) and
``tests/portfolio/test_portfolio_group_greeks.py`` (two service instances, one killed).
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pandas as pd

from engine.faults.harness import produce
from engine.services.kafka_admin import create_topic

from ..portfolio.fx_data import btc_nvda, ecb_eurusd

START, END = "2020-07-01", "2021-01-01"
INSTRUMENTS = """instrument,kind,currency,calendar,underlying,strike,expiry,right,style,multiplier
EURUSD,fx,USD,24/5,,,,,,
NVDA,equity,USD,XNYS,,,,,,
BTCUSD,crypto,USD,24/7,,,,,,
NVDA-C15,option,USD,XNYS,NVDA,15,2021-03-19,call,european,100
NVDA-P12A,option,USD,XNYS,NVDA,12,2021-01-15,put,american,100
EURUSD-C120,option,USD,24/5,EURUSD,1.20,2021-03-19,call,european,100000
"""
#: ``underlying -> (rate, dividend_yield, vol)``: assumed, flat over the half-year (USD
#: rate; for EURUSD the yield is the euro rate). BTCUSD is held spot only: its row gives
#: the Greeks its spot and is otherwise unused.
MARKET = {
    "NVDA": (0.001, 0.0005, 0.45),
    "EURUSD": (0.001, -0.005, 0.07),
    "BTCUSD": (0.001, 0.0, 0.8),
}
ISO = "%Y-%m-%dT%H:%M:%SZ"


def mixed_prices() -> pd.DataFrame:
    """Long ticks ``timestamp, symbol, price`` of NVDA, BTCUSD and EURUSD from START to END.

    Timestamps are UTC; rows are in time order, symbols in name order within a time.
    """
    eurusd = ecb_eurusd()
    fx = pd.DataFrame({"timestamp": eurusd.index, "symbol": "EURUSD", "price": eurusd.to_numpy()})
    frame = pd.concat([btc_nvda(), fx])
    frame = frame[(frame["timestamp"] >= START) & (frame["timestamp"] < END)]
    return frame.sort_values(["timestamp", "symbol"], kind="stable").reset_index(drop=True)


def with_iso_timestamps(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its ``timestamp`` column written as ISO-8601 UTC strings (for CSV)."""
    return frame.assign(timestamp=frame["timestamp"].dt.strftime(ISO))


def write_book_files(frame: pd.DataFrame, files: dict[str, Path]) -> None:
    """Write ``files``' ``prices``, ``instruments``, ``start`` (the FX pair only) and ``market``.

    The market file has one row per tick of ``frame``: the tick's price as the spot and
    :data:`MARKET`'s flat rate, dividend yield and vol of its underlying.
    """
    with_iso_timestamps(frame).to_csv(files["prices"], index=False)
    files["instruments"].write_text(INSTRUMENTS)
    files["start"].write_text("\n".join(INSTRUMENTS.splitlines()[:2]) + "\n")  # EURUSD only
    market = frame.rename(columns={"symbol": "underlying", "price": "spot"})
    for i, column in enumerate(("rate", "dividend_yield", "vol")):
        market[column] = [MARKET[u][i] for u in market["underlying"]]
    with_iso_timestamps(market).to_csv(files["market"], index=False)


def instrument_record(row: dict[str, str]) -> dict[str, object]:
    """A CSV row as an ``instruments`` message (empty cells left out, numbers as numbers)."""
    return {k: float(v) if k in ("strike", "multiplier") else v for k, v in row.items() if v}


def create_book_topics(bootstrap: str, instruments: Path) -> None:
    """Create ``prices`` and ``positions`` (2 partitions each) and the compacted
    ``instruments`` topic, and publish every row of the ``instruments`` CSV to it."""
    create_topic(bootstrap, "prices", partitions=2)
    create_topic(bootstrap, "positions", partitions=2)
    create_topic(bootstrap, "instruments", config={"cleanup.policy": "compact"})
    rows = pd.read_csv(instruments, dtype=str, keep_default_na=False)
    produce(
        bootstrap,
        "instruments",
        [
            (row["instrument"].encode(), orjson.dumps(instrument_record(row)))
            for row in rows.to_dict("records")
        ],
    )
