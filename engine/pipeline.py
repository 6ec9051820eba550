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
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.alerts import Alert, alert_id
from engine.boundary.records import DeadLetter, Reason, RecordLike
from engine.boundary.validation import (
    MAX_RECORD_BYTES,
    PriceColumns,
    TransactionColumns,
    decode_prices,
    decode_transactions,
)
from engine.config import Settings
from engine.core import CustomerBook, PriceRiskBook, PriceStep, Status
from engine.core.bars import SessionBars
from engine.core.keyed import LoadRow
from engine.core.var.horizon import horizon_factor
from engine.core.volatility.fitting import Fitter
from engine.core.volatility.refitted import RefittedVolatility
from engine.core.volatility.session_rv import SessionRVTracker
from engine.snapshots import CustomerSnapshot, RiskSnapshot
from engine.stages import LatestState, Stage, StageInput

_VERDICTS = {
    Status.LATE: Reason.LATE,
    Status.DUPLICATE: Reason.DUPLICATE,
    Status.WRONG_PARTITION: Reason.WRONG_PARTITION,
}


def load_deep(kind: str, model_dir: str | None) -> Any:
    """The deep volatility predictors the books use (:func:`engine.deep.model.load_cached`;
    onnxruntime is imported only when a deep model is configured)."""
    from engine.deep.model import load_cached

    return load_cached(kind, model_dir)


def session_rv(settings: Settings) -> SessionRVTracker:
    """The realised variance the books compute from ticks that carry none
    (:mod:`engine.core.volatility.session_rv`): sessions of ``RISKSTREAM_RV_CALENDAR`` from
    ``exchange-calendars``, ``RISKSTREAM_RV_MIN_RETURNS`` intraday returns at least."""
    from engine.anomaly.sessions import session_table

    return SessionRVTracker(
        session_table, settings.risk.rv_calendar, min_returns=settings.risk.rv_min_returns
    )


def session_bars(settings: Settings) -> SessionBars | None:
    """The session bars ``RISKSTREAM_BARS=session`` puts in front of the models
    (:mod:`engine.core.bars`); ``None`` for ``tick``."""
    if settings.risk.bars != "session":
        return None
    return SessionBars(len(settings.risk.var_levels))


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
    topic: str, sources: Sequence[RecordLike], status: np.ndarray, book: Any, what: str
) -> list[DeadLetter]:
    """Dead letters for the records the books refused (late, duplicate, wrong partition)."""
    letters = []
    refused = (status == Status.LATE) | (status == Status.DUPLICATE)
    refused |= status == Status.WRONG_PARTITION
    for i in np.flatnonzero(refused):
        reason = _VERDICTS[Status(int(status[i]))]
        if reason is Reason.LATE:
            detail = f"older than the {what}'s last accepted event"
        elif reason is Reason.DUPLICATE:
            detail = f"repeats an accepted event of the same {what}"
        else:
            key = (sources[i].key or b"").decode("utf-8", "replace")
            detail = (
                f"{what} {key} lives on partition {book.partition(key)}, this record came on "
                f"partition {sources[i].partition}: its producer partitions keys differently "
                "(use murmur2, as kafka-python and the Java client do)"
            )
        letters.append(DeadLetter.of(topic, sources[i], reason, detail))
    return letters


# --- outcomes -----------------------------------------------------------------------------


class _StatusCounts:
    """``accepted`` and ``replayed`` counts of an outcome's per-record ``status`` array."""

    __slots__ = ()

    if TYPE_CHECKING:  # each outcome defines it (a field or a property)

        @property
        def status(self) -> np.ndarray:
            """Per-record :class:`Status` codes of the batch."""

    @property
    def accepted(self) -> int:
        """Records of the batch applied to their key's state (:attr:`Status.ACCEPTED`)."""
        return int(np.count_nonzero(self.status == Status.ACCEPTED))

    @property
    def replayed(self) -> int:
        """Records Kafka redelivered that were already applied (:attr:`Status.REPLAY`), skipped."""
        return int(np.count_nonzero(self.status == Status.REPLAY))


# --- prices -------------------------------------------------------------------------------


