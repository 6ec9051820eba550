"""Real index closes with synthetic symbols added on the same days, for the stream tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from producers.sources import bundled_prices


def bundled_with_walks(
    calendar_days: int, seed: int, walks: tuple[tuple[str, float, float], ...]
) -> pd.DataFrame:
    """The bundled S&P 500 and NASDAQ closes of the first ``calendar_days`` days, plus walks.

    Each walk ``(symbol, start, vol)`` is a geometric random walk on the real trading days:
    ``start * exp(cumsum(N(0, vol)))``, ``vol`` the daily log-return standard deviation,
    drawn in the order given from one generator seeded with ``seed``. Long frame
    ``timestamp, symbol, price`` in time order (stable: within a day, real symbols first).
    """
    real = bundled_prices()
    real = real[real["timestamp"] < real["timestamp"].iloc[0] + pd.Timedelta(days=calendar_days)]
    days = real["timestamp"].drop_duplicates()
    rng = np.random.default_rng(seed)
    extra = [
        pd.DataFrame(
            {
                "timestamp": days,
                "symbol": symbol,
                "price": start * np.exp(np.cumsum(rng.normal(0, vol, len(days)))),
            }
        )
        for symbol, start, vol in walks
    ]
    frame = pd.concat([real[["timestamp", "symbol", "price"]], *extra])
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
