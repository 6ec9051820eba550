"""The pipeline every adapter calls: raw records in, risk outputs out, per micro-batch.

:class:`PricePipeline` and :class:`TransactionPipeline` validate a micro-batch, advance
the pure books of :mod:`engine.core`, and turn the result into what the adapters write:
dead letters, alerts, latest-risk snapshots and the state rows to persist. Add-on
models join as :class:`~engine.stages.Stage` s. They do no I/O. The Faust worker, the embedded runner and the tests use these same classes, which
is why streaming output equals batch output for the same input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.alerts import Alert, alert_id
from engine.config import Settings, level_label
from engine.core import CustomerBook, PriceRiskBook, Status
from engine.core.keyed import LoadRow
from engine.core.volatility import EWMAVolatility
from engine.records import DeadLetter, Reason, RecordLike
from engine.snapshots import CustomerSnapshot, RiskSnapshot
from engine.stages import LatestState, Stage, StageInput
from engine.validation import PriceColumns, TransactionColumns, decode_prices, decode_transactions

_VERDICTS = {Status.LATE: Reason.LATE, Status.DUPLICATE: Reason.DUPLICATE}


def _check_stage_state(book: Any, stages: Sequence[Stage]) -> None:
    """Every stage's state must live in the book, or it would not be persisted."""
    held = {id(c) for c in book.components}
    for stage in stages:
        for component in stage.components():
            if id(component) not in held:
                raise ValueError(
                    f"stage {stage.name!r}: component {component.name!r} is not in the book; "
                    "build the book with extra=stage_components(stages)"
                )


def stage_components(stages: Sequence[Stage]) -> tuple[Any, ...]:
    """The state components of ``stages``, for a book's ``extra`` argument."""
    return tuple(c for stage in stages for c in stage.components())


def _run_stages(
    stages: Sequence[Stage], cols: Any, step: Any, keys: list[str], now_ms: int
) -> tuple[list[Alert], list[LatestState]]:
    alerts: list[Alert] = []
    latest: list[LatestState] = []
    for stage in stages:
        out = stage.run(StageInput(cols, step, keys, now_ms))
        alerts += out.alerts
        latest += out.latest
    return alerts, latest


def _verdict_letters(
    topic: str, sources: Sequence[RecordLike], status: np.ndarray, what: str
) -> list[DeadLetter]:
    """Dead letters for the ticks the sequencer refused (late, duplicate)."""
    letters = []
    for i in np.flatnonzero((status == Status.LATE) | (status == Status.DUPLICATE)):
        reason = _VERDICTS[Status(int(status[i]))]
        detail = (
            f"older than the {what}'s last accepted event"
            if reason is Reason.LATE
            else f"repeats an accepted event of the same {what}"
        )
        letters.append(DeadLetter.of(topic, sources[i], reason, detail))
    return letters


# --- prices -------------------------------------------------------------------------------


@dataclass(slots=True)
class PriceOutcome:
    """Everything one price micro-batch produced."""

    received: int
    ticks: PriceColumns
    status: np.ndarray
    dead_letters: list[DeadLetter]
    alerts: list[Alert]
    snapshots: list[RiskSnapshot]
    rows: list[tuple[str, int, bytes | None]]
    breaches: dict[float, int]
    """VaR violations in this batch, per level."""
    latest: list[LatestState] = field(default_factory=list)
    """Latest-state hashes from stages (the snapshots' own are :meth:`RiskSnapshot.latest`)."""
    updates: pd.DataFrame | None = None
    """Per accepted tick forecasts, when the pipeline was asked to keep them."""

    @property
    def accepted(self) -> int:
        return int(np.count_nonzero(self.status == Status.ACCEPTED))

    @property
    def replayed(self) -> int:
        return int(np.count_nonzero(self.status == Status.REPLAY))