@dataclass(slots=True)
class PriceOutcome(_StatusCounts):
    """Everything one price micro-batch produced."""

    received: int
    ticks: PriceColumns
    step: PriceStep
    dead_letters: list[DeadLetter]
    alerts: list[Alert]
    snapshots: list[RiskSnapshot]
    rows: list[tuple[str, int, bytes | None]]
    """``(key, partition, row)`` to persist; empty when processed with ``persist=False``."""
    breaches: dict[tuple[str, float], int]
    """VaR violations in this batch, per (method, level)."""
    latest: list[LatestState] = field(default_factory=list)
    """Latest-state hashes from stages (the snapshots' own are :meth:`RiskSnapshot.latest`)."""

    @property
    def status(self) -> np.ndarray:
        return self.step.status

    @property
    def touched(self) -> np.ndarray:
        """Slots of the symbols whose state changed (what :attr:`rows` persists)."""
        return self.step.touched


def _tick_alert(
    cols: PriceColumns, i: int, kind: str, rule: str, **fields: Any
) -> tuple[int, Alert]:
    """``(i, alert)``: an alert of ``kind`` raised by tick ``i`` of the batch, tagged with
    ``i`` so alerts of all kinds come out in the order of their triggering ticks.

    Its subject is the tick's symbol, its time the tick's, and its id is deterministic in
    (kind, symbol, ``rule``, the tick's ``event_id`` or else its timestamp): a replayed
    tick raises no second alert. ``fields`` are the rest of :class:`Alert`.
    """
    symbol = cols.symbols[i]
    tick = cols.event_ids[i] or str(int(cols.ts[i]))
    return i, Alert(
        alert_id=alert_id(kind, symbol, rule, tick),
        kind=kind,
        subject=symbol,
        ts=int(cols.ts[i]),
        **fields,
    )


