"""Training and evaluation data, computed by the stream's own code.

:func:`replay_transactions` replays the fraud-handbook transactions (labels included, as
the replay producer sends them) through :class:`~engine.pipeline.TransactionPipeline`
with the anomaly stage, in micro-batches, and keeps every feature row the stage
computed: the features of the training and test weeks are therefore *exactly* what the
stream computes, customer windows, delayed terminal risk and all.
:func:`price_rows` does the same for price streams (the book's EWMA forecast feeding
:class:`~engine.anomaly.features.prices.PriceFeatures`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from engine.artifacts.cards import sha256_file
from engine.boundary.timeutil import parse_ts

DAY_MS = 86_400_000


@dataclass
class TransactionReplay:
    """Feature rows of replayed transactions, in arrival order."""

    X: np.ndarray
    labels: np.ndarray
    ts: np.ndarray
    customers: list[str]
    tx_ids: list[str]
    scenario: np.ndarray
    """The simulator's fraud scenario (0 genuine, 1 amount, 2 terminal, 3 customer)."""
    source: str
    sha256: str

    def between(self, start: str, end: str) -> np.ndarray:
        """Mask of rows with ``start <= ts < end`` (ISO dates, UTC)."""
        return (self.ts >= parse_ts(start)) & (self.ts < parse_ts(end))


@cache
def file_sha256(path: Path) -> str:
    """:func:`engine.artifacts.cards.sha256_file`, once per path per process."""
    return sha256_file(path)


def replay_transactions(
    path: Path | None = None,
    *,
    start: str = "2018-06-15",
    end: str = "2018-08-15",
    batch: int = 20_000,
    progress: Callable[[int], None] | None = None,
) -> TransactionReplay:
    """The fraud-handbook rows with ``start <= ts < end`` through the stream's stage.

    ``start`` must leave 37 days before the first row that is used (30-day windows after
    the 7-day label delay).
    """
    from engine.anomaly.detectors.robust import Channel, RobustDetector
    from engine.anomaly.stages import TRANSACTION_FEATURES, TransactionAnomalyStage
    from engine.boundary.timeutil import now_ms
    from engine.paths import shared_file
    from engine.pipeline import TransactionPipeline
    from producers.sources import FRAUD_HANDBOOK, fraud_handbook

    source = Path(path) if path is not None else shared_file(FRAUD_HANDBOOK)
    first, last = parse_ts(start), parse_ts(end)
    # features only: a cheap detector (its scores are not used)
    detector = RobustDetector(TRANSACTION_FEATURES, (Channel("amount", "upper"),), scope="global")
    stage = TransactionAnomalyStage(detector, keep=True)
    pipeline = TransactionPipeline(stages=[stage])
    scenario: dict[str, int] = {}
    now = now_ms()
    records = []
    done = 0
    for offset, tx in enumerate(fraud_handbook(source, labels=True)):
        if tx.ts < first:
            continue
        if tx.ts >= last:
            break
        scenario[tx.tx_id] = int(tx.features["tx_fraud_scenario"])
        records.append(tx.to_record(offset))
        if len(records) == batch:
            pipeline.process(records, now_ms=now)
            done += len(records)
            records = []
            if progress is not None:
                progress(done)
    if records:
        pipeline.process(records, now_ms=now)
        done += len(records)
        if progress is not None:
            progress(done)
    got = stage.captured.arrays()
    tx_ids = got["tx_ids"]
    return TransactionReplay(
        X=got["features"],
        labels=np.concatenate(got["labels"]) if got["labels"] else np.empty(0),
        ts=got["ts"],
        customers=got["keys"],
        tx_ids=tx_ids,
        scenario=np.array([scenario[t] for t in tx_ids], dtype=np.int64),
        source=str(source),
        sha256=file_sha256(source),
    )


def price_rows(frame: object) -> np.ndarray:
    """Feature rows of a long price frame, as the stage computes them (see the module docstring)."""
    from engine.anomaly.reference import price_feature_rows

    return price_feature_rows(frame)