class PricePipeline:
    """Validate, sequence and risk-model price ticks; raise VaR-breach alerts.

    A breach of a level in ``alert_levels`` raises a ``var_breach`` alert: severity
    ``critical`` when the loss also exceeds the prior ES forecast, else ``warning``.
    """

    def __init__(
        self,
        book: PriceRiskBook,
        *,
        alert_levels: Sequence[float] = (0.99,),
        max_future_skew_ms: int = 300_000,
        topic: str = "prices",
        keep_updates: bool = False,
        stages: Sequence[Stage] = (),
    ) -> None:
        _check_stage_state(book, stages)
        unknown = set(alert_levels) - set(book.var_levels)
        if unknown:
            raise ValueError(
                f"alert levels {sorted(unknown)} are not VaR levels of the book {book.var_levels}"
            )
        self.book = book
        self.alert_levels = tuple(sorted(alert_levels))
        self.max_future_skew_ms = max_future_skew_ms
        self.topic = topic
        self.keep_updates = keep_updates
        self.stages = tuple(stages)

    @classmethod
    def from_settings(cls, settings: Settings, *, keep_updates: bool = False) -> PricePipeline:
        book = PriceRiskBook(
            EWMAVolatility(settings.ewma_lambda, settings.warmup),
            settings.var_levels,
            settings.es_level,
        )
        return cls(
            book,
            alert_levels=settings.alert_levels,
            max_future_skew_ms=int(settings.max_future_skew_s * 1000),
            keep_updates=keep_updates,
        )

    def process(
        self, records: Sequence[RecordLike], *, now_ms: int, load_row: LoadRow | None = None
    ) -> PriceOutcome:
        """Run one micro-batch. ``now_ms`` bounds acceptable timestamps; ``load_row`` restores state."""
        cols, dead = decode_prices(
            records, topic=self.topic, now_ms=now_ms, max_future_skew_ms=self.max_future_skew_ms
        )
        step = self.book.step(cols, load_row)
        dead += _verdict_letters(self.topic, cols.source, step.status, "symbol")
        stage_alerts, latest = _run_stages(self.stages, cols, step, self.book.index.keys, now_ms)
        return PriceOutcome(
            received=len(records),
            ticks=cols,
            status=step.status,
            dead_letters=dead,
            alerts=self._alerts(cols, step) + stage_alerts,
            snapshots=self._snapshots(step),
            rows=self.book.rows(step.touched),
            breaches={level: int(np.count_nonzero(flags)) for level, flags in step.breach.items()},
            latest=latest,
            updates=self._updates(cols, step) if self.keep_updates else None,
        )

    def _alerts(self, cols: PriceColumns, step: Any) -> list[Alert]:
        book = self.book
        model = book.model_name
        version = book.volatility.model_version
        alerts: list[Alert] = []
        for level in self.alert_levels:
            for j in np.flatnonzero(step.breach[level]):
                i = int(step.accepted[j])
                symbol = cols.symbols[i]
                event = cols.event_ids[i] or str(int(cols.ts[i]))
                loss = float(-step.returns[j])
                threshold = float(step.var_before[level][j])
                alerts.append(
                    Alert(
                        alert_id=alert_id("var_breach", symbol, f"{model}@{level:g}", event),
                        kind="var_breach",
                        subject=symbol,
                        ts=int(cols.ts[i]),
                        severity="critical" if loss > step.es_before[j] else "warning",
                        value=loss,
                        threshold=threshold,
                        model=model,
                        model_version=version,
                        details={
                            "level": level,
                            "event_id": cols.event_ids[i],
                            "price": float(cols.price[i]),
                            "sigma": float(step.sigma_before[j]),
                            "es": float(step.es_before[j]),
                        },
                    )
                )
        return alerts

    def _snapshots(self, step: Any) -> list[RiskSnapshot]:
        """The last accepted tick of each symbol in the batch, with its forecasts (gathered vectorised)."""
        if step.slots.size == 0:
            return []
        book = self.book
        unique, first_from_end = np.unique(step.slots[::-1], return_index=True)
        last = step.slots.size - 1 - first_from_end
        seq = book.sequencer.state
        keys = book.index.keys
        ts = seq["last_ts"][unique].tolist()
        price = seq["last_price"][unique].tolist()
        n_ticks = seq["n_ticks"][unique].tolist()
        sigma = step.sigma[last].tolist()
        es = step.es[last].tolist()
        var = {level: step.var[level][last].tolist() for level in book.var_levels}
        tested, violated = book.backtest.counts_many(unique)
        model, version, es_level = book.model_name, book.volatility.model_version, book.es_level
        return [
            RiskSnapshot(
                symbol=keys[slot],
                ts=ts[i],
                price=price[i],
                sigma=sigma[i],
                var={level: values[i] for level, values in var.items()},
                es_level=es_level,
                es=es[i],
                n_ticks=n_ticks[i],
                model=model,
                model_version=version,
                backtest={level: (tested[level][i], violated[level][i]) for level in tested},
            )
            for i, slot in enumerate(unique.tolist())
        ]

    def _updates(self, cols: PriceColumns, step: Any) -> pd.DataFrame:
        acc = step.accepted
        frame: dict[str, Any] = {
            "symbol": [cols.symbols[i] for i in acc],
            "ts": cols.ts[acc],
            "price": cols.price[acc],
            "return": step.returns,
            "sigma": step.sigma,
        }
        for level in self.book.var_levels:
            frame[f"var_{level_label(level)}"] = step.var[level]
        frame[f"es_{level_label(self.book.es_level)}"] = step.es
        for level in self.book.var_levels:
            frame[f"breach_{level_label(level)}"] = step.breach[level]
        return pd.DataFrame(frame)