class PricePipeline:
    """Validate, sequence and risk-model price ticks; raise VaR-breach alerts.

    A breach of the published method's VaR at a level in ``alert_levels`` raises a
    ``var_breach`` alert: severity ``critical`` when the loss also exceeds the method's
    prior ES forecast, else ``warning``. A rolling backtest that starts rejecting
    (:mod:`engine.core.backtest.rolling`) raises a ``backtest`` alert naming the test, its
    p-value (``value``) and the significance (``threshold``); severity ``critical`` when
    the traffic light turns red, else ``warning``. With the ``champion`` method, a change
    of its live method raises a ``model_switch`` alert (``value`` the new method's mean
    loss over its window, ``threshold`` the replaced one's); severity ``critical`` when the
    replaced method was in the red zone, else ``info``.

    With session bars (``RISKSTREAM_BARS=session``) a breach is judged at a session close,
    on the close-to-close return against the VaR published at the previous close; an
    intraday tick whose return since the last close is below that VaR's negative raises no
    alert (the latest-risk hash shows it: ``session_return`` against ``var_99``), since the
    session may recover before its close. ``horizon`` (``RISKSTREAM_VAR_HORIZON``) scales the
    published VaR/ES only; breaches and the stream's backtests stay one-step.
    """

    def __init__(
        self,
        book: PriceRiskBook,
        *,
        alert_levels: Sequence[float] = (0.99,),
        max_future_skew_ms: int = 300_000,
        max_record_bytes: int = MAX_RECORD_BYTES,
        topic: str = "prices",
        stages: Sequence[Stage] = (),
        horizon: int = 1,
    ) -> None:
        _check_stage_state(book, stages)
        horizon_factor(horizon)  # validates it
        unknown = set(alert_levels) - set(book.var_levels)
        if unknown:
            raise ValueError(
                f"alert levels {sorted(unknown)} are not VaR levels of the book {book.var_levels}"
            )
        self.book = book
        self.alert_levels = tuple(sorted(alert_levels))
        self.max_future_skew_ms = max_future_skew_ms
        self.max_record_bytes = max_record_bytes
        self.topic = topic
        self.stages = tuple(stages)
        self.horizon = horizon

    @classmethod
    def from_settings(
        cls, settings: Settings, *, fitter: Fitter | None = None, stages: Sequence[Stage] = ()
    ) -> PricePipeline:
        """The pipeline the settings describe; ``fitter`` runs model fits (in-process by default).

        ``stages`` default to the anomaly stage the settings enable (:mod:`engine.anomaly`).
        """
        if not stages:
            from engine.anomaly.factory import anomaly_stages

            stages = anomaly_stages(settings, "prices")
        from engine.deep.drift import drift_stages

        drift = drift_stages(settings)
        stages = [*stages, *drift]
        book = PriceRiskBook(
            settings.risk_spec(),
            fitter,
            extra=stage_components(stages),
            predictors=load_deep,
            realised=session_rv(settings),
            bars=session_bars(settings),
        )
        for stage in drift:
            stage.versions = {m: book.vols[m].model_version for m in stage.models}
        return cls(
            book,
            alert_levels=settings.risk.alert_levels,
            max_future_skew_ms=int(settings.validation.max_future_skew_s * 1000),
            max_record_bytes=settings.validation.max_record_bytes,
            stages=stages,
            horizon=settings.risk.var_horizon,
        )

    def process(
        self,
        records: Sequence[RecordLike],
        *,
        now_ms: int,
        load_row: LoadRow | None = None,
        persist: bool = True,
    ) -> PriceOutcome:
        """Run one micro-batch. ``now_ms`` bounds acceptable timestamps; ``load_row`` restores
        state; ``persist=False`` leaves :attr:`PriceOutcome.rows` empty (the caller persists
        the :attr:`~PriceOutcome.touched` slots later, with ``book.rows``)."""
        cols, dead = decode_prices(
            records,
            topic=self.topic,
            now_ms=now_ms,
            max_future_skew_ms=self.max_future_skew_ms,
            max_bytes=self.max_record_bytes,
        )
        return self.process_columns(
            cols, dead, received=len(records), now_ms=now_ms, load_row=load_row, persist=persist
        )

    def process_columns(
        self,
        cols: PriceColumns,
        dead: list[DeadLetter],
        *,
        received: int,
        now_ms: int,
        load_row: LoadRow | None = None,
        persist: bool = True,
    ) -> PriceOutcome:
        """Run one micro-batch of already validated ticks (the offline CLI's entry)."""
        step = self.book.step(cols, load_row)
        dead = dead + _verdict_letters(self.topic, cols.source, step.status, self.book, "symbol")
        stage_alerts, latest = _run_stages(self.stages, cols, step, self.book.index.keys, now_ms)
        hits = step.hits.sum(axis=0)
        return PriceOutcome(
            received=received,
            ticks=cols,
            step=step,
            dead_letters=dead,
            alerts=self._price_alerts(cols, step) + stage_alerts,
            snapshots=self._snapshots(step),
            rows=self.book.rows(step.touched) if persist else [],
            breaches={
                (method, level): int(hits[j, i])
                for j, method in enumerate(self.book.methods)
                for i, level in enumerate(self.book.var_levels)
            },
            latest=latest,
        )

    def _published_sigma(self, step: PriceStep) -> tuple[np.ndarray, np.ndarray]:
        """``(before, after)`` volatility of the published method (for ``hs``: the first model's).

        For ``champion``: its base candidate's model (the ``vol forecast`` default), whichever
        method is live, so the published ``sigma`` is one model's throughout.
        """
        vol = self.book.spec.vol_of(self.book.model_name) or next(iter(step.sigma))
        return step.sigma_before[vol], step.sigma[vol]

    def _price_alerts(self, cols: PriceColumns, step: PriceStep) -> list[Alert]:
        """Breach and backtest alerts in the order of their triggering ticks (batching-independent)."""
        tagged = self._breach_alerts(cols, step) + self._backtest_alerts(cols, step)
        tagged += self._switch_alerts(cols, step)
        tagged.sort(key=lambda pair: pair[0])
        return [alert for _, alert in tagged]

    def _breach_alerts(self, cols: PriceColumns, step: PriceStep) -> list[tuple[int, Alert]]:
        book = self.book
        model, version, pub = book.model_name, book.model_version, book.published
        es_i = book.level_index(book.es_level)
        sigma_before, _ = self._published_sigma(step)
        alerts: list[tuple[int, Alert]] = []
        for level in self.alert_levels:
            li = book.var_levels.index(level)
            for j in np.flatnonzero(step.hits[:, pub, li]):
                i = int(step.accepted[j])
                loss = float(-step.returns[j])
                es_before = float(step.es_before[j, pub, es_i])
                alerts.append(
                    _tick_alert(
                        cols,
                        i,
                        "var_breach",
                        f"{model}@{level:g}",
                        severity="critical" if loss > es_before else "warning",
                        value=loss,
                        threshold=float(step.var_before[j, pub, book.level_index(level)]),
                        model=model,
                        model_version=version,
                        details={
                            "level": level,
                            "event_id": cols.event_ids[i],
                            "price": float(cols.price[i]),
                            "sigma": float(sigma_before[j]),
                            "es": es_before,
                        },
                    )
                )
        return alerts

    def _backtest_alerts(self, cols: PriceColumns, step: PriceStep) -> list[tuple[int, Alert]]:
        significance = self.book.spec.backtest_significance
        alerts = []
        for event in step.backtest_events:
            i = int(step.accepted[event.row])
            rule = f"{event.method}@{event.level:g}:{event.test}"
            if event.zone is not None:
                rule += f":{event.zone}"
            vol = self.book.spec.vol_of(event.method)
            alerts.append(
                _tick_alert(
                    cols,
                    i,
                    "backtest",
                    rule,
                    severity="critical" if event.zone == "red" else "warning",
                    value=event.result.p_value,
                    threshold=significance,
                    model=event.method,
                    model_version=(
                        f"hs-window{self.book.spec.window}"
                        if vol is None
                        else self.book.vols[vol].model_version
                    ),
                    details={
                        "test": event.test,
                        "level": event.level,
                        "p_value": event.result.p_value,
                        "statistic": event.result.statistic,
                        "window": event.window,
                        "violations": event.violations,
                        "expected": event.expected,
                        "zone": event.zone,
                        "event_id": cols.event_ids[i],
                    },
                )
            )
        return alerts

    def _switch_alerts(self, cols: PriceColumns, step: PriceStep) -> list[tuple[int, Alert]]:
        """``model_switch`` alerts: the champion's live method changed after a tick."""
        book = self.book
        if book.champion is None or not step.switches:
            return []
        champion = book.champion
        alerts = []
        for switch in step.switches:
            i = int(step.accepted[switch.row])
            alerts.append(
                _tick_alert(
                    cols,
                    i,
                    "model_switch",
                    f"{switch.previous}->{switch.live}:{switch.reason}",
                    severity="critical" if switch.reason == "red_zone" else "info",
                    value=switch.live_loss,
                    threshold=switch.previous_loss,
                    model=switch.live,
                    model_version=book.method_version(switch.live),
                    details={
                        "previous": switch.previous,
                        "live": switch.live,
                        "reason": switch.reason,
                        "loss": champion.loss,
                        "window": champion.window,
                        "violations_previous": switch.previous_violations,
                        "violations_live": switch.live_violations,
                        "red_at": champion.red_at,
                        "event_id": cols.event_ids[i],
                    },
                )
            )
        return alerts

    def _snapshots(self, step: PriceStep) -> list[RiskSnapshot]:
        """The last accepted tick of each symbol in the batch, with its forecasts (gathered vectorised).

        Session bars: every symbol with an accepted tick, with the forecasts published at its
        last session close and ``session_return`` (the log return since that close) besides
        the realised-variance fields. The published VaR and ES are for the horizon
        (``RISKSTREAM_VAR_HORIZON``, :func:`~engine.core.var.horizon.horizon_factor`).
        """
        book = self.book
        pub = book.published
        keys = book.index.keys
        live: list[str] | None
        session_return = None
        if step.intraday is not None:  # session bars: the forecasts of the last close
            ticks = step.intraday.slots
            if ticks.size == 0:
                return []
            unique, first_from_end = np.unique(ticks[::-1], return_index=True)
            last_tick = ticks.size - 1 - first_from_end
            var_at, es_at, sigma_at = book.bars.published(unique)  # type: ignore[union-attr]
            sigma = sigma_at.tolist()
            es_values = es_at
            var_values = {level: var_at[:, i] for i, level in enumerate(book.var_levels)}
            session_return = step.intraday.session_return[last_tick].tolist()
            live = (
                [book.champion.live_method(slot) for slot in unique.tolist()]
                if book.champion is not None
                else None
            )
        else:
            if step.slots.size == 0:
                return []
            unique, first_from_end = np.unique(step.slots[::-1], return_index=True)
            last = step.slots.size - 1 - first_from_end
            sigma = self._published_sigma(step)[1][last].tolist()
            es_values = step.es[last, pub, book.level_index(book.es_level)]
            var_values = {
                level: step.var[last, pub, book.level_index(level)] for level in book.var_levels
            }
            live = (
                [book.methods[j] for j in step.live[last].tolist()]
                if step.live is not None
                else None
            )
        if self.horizon > 1:
            factor = horizon_factor(self.horizon)
            es_values = es_values * factor
            var_values = {level: values * factor for level, values in var_values.items()}
        es = es_values.tolist()
        var = {level: values.tolist() for level, values in var_values.items()}
        seq = book.sequencer.state
        ts = seq["last_ts"][unique].tolist()
        price = seq["last_price"][unique].tolist()
        n_ticks = seq["n_ticks"][unique].tolist()
        tested, violated = book.backtest.counts_many(unique, pub)
        zones = book.rolling.zones(unique, book.model_name)
        model, version, es_level = book.model_name, book.model_version, book.es_level
        fits = []
        fitted_of: dict[str, RefittedVolatility | None] = {}  # per method: its fitted model, if any
        for i, slot in enumerate(unique.tolist()):
            method = model if live is None else live[i]
            if method not in fitted_of:
                found = book.vols.get(book.spec.vol_of(method) or "")
                fitted_of[method] = found if isinstance(found, RefittedVolatility) else None
            fitted = fitted_of[method]
            fits.append(fitted.fit_status(slot) if fitted is not None else ("", ""))
        reasons = book.champion.explain_many(unique) if live is not None and book.champion else None
        intraday = book.realised.live(unique) if book.realised is not None else None
        if session_return is not None:
            intraday = {**(intraday or {}), "session_return": np.asarray(session_return)}
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
                zones={level: values[i] for level, values in zones.items()},
                fit_status=fits[i][0],
                fit_reason=fits[i][1],
                live_method=live[i] if live is not None else "",
                live_reason=reasons[i] if reasons is not None else "",
                intraday=(
                    {name: values[i] for name, values in intraday.items()}
                    if intraday is not None
                    else None
                ),
            )
            for i, slot in enumerate(unique.tolist())
        ]


