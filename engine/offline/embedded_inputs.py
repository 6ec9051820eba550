"""A user's own prices and transactions as the records a worker would consume.

``riskstream run --prices FILE`` and ``--transactions FILE`` take either a CSV file or
JSON Lines (``.jsonl``/``.ndjson``, or ``-`` for standard input). JSON Lines carry the
very values of the Kafka topics (``docs/contracts.md``), one per line: each becomes a
record keyed by its ``symbol`` (prices) or ``customer_id`` (transactions), as a
producer keys it, and goes through the same validation as on Kafka, so a bad line is a
dead letter with its reason, never a crash and never lost.

CSV prices are the offline CLI's format (:func:`producers.sources.read_price_csv`);
CSV transactions have the contract's columns ``tx_id,ts,customer_id,amount`` and
optional ``terminal_id``, ``currency``, ``type`` and extra feature columns; an empty
cell means the field is absent.
"""

from __future__ import annotations

import numbers
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson
import pandas as pd

from engine.boundary.records import RawRecord
from engine.errors import InputError

JSONL_SUFFIXES = (".jsonl", ".ndjson")
STDIN = "-"
#: Transaction columns read as text (identifiers), whatever they look like.
TEXT_COLUMNS = ("tx_id", "customer_id", "terminal_id", "currency", "type")
TRANSACTION_COLUMNS = ("tx_id", "ts", "customer_id", "amount")


def is_jsonl(source: str) -> bool:
    """Whether ``source`` (a path, or ``-``) holds JSON Lines."""
    return source == STDIN or source.lower().endswith(JSONL_SUFFIXES)


def jsonl_records(lines: Iterable[bytes], key_field: str) -> Iterator[RawRecord]:
    """One record per non-blank line, keyed by the line's ``key_field`` (when it has one),
    with consecutive offsets on partition 0."""
    offset = 0
    for line in lines:
        value = line.strip()
        if not value:
            continue
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError:
            doc = None
        key = doc.get(key_field) if isinstance(doc, dict) else None
        yield RawRecord(key.encode() if isinstance(key, str) else None, value, 0, offset)
        offset += 1


def _lines(source: str) -> Iterator[bytes]:
    if source == STDIN:
        yield from sys.stdin.buffer
        return
    path = _existing(source)
    with path.open("rb") as fh:
        yield from fh


def _existing(source: str) -> Path:
    path = Path(source)
    if not path.is_file():
        raise InputError(f"file not found: {path}")
    return path


def price_records(source: str) -> tuple[Iterator[RawRecord], int | None]:
    """Records of a price file or stream, and their count when known in advance."""
    if is_jsonl(source):
        return jsonl_records(_lines(source), "symbol"), None
    from engine.offline.embedded import tick_records
    from producers.sources import frame_to_ticks, read_price_csv

    frame = read_price_csv(_existing(source))
    if frame.empty:
        raise InputError(f"{source}: no price rows")
    return tick_records(frame_to_ticks(frame)), len(frame)


def transaction_records(source: str) -> tuple[Iterator[RawRecord], int | None]:
    """Records of a transaction file or stream, and their count when known in advance."""
    if is_jsonl(source):
        return jsonl_records(_lines(source), "customer_id"), None
    path = _existing(source)
    try:
        frame = pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS})
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty") from None
    missing = [c for c in TRANSACTION_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {', '.join(missing)}; "
            f"expected {','.join(TRANSACTION_COLUMNS)} and optional features"
        )
    if frame.empty:
        raise InputError(f"{path}: no transaction rows")
    return _csv_transactions(frame), len(frame)


def _csv_transactions(frame: pd.DataFrame) -> Iterator[RawRecord]:
    columns = list(frame.columns)
    for offset, row in enumerate(frame.itertuples(index=False, name=None)):
        doc = {}
        for name, cell in zip(columns, row, strict=True):
            if isinstance(cell, float) and cell != cell:
                continue  # an empty cell: the field is absent
            doc[name] = _number_or_text(cell) if name == "ts" else cell
        key = doc.get("customer_id")
        value = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
        yield RawRecord(key.encode() if isinstance(key, str) else None, value, 0, offset)


def _number_or_text(cell: object) -> object:
    """A ``ts`` cell: epoch milliseconds when it is an integer, else the text (ISO 8601)."""
    if isinstance(cell, numbers.Integral):
        return int(cell)
    text = str(cell)
    return int(text) if text.isdigit() else text
