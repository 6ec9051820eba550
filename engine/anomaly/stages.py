"""Anomaly detection as pipeline stages (:mod:`engine.stages`): prices and transactions.

Each stage computes its stream's features for the accepted events of a micro-batch
(in the stream, with the same code the evaluation and the offline CLI use), scores
them with one detector, applies the alert policy, and returns alerts and a
latest-state hash per key, ``riskstream:anomaly:<stream>:<key>`` (``ts``, ``score``,
``surprisal``, ``detector``, ``n``, ``alerts``). Per-key state (features,
calibration, alert episodes) is made of online components persisted with the key's
row, so a restarted worker resumes exactly; replayed records (status ``REPLAY``)
never reach a stage's state.

Terminal state (transactions). Transactions are keyed and partitioned by customer;
a terminal's transactions come from every partition, so terminal risk cannot live in
a key's row. It is a side input, :class:`~.features.terminals.TerminalRiskTable`, fed
by the stage with every accepted transaction its process sees. Because a label is
only used ``delay`` days after its transaction, the table's answer for a transaction
depends only on days that ended at least a week earlier. Exact where one process sees
every transaction in event-time order: the embedded runner, the evaluation (which
therefore computes features exactly as this stage does, by running it), a worker that
owns every partition. Approximate otherwise, and stated: with several workers each
worker's table sees the terminals' transactions of its own partitions only (a terminal's
risk is then estimated from a sample of its traffic), and the table is process state,
rebuilt from the stream after a restart (it is complete again after ``delay + 30``
days of event time). The production design that removes both limits is a repartition
topic keyed by terminal feeding a table every worker reads (a faust ``GlobalTable``);
because of the delay, that table may lag the stream by up to a day without changing
any feature.

``keep=True`` keeps every scored event (features, surprisals, decisions) in
:attr:`captured`, for the evaluation and tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.anomaly.alerting import anomaly_alert
from engine.anomaly.calibration import score_from_surprisal
from engine.anomaly.detectors.base import Detector, Scores
from engine.anomaly.features.prices import PRICE_FEATURES, PriceFeatures
from engine.anomaly.features.terminals import TERMINAL_FEATURES, TerminalRiskTable
from engine.anomaly.features.transactions import (
    CUSTOMER_FEATURES,
    TIME_FEATURES,
    CustomerWindows,
    time_features,
)
from engine.anomaly.policy import AlertPolicy
from engine.boundary.timeutil import format_ts
from engine.core.online import OnlineComponent
from engine.core.sequencer import Status
from engine.explain.service import ExplainInput
from engine.stages import LatestState, StageInput, StageOutput

LATEST_KEY = "riskstream:anomaly:{stream}:{key}"
REVIEW_TYPE = "credit_review"
"""Transactions of this type (credit reviews) are not scored for anomalies."""
TRANSACTION_FEATURES = CUSTOMER_FEATURES + TERMINAL_FEATURES + TIME_FEATURES
"""Column order of a transaction's feature row."""


@dataclass(slots=True)
class Captured:
    """Scored events of a stage, batch by batch (rows in arrival order)."""

    keys: list[str] = field(default_factory=list)
    ts: list[np.ndarray] = field(default_factory=list)
    features: list[np.ndarray] = field(default_factory=list)
    surprisal: list[np.ndarray] = field(default_factory=list)
    channels: list[np.ndarray] = field(default_factory=list)
    fired: list[np.ndarray] = field(default_factory=list)
    extra: dict[str, list[Any]] = field(default_factory=dict)

    def add(
        self, keys: list[str], ts: np.ndarray, X: np.ndarray, scores: Scores, fired: np.ndarray
    ) -> None:
        self.keys += keys
        self.ts.append(ts)
        self.features.append(X)
        self.surprisal.append(scores.surprisal)
        self.channels.append(scores.channels)
        self.fired.append(fired)

    def arrays(self) -> dict[str, Any]:
        """Everything captured, concatenated."""

        def cat(parts: list[np.ndarray], width: int | None = None) -> np.ndarray:
            if parts:
                return np.concatenate(parts)
            return np.empty((0, width) if width else 0)

        return {
            "keys": list(self.keys),
            "ts": cat(self.ts),
            "features": cat(self.features, 1),
            "surprisal": cat(self.surprisal),
            "channels": cat(self.channels, 1),
            "fired": cat(self.fired),
            **{k: list(v) for k, v in self.extra.items()},
        }