# --- transactions -------------------------------------------------------------------------


@dataclass(slots=True)
class TransactionOutcome(_StatusCounts):
    """Everything one transaction micro-batch produced."""

    received: int
    transactions: TransactionColumns
    status: np.ndarray
    dead_letters: list[DeadLetter]
    snapshots: list[CustomerSnapshot]
    rows: list[tuple[str, int, bytes | None]]
    """``(key, partition, row)`` to persist; empty when processed with ``persist=False``."""
    touched: np.ndarray
    """Slots of the customers whose state changed (what :attr:`rows` persists)."""
    alerts: list[Alert] = field(default_factory=list)
    latest: list[LatestState] = field(default_factory=list)
    """Latest-state hashes from stages (the snapshots' own are :meth:`CustomerSnapshot.latest`)."""


class TransactionPipeline:
    """Validate and de-duplicate transactions; keep each customer's profile; run the stages."""

    def __init__(
        self,
        book: CustomerBook | None = None,
        *,
        max_future_skew_ms: int = 300_000,
        max_record_bytes: int = MAX_RECORD_BYTES,
        topic: str = "transactions",
        stages: Sequence[Stage] = (),
    ) -> None:
        self.book = book if book is not None else CustomerBook(extra=stage_components(stages))
        _check_stage_state(self.book, stages)
        self.max_future_skew_ms = max_future_skew_ms
        self.max_record_bytes = max_record_bytes
        self.topic = topic
        self.stages = tuple(stages)

    @classmethod
    def from_settings(cls, settings: Settings) -> TransactionPipeline:
        """The transactions pipeline with the stages the settings enable (credit scoring, anomalies)."""
        from engine.anomaly.factory import anomaly_stages
        from engine.credit.stage import credit_stages

        return cls(
            max_future_skew_ms=int(settings.validation.max_future_skew_s * 1000),
            max_record_bytes=settings.validation.max_record_bytes,
            stages=[*credit_stages(settings), *anomaly_stages(settings, "transactions")],
        )

    def process(
        self,
        records: Sequence[RecordLike],
        *,
        now_ms: int,
        load_row: LoadRow | None = None,
        persist: bool = True,
    ) -> TransactionOutcome:
        """Run one micro-batch (arguments as :meth:`PricePipeline.process`)."""
        cols, dead = decode_transactions(
            records,
            topic=self.topic,
            now_ms=now_ms,
            max_future_skew_ms=self.max_future_skew_ms,
            max_bytes=self.max_record_bytes,
        )
        step = self.book.step(cols, load_row)
        dead += _verdict_letters(self.topic, cols.source, step.status, self.book, "customer")
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
            rows=self.book.rows(step.touched) if persist else [],
            touched=step.touched,
            alerts=alerts,
            latest=latest,
        )
