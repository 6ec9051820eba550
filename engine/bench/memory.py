"""``riskstream bench memory``: worker memory per symbol, and which state columns hold it.

Builds the worker's price pipeline (:meth:`engine.pipeline.PricePipeline.from_settings`
with the settings of the environment, by default every default model and the
``champion`` method), feeds ``symbols`` synthetic symbols ``ticks`` ticks each in
micro-batches, and reports:

* the growth of the process's resident set (RSS, ``/proc/self/statm``) and of the
  Python heap (``tracemalloc``, which numpy's allocations report to) over the run,
  divided by the symbols;
* the bytes per slot of every state column of the book, largest first, with the
  column kind (``state`` persisted in the row, ``ring`` persisted in blocks,
  ``transient`` rebuilt on restore) and the slot capacity the arrays hold (the
  columns grow by doubling, so the capacity may exceed the symbols);
* the size of a symbol's persisted main row.

Every column is allocated for every slot when its symbol is first seen, except the
lazy ones (:mod:`engine.core.slots`): a model's residual window and the realised
variance history are allocated, for every slot at once, when the first value reaches
them. So that the figure is the steady state, ``warm_symbols`` extra symbols
(``WRM...``) first get ``warm_ticks`` ticks each, a day apart (one session each, so
the first GARCH/GJR fits, requested and installed on the session clock, are in place)
before the measurement starts; then each measured symbol only needs to be admitted and
stepped. Columns a feed never fills stay unallocated (with the synthetic feed, which
carries no ``rv``: the realised-variance history and HAR's residual window).
"""

from __future__ import annotations

import gc
import os
import time
import tracemalloc
from dataclasses import dataclass

import numpy as np

from engine.bench.result import BenchResult
from engine.config import Settings

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """The process's current resident set size in bytes (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


_DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class ColumnBytes:
    """One state column: its bytes per slot and where it lives."""

    component: str
    column: str
    kind: str
    dtype: str
    width: int
    bytes_per_slot: int


@dataclass(frozen=True, slots=True)
class MemoryResult(BenchResult):
    symbols: int
    ticks_per_symbol: int
    warm_symbols: int
    warm_ticks: int
    capacity: int
    """Slots the state arrays hold (at least ``symbols``)."""
    rss_bytes_per_symbol: float
    heap_bytes_per_symbol: float
    columns_bytes_per_slot: int
    """Sum of :attr:`columns` (what one slot of capacity costs; unallocated lazy columns 0)."""
    row_bytes_per_symbol: float
    columns: tuple[ColumnBytes, ...]

    def markdown(self, top: int = 25) -> str:
        lines = [
            f"Memory at {self.symbols:,} symbols ({self.ticks_per_symbol} ticks each, after "
            f"{self.warm_symbols} symbols of {self.warm_ticks} ticks; state arrays hold "
            f"{self.capacity:,} slots):",
            "",
            f"- RSS growth: {self.rss_bytes_per_symbol:,.0f} bytes per symbol",
            f"- Python heap growth (tracemalloc): {self.heap_bytes_per_symbol:,.0f} bytes per symbol",
            f"- state columns: {self.columns_bytes_per_slot:,} bytes per slot",
            f"- persisted main row: {self.row_bytes_per_symbol:,.0f} bytes per symbol",
            "",
            "| component | column | kind | dtype | width | bytes per slot |",
            "|---|---|---|---|---|---|",
        ]
        for c in self.columns[:top]:
            lines.append(
                f"| {c.component} | {c.column} | {c.kind} | {c.dtype} | {c.width} | "
                f"{c.bytes_per_slot:,} |"
            )
        rest = self.columns[top:]
        if rest:
            lines.append(
                f"| ({len(rest)} more) | | | | | {sum(c.bytes_per_slot for c in rest):,} |"
            )
        return "\n".join(lines)


def column_bytes(book: object) -> list[ColumnBytes]:
    """Bytes per slot of every state column of a book (its ``meta`` and components), largest first."""
    out = []
    holders = [("meta", book.meta)] + [(c.name, c.state) for c in book.components]  # type: ignore[attr-defined]
    for name, arrays in holders:
        for column in arrays.columns:
            array = arrays[column.name]
            per = array.itemsize * (array.shape[1] if array.ndim == 2 else 1)
            kind = (
                column.kind
                if arrays.materialized(column.name)
                else f"{column.kind} (lazy, unallocated)"
            )
            out.append(ColumnBytes(name, column.name, kind, array.dtype.name, column.width, per))
    out.sort(key=lambda c: (-c.bytes_per_slot, c.component, c.column))
    return out


def run(
    *,
    symbols: int = 10_000,
    ticks: int = 30,
    batch: int = 20_000,
    warm_symbols: int = 4,
    warm_ticks: int = 300,
    heap: bool = True,
    settings: Settings | None = None,
) -> MemoryResult:
    """Measure (see the module docstring); ``settings`` default to the environment's.

    ``heap=False`` leaves ``tracemalloc`` off (its own bookkeeping then stays out of the
    RSS figure; the heap figure is NaN).
    """
    from engine.bench.e2e import synthetic_messages
    from engine.boundary.records import RawRecord
    from engine.core import Status
    from engine.pipeline import PricePipeline

    settings = settings if settings is not None else Settings()
    messages = synthetic_messages(symbols * ticks, symbols, seed=2)
    records = [RawRecord(k, v, 0, i) for i, (k, v) in enumerate(messages)]
    del messages
    warm = [
        RawRecord(k.replace(b"SYN", b"WRM"), v.replace(b"SYN", b"WRM"), 0, i)
        for i, (k, v) in enumerate(
            synthetic_messages(warm_symbols * warm_ticks, warm_symbols, 3, interval_ms=_DAY_MS)
        )
    ]
    # Compile and warm every kernel on a throwaway pipeline, so code is not counted as state.
    PricePipeline.from_settings(settings).process(records[:batch], now_ms=int(time.time() * 1000))
    pipeline = PricePipeline.from_settings(settings)
    if warm:  # past the first fits: every column the feed fills is allocated
        pipeline.process(warm, now_ms=int(time.time() * 1000))
    gc.collect()
    rss0 = rss_bytes()
    if heap:
        tracemalloc.start()
    heap0 = tracemalloc.get_traced_memory()[0]
    for start in range(0, len(records), batch):
        outcome = pipeline.process(records[start : start + batch], now_ms=int(time.time() * 1000))
        if not (outcome.status == Status.ACCEPTED).all():
            raise RuntimeError("the synthetic ticks must all be accepted")
        del outcome
    gc.collect()
    heap_bytes = tracemalloc.get_traced_memory()[0] - heap0 if heap else float("nan")
    tracemalloc.stop()
    rss = rss_bytes() - rss0
    book = pipeline.book
    # the warm symbols are not in the per-symbol figures' denominator, nor in the row sizes
    measured = np.array([book.index.slot(k) for k in book.index.keys if not k.startswith("WRM")])
    rows = book.rows(measured)
    row_bytes = sum(len(row) for key, _, row in rows if row is not None and "\x00" not in key)
    columns = column_bytes(book)
    return MemoryResult(
        symbols=symbols,
        ticks_per_symbol=ticks,
        warm_symbols=warm_symbols,
        warm_ticks=warm_ticks,
        capacity=book.meta.capacity,
        rss_bytes_per_symbol=rss / symbols,
        heap_bytes_per_symbol=heap_bytes / symbols,
        columns_bytes_per_slot=sum(c.bytes_per_slot for c in columns),
        row_bytes_per_symbol=row_bytes / symbols,
        columns=tuple(columns),
    )
