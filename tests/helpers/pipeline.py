"""Feeding a price pipeline in-process, as the worker does, without Kafka."""

from __future__ import annotations

from typing import Any

import pandas as pd

from engine.offline.runs import columns_from_frame
from engine.pipeline import PricePipeline

#: Settings of HAR alone, first fitted after 50 sessions with realised variance, refitted
#: every 10 (in-process: no delay), the anomaly stage off.
HAR = {
    "vol_models": ("har",),
    "var_method": "har-normal",
    "refit_first": 50,
    "refit_every": 10,
    "refit_delay": 0,
    "anomaly_enabled": False,
}


def feed(pipeline: PricePipeline, frame: pd.DataFrame, batch: int = 500) -> list[Any]:
    """Run ``frame``'s rows (``timestamp, symbol, price``...) through ``pipeline`` in
    micro-batches of ``batch`` rows, in file order; the outcome of each batch.

    The clock (``now_ms``) is 1 ms after the frame's last tick, so no tick is in the
    future; offsets are row numbers.
    """
    now = int(frame["timestamp"].max().value // 1_000_000) + 1
    outcomes = []
    for start in range(0, len(frame), batch):
        cols = columns_from_frame(frame.iloc[start : start + batch], start)
        outcomes.append(pipeline.process_columns(cols, [], received=len(cols.ts), now_ms=now))
    return outcomes
