"""The Taiwan credit-card clients replayed as ``credit_review`` transactions.

Source data: ``credit/taiwan_default_of_credit_card_clients.csv`` in the shared data
directory (UCI "default of credit card clients", 30,000 rows, 23 features). Each row is one
review of one account, which the engine's credit stage scores (:mod:`engine.credit.stage`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from engine.boundary.schemas import Transaction
from engine.errors import InputError
from engine.paths import shared_file
from producers.sources import _existing, _numeric, _read_csv, _require_columns

TAIWAN_CREDIT = "credit/taiwan_default_of_credit_card_clients.csv"
TAIWAN_TARGET = "default.payment.next.month"


def taiwan_rows(path: Path | None = None) -> int:
    """Rows in the file (for progress bars)."""
    path = shared_file(TAIWAN_CREDIT) if path is None else _existing(path)
    with path.open("rb") as f:
        return max(0, sum(1 for _ in f) - 1)


def taiwan_credit(
    path: Path | None = None,
    *,
    start_ms: int | None = None,
    interval_ms: int = 1000,
    passes: int = 1,
    labels: bool = False,
) -> Iterator[Transaction]:
    """Replay the rows as ``credit_review`` transactions, in file order.

    Row ``ID`` becomes customer ``tw<ID>`` and one review::

        Transaction(tx_id="cr-<ID>-<pass>", customer_id="tw<ID>", type="credit_review",
                    amount=max(BILL_AMT1, 0),
                    features={every feature column by its name, "exposure": LIMIT_BAL})

    the 23 feature columns (what the credit model reads), the latest statement balance as
    the amount, and the credit line as the exposure at default. ``passes`` > 1 replays the
    file again: customers recur, with new review ids and the same features. Reviews are
    ``interval_ms`` apart from ``start_ms`` (epoch ms; default: the last one is now).

    ``labels`` adds the outcome as the feature ``default_next_month`` (off by default: a
    scorer must not see the label it is scored on).

    Raises
    ------
    InputError
        If the file is missing, lacks ``ID``, ``LIMIT_BAL`` or ``BILL_AMT1``, or a feature
        column holds text.
    """
    if passes < 1 or interval_ms < 1:
        raise InputError("passes and interval_ms must be at least 1")
    path = shared_file(TAIWAN_CREDIT) if path is None else _existing(path)
    frame = _read_csv(path)
    _require_columns(frame, ("ID", "LIMIT_BAL", "BILL_AMT1"), path)
    features = [c for c in frame.columns if c not in ("ID", TAIWAN_TARGET)]
    values = np.column_stack(
        [_numeric(frame[name], path, name, allow_missing=True).to_numpy() for name in features]
    )
    if start_ms is None:
        start_ms = int(time.time() * 1000) - (len(frame) * passes - 1) * interval_ms
    ids = frame["ID"].astype(str).tolist()
    outcome = frame[TAIWAN_TARGET].tolist() if labels and TAIWAN_TARGET in frame.columns else None
    limit = features.index("LIMIT_BAL")
    bill = features.index("BILL_AMT1")
    docs = [_features(features, row) for row in values]
    n = 0
    for p in range(passes):
        for r, row_id in enumerate(ids):
            doc = dict(docs[r])
            doc["exposure"] = doc[features[limit]]
            if outcome is not None:
                doc["default_next_month"] = int(outcome[r])
            balance = values[r, bill]
            yield Transaction(
                f"cr-{row_id}-{p}",
                start_ms + n * interval_ms,
                f"tw{row_id}",
                float(balance) if balance > 0 else 0.0,
                type="credit_review",
                features=doc,
            )
            n += 1


def _features(names: list[str], row: np.ndarray) -> dict[str, Any]:
    """Whole numbers as integers (as in the file), missing as null."""
    out: dict[str, Any] = {}
    for name, x in zip(names, row.tolist(), strict=True):
        out[name] = None if x != x else (int(x) if x.is_integer() else x)
    return out