# --- transactions -------------------------------------------------------------------------


@dataclass(slots=True)
class TransactionOutcome:
    """Everything one transaction micro-batch produced."""

    received: int
    transactions: TransactionColumns
    status: np.ndarray
    dead_letters: list[DeadLetter]
    snapshots: list[CustomerSnapshot]
    rows: list[tuple[str, int, bytes | None]]
    alerts: list[Alert] = field(default_factory=list)
    latest: list[LatestState] = field(default_factory=list)
    """Latest-state hashes from stages (the snapshots' own are :meth:`CustomerSnapshot.latest`)."""

    @property
    def accepted(self) -> int:
        return int(np.count_nonzero(self.status == Status.ACCEPTED))

    @property
    def replayed(self) -> int:
        return int(np.count_nonzero(self.status == Status.REPLAY))


class TransactionPipeline:
    """Validate and de-duplicate transactions; keep each customer's profile; run the stages."""

    def __init__(
        self,
        book: CustomerBook | None = None,
        *,
        max_future_skew_ms: int = 300_000,
        topic: str = "transactions",
        stages: Sequence[Stage] = (),
    ) -> None:
        self.book = book if book is not None else CustomerBook(extra=stage_components(stages))
        _check_stage_state(self.book, stages)
        self.max_future_skew_ms = max_future_skew_ms
        self.topic = topic
        self.stages = tuple(stages)

    @classmethod
    def from_settings(cls, settings: Settings) -> TransactionPipeline:
        return cls(max_future_skew_ms=int(settings.max_future_skew_s * 1000))

    def process(
        self, records: Sequence[RecordLike], *, now_ms: int, load_row: LoadRow | None = None
    ) -> TransactionOutcome:
        cols, dead = decode_transactions(
            records, topic=self.topic, now_ms=now_ms, max_future_skew_ms=self.max_future_skew_ms
        )
        step = self.book.step(cols, load_row)
        dead += _verdict_letters(self.topic, cols.source, step.status, "customer")
        accepted_slots = np.unique(step.slots[step.status == Status.ACCEPTED])
        profiles = self.book.profiles
        snapshots = [
            CustomerSnapshot(customer_id=self.book.index.keys[s], **profiles.summary(s))  # type: ignore[arg-type]
            for s in accepted_slots.tolist()
        ]
        alerts, latest = _run_stages(self.stages, cols, step, self.book.index.keys, now_ms)
        return TransactionOutcome(
            received=len(records),
            transactions=cols,
            status=step.status,
            dead_letters=dead,
            snapshots=snapshots,
            rows=self.book.rows(step.touched),
            alerts=alerts,
            latest=latest,
        )
