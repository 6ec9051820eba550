"""Offline runs: a price table through the same risk book the stream uses.

:func:`run_prices` feeds a long-format frame (``timestamp, symbol, price``, optional
``rv``) to a :class:`~engine.core.PriceRiskBook` in chunks, in file order, and keeps every
accepted row's forecasts. The book is the stream's, tick for tick: for the same input in
the same per-symbol order, these numbers equal the worker's (a test proves it).

Rows the book refuses (a timestamp older than the symbol's previous row, a duplicate)
are reported, not forecast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.boundary.records import RawRecord
from engine.boundary.validation import PriceColumns
from engine.core import PriceRiskBook, RiskSpec, Status
from engine.core.bars import SessionBars
from engine.core.volatility.fitting import Fitter
from engine.core.volatility.session_rv import SessionRVTracker
from engine.pipeline import load_deep

Progress = Callable[[int, int], None]


@dataclass
class OfflineRun:
    """Forecasts of every accepted row (arrays aligned with :attr:`frame`).

    ``var``/``es`` are ``[row, method, level]`` after the row (for the next return);
    ``var_before``/``es_before`` and ``sigma_before`` are the forecasts made at the
    symbol's previous row, for the return ending at this row.
    """

    frame: pd.DataFrame
    methods: tuple[str, ...]
    levels: tuple[float, ...]
    var_levels: tuple[float, ...]
    sigma: dict[str, np.ndarray]
    sigma_before: dict[str, np.ndarray]
    var: np.ndarray
    es: np.ndarray
    var_before: np.ndarray
    es_before: np.ndarray
    hits: np.ndarray
    refused: pd.DataFrame
    """Rows the book refused: ``row`` (0-based in the input), ``symbol``, ``reason``."""
    returns: np.ndarray | None = None
    """Each row's log return as the models saw it (session bars: close to close)."""
    bars: str = "tick"
    """``tick`` or ``session`` (:mod:`engine.core.bars`)."""

    def method_index(self, method: str) -> int:
        return self.methods.index(method)

    def level_index(self, level: float) -> int:
        return self.levels.index(level)


def columns_from_frame(frame: pd.DataFrame, start: int = 0) -> PriceColumns:
    """Validated-table rows as the book's input columns (offsets are row numbers)."""
    n = len(frame)
    ts = frame["timestamp"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    symbols = frame["symbol"].astype(str).tolist()
    rv = frame["rv"].to_numpy(dtype=float) if "rv" in frame else np.full(n, np.nan)
    volume = frame["volume"].to_numpy(dtype=float) if "volume" in frame else np.full(n, np.nan)
    return PriceColumns(
        symbols=symbols,
        ts=ts,
        price=frame["price"].to_numpy(dtype=float),
        volume=volume,
        rv=rv,
        event_ids=[None] * n,
        event_hash=np.zeros(n, np.int64),
        partition=np.zeros(n, np.int32),
        offset=np.arange(start, start + n, dtype=np.int64),
        source=[RawRecord(s.encode(), None, 0, start + i) for i, s in enumerate(symbols)],
    )


def run_prices(
    frame: pd.DataFrame,
    spec: RiskSpec,
    *,
    fitter: Fitter | None = None,
    chunk: int = 2000,
    progress: Progress | None = None,
    realised: SessionRVTracker | None = None,
    bars: SessionBars | None = None,
) -> OfflineRun:
    """Run the book over ``frame`` (long format, in the order the stream would see it).

    ``realised`` computes realised variance from the rows, as the stream does
    (:func:`engine.pipeline.session_rv`); without it only the frame's ``rv`` feeds HAR-RV
    and the deep models. ``bars`` (:mod:`engine.core.bars`, with ``realised``) makes the
    models step on session closes: the run then has one row per session close, stamped
    with the session's last tick and its price, and :attr:`OfflineRun.returns` holds the
    close-to-close returns.
    """
    book = PriceRiskBook(spec, fitter, predictors=load_deep, realised=realised, bars=bars)
    n, m, k = len(frame), len(book.methods), len(book.levels)
    keep: list[np.ndarray] = []
    sigma = {v: [] for v in book.vols}
    sigma_b = {v: [] for v in book.vols}
    parts: dict[str, list[np.ndarray]] = {
        "var": [],
        "es": [],
        "var_before": [],
        "es_before": [],
        "hits": [],
        "returns": [],
        "close_ts": [],
        "close_price": [],
    }
    refused: list[tuple[int, str, str]] = []
    for start in range(0, n, chunk):
        part = frame.iloc[start : start + chunk]
        cols = columns_from_frame(part, start)
        step = book.step(cols)
        keep.append(start + step.accepted)
        for v in book.vols:
            sigma[v].append(step.sigma[v])
            sigma_b[v].append(step.sigma_before[v])
        parts["var"].append(step.var)
        parts["es"].append(step.es)
        parts["var_before"].append(step.var_before)
        parts["es_before"].append(step.es_before)
        parts["hits"].append(step.hits)
        parts["returns"].append(step.returns)
        if step.bars is not None:
            closed = step.bars.closed
            parts["close_ts"].append(step.bars.close_ts[closed])
            parts["close_price"].append(step.bars.close_price[closed])
        for i in np.flatnonzero(step.status != Status.ACCEPTED):
            refused.append(
                (start + int(i), cols.symbols[i], Status(int(step.status[i])).name.lower())
            )
        if progress is not None:
            progress(min(start + chunk, n), n)
    rows = np.concatenate(keep) if keep else np.empty(0, np.int64)

    def stack(name: str, shape: tuple[int, ...]) -> np.ndarray:
        return np.concatenate(parts[name]) if parts[name] else np.empty(shape)

    out = frame.iloc[rows].reset_index(drop=True)
    if bars is not None:  # a close's row: the session's last tick, not the tick closing it
        out["timestamp"] = pd.to_datetime(
            np.concatenate(parts["close_ts"]) if parts["close_ts"] else np.empty(0, np.int64),
            unit="ms",
            utc=True,
        )
        out["price"] = stack("close_price", (0,))
    return OfflineRun(
        frame=out,
        methods=book.methods,
        levels=book.levels,
        var_levels=book.var_levels,
        sigma={v: np.concatenate(x) if x else np.empty(0) for v, x in sigma.items()},
        sigma_before={v: np.concatenate(x) if x else np.empty(0) for v, x in sigma_b.items()},
        var=stack("var", (0, m, k)),
        es=stack("es", (0, m, k)),
        var_before=stack("var_before", (0, m, k)),
        es_before=stack("es_before", (0, m, k)),
        hits=stack("hits", (0, m, len(book.var_levels))),
        refused=pd.DataFrame(refused, columns=["row", "symbol", "reason"]),
        returns=stack("returns", (0,)),
        bars="tick" if bars is None else "session",
    )


def log_returns(run: OfflineRun) -> np.ndarray:
    """Each accepted row's log return since the symbol's previous accepted row (NaN for the first).

    With session bars: the close-to-close returns the models stepped on.
    """
    if run.bars == "session" and run.returns is not None:
        return run.returns
    frame = run.frame
    price = np.log(frame["price"].to_numpy(dtype=float))
    previous = pd.Series(price).groupby(frame["symbol"].to_numpy()).shift(1).to_numpy()
    return price - previous
