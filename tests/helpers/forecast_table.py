"""The offline CLI's VaR and volatility files as one table keyed like the worker's output."""

from __future__ import annotations

import pandas as pd

from engine.boundary.timeutil import parse_ts


def forecast_table(var: pd.DataFrame, vol: pd.DataFrame) -> pd.DataFrame:
    """Join ``var forecast`` and ``vol forecast`` output, one row per (symbol, time).

    ``var`` has one row per (timestamp, symbol, level) with ``var`` and ``es`` columns;
    ``vol`` one row per (timestamp, symbol) with ``sigma``. The result has a column
    ``var_<level>`` and ``es_<level>`` per level (levels as written, e.g. ``var_0.99``),
    ``sigma`` and the ISO ``timestamp``, indexed by ``symbol`` and ``ts`` (epoch ms, UTC).
    """
    wide = var.pivot(index=["timestamp", "symbol"], columns="level", values=["var", "es"])
    wide.columns = [f"{name}_{level}" for name, level in wide.columns]
    sigma = vol.set_index(["timestamp", "symbol"])["sigma"]
    table = wide.join(sigma).reset_index()
    table["ts"] = [parse_ts(t) for t in table["timestamp"]]
    return table.set_index(["symbol", "ts"])