def _last_per_slot(slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique slots and the row of each one's last event in the batch."""
    unique, first_from_end = np.unique(slots[::-1], return_index=True)
    return unique, slots.size - 1 - first_from_end


class PriceAnomalyStage:
    """Anomalies in price ticks: features from the book's step, one detector, the policy.

    Parameters
    ----------
    detector : Detector
        Built for :data:`~engine.anomaly.features.prices.PRICE_FEATURES`.
    policy : AlertPolicy
        Threshold and episodes (one alert per episode, by default).
    features : PriceFeatures, optional
        The feature component (its options).
    vol_model : str, optional
        Which of the book's volatility models standardises returns (the published
        method's, as the pipeline passes it); by default ``ewma`` if the book has it,
        else its first.
    keep : bool
        Keep every scored tick in :attr:`captured`.
    """

    name = "anomaly_prices"

    def __init__(
        self,
        detector: Detector,
        policy: AlertPolicy | None = None,
        *,
        features: PriceFeatures | None = None,
        vol_model: str | None = None,
        keep: bool = False,
    ) -> None:
        self.detector = detector
        self.vol_model = vol_model
        self.policy = policy if policy is not None else AlertPolicy()
        self.features = features if features is not None else PriceFeatures()
        self.alert_state = self.policy.state("anomaly_price_alerts")
        self.keep = keep
        self.captured = Captured()

    def components(self) -> tuple[OnlineComponent, ...]:
        return (self.features, *self.detector.components(), self.alert_state)

    def run(self, data: StageInput) -> StageOutput:
        step, cols = data.step, data.columns
        out = StageOutput()
        if step.slots.size == 0:
            return out
        acc = step.accepted
        ts = cols.ts[acc]
        sigma_before = book_sigma(step.sigma_before, self.vol_model)
        X = self.features.update(step.slots, ts, step.returns, sigma_before, cols.volume[acc])
        scores = self.detector.update(step.slots, X)
        fired = self.alert_state.update(step.slots, scores.surprisal, self.policy.surprisal)
        keys = data.keys
        if self.keep:
            self.captured.add([keys[s] for s in step.slots.tolist()], ts, X, scores, fired)
        detector = self.detector
        for j in np.flatnonzero(fired).tolist():
            i = int(acc[j])
            symbol = keys[int(step.slots[j])]
            event = cols.event_ids[i] or str(int(cols.ts[i]))
            out.alerts.append(
                anomaly_alert(
                    stream="prices",
                    subject=symbol,
                    event_key=event,
                    ts=int(cols.ts[i]),
                    detector=detector,
                    scores=scores,
                    row=j,
                    policy=self.policy,
                    feature_names=PRICE_FEATURES,
                    features=X[j],
                    context={
                        "event_id": cols.event_ids[i],
                        "price": float(cols.price[i]),
                        "sigma": float(sigma_before[j]),
                    },
                )
            )
        out.latest = _latest(
            "prices", step.slots, ts, scores, keys, self.alert_state, detector.name
        )
        return out


def _label(value: Any) -> float:
    """A fraud label from a transaction field: 1.0, 0.0, or NaN when absent or unreadable."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return 1.0 if value > 0.5 else 0.0
    if isinstance(value, str) and value.strip() in ("0", "1"):
        return float(value.strip())
    return np.nan


class TransactionAnomalyStage:
    """Anomalies in transactions: customer windows, terminal risk, time of day; one detector.

    Parameters
    ----------
    detector : Detector
        Built for :data:`TRANSACTION_FEATURES` (global calibration: a customer has too
        few transactions to calibrate alone).
    policy : AlertPolicy
        Threshold; ``rearm=0`` by default here: every transaction is a decision.
    terminals : TerminalRiskTable, optional
        The terminal side input (module docstring); a private one by default.
    label_field : str
        The transaction field carrying a (delayed) fraud label, if any.
    feed_terminals : bool
        Record accepted transactions in the terminal table (off: read-only side input).
    keep : bool
        Keep every scored transaction in :attr:`captured` (with its label).
    """

    name = "anomaly_transactions"

    def __init__(
        self,
        detector: Detector,
        policy: AlertPolicy | None = None,
        *,
        terminals: TerminalRiskTable | None = None,
        label_field: str = "tx_fraud",
        feed_terminals: bool = True,
        keep: bool = False,
    ) -> None:
        self.detector = detector
        self.policy = policy if policy is not None else AlertPolicy(rearm=0)
        self.windows = CustomerWindows()
        self.terminals = terminals if terminals is not None else TerminalRiskTable()
        self.label_field = label_field
        self.feed_terminals = feed_terminals
        self.alert_state = self.policy.state("anomaly_tx_alerts")
        self.keep = keep
        self.captured = Captured(extra={"labels": [], "tx_ids": []})

    def components(self) -> tuple[OnlineComponent, ...]:
        return (self.windows, *self.detector.components(), self.alert_state)

    def explainable_models(self) -> list[Any]:
        """The detector's tree model for SHAP (gradient-boosted trees), else none."""
        models = getattr(self.detector, "explainable_models", None)
        return list(models()) if models is not None else []

    def features(self, data: StageInput) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(accepted positions, their feature rows, their labels)``; updates the feature state."""
        step, cols = data.step, data.columns
        acc = np.flatnonzero(step.status == Status.ACCEPTED)
        # credit reviews are applications, not payments: the credit stage's, not ours
        acc = acc[np.array([cols.types[i] != REVIEW_TYPE for i in acc.tolist()], dtype=bool)]
        slots = step.slots[acc]
        ts = cols.ts[acc]
        labels = np.array(
            [_label(cols.extras[i].get(self.label_field)) for i in acc.tolist()], dtype=np.float64
        )
        customer = self.windows.update(slots, ts, cols.amount[acc])
        terminal = self.terminals.update(
            [cols.terminals[i] for i in acc.tolist()], ts, labels, feed=self.feed_terminals
        )
        return acc, np.hstack([customer, terminal, time_features(ts)]), labels

    def run(self, data: StageInput) -> StageOutput:
        out = StageOutput()
        acc, X, labels = self.features(data)
        if acc.size == 0:
            return out
        cols, keys = data.columns, data.keys
        slots = data.step.slots[acc]
        scores = self.detector.update(slots, X)
        fired = self.alert_state.update(slots, scores.surprisal, self.policy.surprisal)
        if self.keep:
            self.captured.add([keys[s] for s in slots.tolist()], cols.ts[acc], X, scores, fired)
            self.captured.extra["labels"].append(labels)
            self.captured.extra["tx_ids"] += [cols.tx_ids[i] for i in acc.tolist()]
        detector = self.detector
        rows = np.flatnonzero(fired)
        vectors = getattr(detector, "explain_vectors", None)
        explain = vectors(X[rows]) if vectors is not None and rows.size else None
        for n, j in enumerate(rows.tolist()):
            i = int(acc[j])
            customer = keys[int(slots[j])]
            out.alerts.append(
                anomaly_alert(
                    stream="transactions",
                    subject=customer,
                    event_key=cols.tx_ids[i],
                    ts=int(cols.ts[i]),
                    detector=detector,
                    scores=scores,
                    row=j,
                    policy=self.policy,
                    feature_names=TRANSACTION_FEATURES,
                    features=X[j],
                    context={
                        "tx_id": cols.tx_ids[i],
                        "terminal_id": cols.terminals[i],
                        "amount": float(cols.amount[i]),
                    },
                    explain_input=None if explain is None else ExplainInput(explain[n]),
                )
            )
        out.latest = _latest(
            "transactions", slots, cols.ts[acc], scores, keys, self.alert_state, detector.name
        )
        return out


def book_sigma(sigma_before: Any, vol_model: str | None) -> np.ndarray:
    """The book's volatility forecast for each return: one model's, when the book has several."""
    if not isinstance(sigma_before, dict):
        return np.asarray(sigma_before)
    if vol_model is None:
        vol_model = "ewma" if "ewma" in sigma_before else next(iter(sigma_before))
    return sigma_before[vol_model]


def _latest(
    stream: str,
    slots: np.ndarray,
    ts: np.ndarray,
    scores: Scores,
    keys: list[str],
    alert_state: Any,
    detector: str,
) -> list[LatestState]:
    unique, last = _last_per_slot(slots)
    n = alert_state.state["n"][unique].tolist()
    alerts = alert_state.state["alerts"][unique].tolist()
    surprisal = scores.surprisal[last]
    score = score_from_surprisal(surprisal).tolist()
    stamps = ts[last].tolist()
    surprisal_list = surprisal.tolist()
    return [
        LatestState(
            LATEST_KEY.format(stream=stream, key=keys[slot]),
            "n",
            n[k],
            {
                "ts": format_ts(stamps[k]),
                "score": repr(score[k]),
                "surprisal": repr(surprisal_list[k]),
                "detector": detector,
                "n": str(n[k]),
                "alerts": str(alerts[k]),
            },
        )
        for k, slot in enumerate(unique.tolist())
    ]
