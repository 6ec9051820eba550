"""The credit stage: probability of default and expected loss per customer, in the stream.

Which transactions are scored: those with ``type == "credit_review"``, and any other that
carries every one of the model's features as fields (a transaction that "carries the
account's credit features"). The model's features are read from the transaction's extra
fields by name (:meth:`~engine.credit.card.ModelCard.encode_rows`: absent or null is
missing). All the scored transactions of a micro-batch go through onnxruntime in **one**
call (:meth:`~engine.credit.model.CreditModel.predict`).

Per customer, kept as stage state (:class:`CreditState`, persisted with the customer's row):
the number of reviews scored, the latest PD, exposure and expected loss
``EL = PD x LGD x exposure``, where the exposure at default is the transaction's
``exposure`` field (``RISKSTREAM_CREDIT_EXPOSURE_FIELD``; the producer of Taiwan reviews puts
the credit line, ``LIMIT_BAL``, there) or, without one, its ``amount``. Published as the
latest-state hash ``riskstream:credit:<customer_id>`` (fields: ``customer_id``, ``ts``,
``reviews``, ``pd``, ``expected_loss``, ``exposure``, ``lgd``, ``over_pd``, ``over_el``,
``model``, ``model_version``), only moving forward (``reviews``).

Alerts fire when a limit is *crossed*: the customer's PD goes above ``pd_limit``
(``credit_pd``, value = PD) or expected loss above ``el_limit`` (``credit_el``, value = EL),
having been at or below it (or unknown) before. A customer who stays above raises no new
alert until they have come back below. Severity is ``critical`` when the customer is above
both limits after the event, else ``warning``. Ids are deterministic:
``alert_id(kind, customer, "<model version>@<limit>", tx_id)``. Each alert carries
``explain_input`` (the encoded feature vector), so the explanation service attaches its
SHAP attributions off the hot path.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numba
import numpy as np

from engine.alerts import Alert, alert_id
from engine.boundary.timeutil import format_ts
from engine.config import Settings
from engine.core.online import OnlineComponent
from engine.core.sequencer import Status
from engine.core.slots import Column
from engine.credit.model import DEFAULT_MODEL_DIR, CreditModel
from engine.stages import LatestState, StageInput, StageOutput

CREDIT_KEY = "riskstream:credit:{}"
REVIEW_TYPE = "credit_review"
PD_CROSSED, EL_CROSSED = 1, 2

_CORE_FIELDS = ("amount", "terminal_id", "currency", "type")


@numba.njit(cache=True, nogil=True)
def _update(
    slots,
    ts,
    pd,
    el,
    exposure,
    pd_limit,
    el_limit,
    reviews,
    s_pd,
    s_el,
    s_exp,
    s_ts,
    over_pd,
    over_el,
    crossed,
):  # pragma: no cover - compiled
    for j in range(slots.shape[0]):
        s = slots[j]
        reviews[s] += 1
        s_pd[s] = pd[j]
        s_el[s] = el[j]
        s_exp[s] = exposure[j]
        if ts[j] > s_ts[s]:
            s_ts[s] = ts[j]
        flags = 0
        above = pd[j] > pd_limit
        if above and over_pd[s] == 0:
            flags |= 1
        over_pd[s] = 1 if above else 0
        above = el[j] > el_limit
        if above and over_el[s] == 0:
            flags |= 2
        over_el[s] = 1 if above else 0
        crossed[j] = flags


class CreditState(OnlineComponent):
    """Per customer: reviews scored, latest PD / expected loss / exposure, limits exceeded."""

    name = "credit"

    def columns(self) -> Sequence[Column]:
        return (
            Column("reviews", np.int64, 0),
            Column("pd", np.float64, np.nan),
            Column("expected_loss", np.float64, np.nan),
            Column("exposure", np.float64, np.nan),
            Column("last_ts", np.int64, -1),
            Column("over_pd", np.int8, 0),
            Column("over_el", np.int8, 0),
        )


class CreditStage:
    """Scores credit reviews in batches; see the module docstring."""

    name = "credit"
    alert_kinds = ("credit_pd", "credit_el")
    """Kinds of the alerts this stage raises (metrics start their counters at 0)."""

    def __init__(
        self,
        model: CreditModel,
        *,
        lgd: float = 0.45,
        pd_limit: float = 0.5,
        el_limit: float = 50_000.0,
        exposure_field: str = "exposure",
    ) -> None:
        if not 0.0 < lgd <= 1.0:
            raise ValueError("lgd must be in (0, 1]")
        if not 0.0 < pd_limit < 1.0:
            raise ValueError("pd_limit must be strictly between 0 and 1")
        if not el_limit > 0.0:
            raise ValueError("el_limit must be positive")
        self.model = model
        self.lgd = lgd
        self.pd_limit = pd_limit
        self.el_limit = el_limit
        self.exposure_field = exposure_field
        self.state = CreditState()
        self.names = model.card.feature_names
        self._core = [n for n in self.names if n in _CORE_FIELDS]
        self._metrics: Any = None
        self.calls = 0
        """ONNX calls made (one per micro-batch with reviews)."""

    @classmethod
    def from_settings(cls, settings: Settings, model: CreditModel | None = None) -> CreditStage:
        return cls(
            model or CreditModel(settings.credit.model_dir or DEFAULT_MODEL_DIR),
            lgd=settings.credit.lgd,
            pd_limit=settings.credit.pd_limit,
            el_limit=settings.credit.el_limit,
            exposure_field=settings.credit.exposure_field,
        )

    def components(self) -> tuple[OnlineComponent, ...]:
        return (self.state,)

    def explainable_models(self) -> list[Any]:
        """The model, for the explanation service (:class:`~engine.explain.ExplainableModel`)."""
        from engine.explain.service import ExplainableModel

        card = self.model.card
        return [
            ExplainableModel(
                name=card.name,
                version=card.version,
                features=tuple(card.feature_names),
                shap=self.model.explainer(),
                display=card.display,
                importance=list(card.extra.get("global_importance", [])),
            )
        ]

    def bind_metrics(self, registry: Any) -> None:
        """Count scored reviews and time ONNX calls on a Prometheus registry."""
        from prometheus_client import Counter, Histogram, Info

        self._metrics = (
            Counter(
                "riskstream_credit_scored_total",
                "Credit reviews scored by the credit model.",
                registry=registry,
            ),
            Histogram(
                "riskstream_credit_inference_seconds",
                "Wall time of one batched onnxruntime call of the credit model.",
                buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
                registry=registry,
            ),
        )
        Info("riskstream_credit_model", "The credit model served.", registry=registry).info(
            {"model": self.model.name, "version": self.model.version}
        )

    # --- the batch ------------------------------------------------------------------------

    def _selected(self, data: StageInput) -> list[int]:
        cols = data.columns
        types = cols.types
        extras = cols.extras
        names = self.names
        probe = names[0]
        out = []
        for i in np.flatnonzero(data.step.status == Status.ACCEPTED).tolist():
            if types[i] == REVIEW_TYPE or (
                probe in extras[i] and all(n in extras[i] for n in names)
            ):
                out.append(i)
        return out

    def _rows(self, data: StageInput, idx: list[int]) -> list[dict[str, Any]]:
        cols = data.columns
        rows = [cols.extras[i] for i in idx]
        if self._core:  # a model feature that is a core transaction field
            sources = {
                "amount": cols.amount,
                "terminal_id": cols.terminals,
                "currency": cols.currencies,
                "type": cols.types,
            }
            rows = [
                {**row, **{n: sources[n][i] for n in self._core}}
                for row, i in zip(rows, idx, strict=True)
            ]
        return rows

    def _exposure(self, data: StageInput, idx: list[int]) -> np.ndarray:
        cols = data.columns
        field = self.exposure_field
        out = np.empty(len(idx), dtype=np.float64)
        for j, i in enumerate(idx):
            value = cols.extras[i].get(field)
            if (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
                and value >= 0
            ):
                out[j] = value
            else:
                out[j] = cols.amount[i]
        return out

    def run(self, data: StageInput) -> StageOutput:
        out = StageOutput()
        idx = self._selected(data)
        if not idx:
            return out
        X = self.model.card.encode_rows(self._rows(data, idx))
        started = time.perf_counter()
        pd = self.model.predict(X)
        self.calls += 1
        if self._metrics is not None:
            self._metrics[0].inc(len(idx))
            self._metrics[1].observe(time.perf_counter() - started)
        exposure = self._exposure(data, idx)
        el = pd * self.lgd * exposure
        cols = data.columns
        index = np.asarray(idx, dtype=np.int64)
        slots = data.step.slots[index]
        crossed = np.zeros(len(idx), dtype=np.int8)
        st = self.state.state
        _update(
            slots,
            cols.ts[index],
            pd,
            el,
            exposure,
            self.pd_limit,
            self.el_limit,
            st["reviews"],
            st["pd"],
            st["expected_loss"],
            st["exposure"],
            st["last_ts"],
            st["over_pd"],
            st["over_el"],
            crossed,
        )
        for j in np.flatnonzero(crossed).tolist():
            out.alerts += self._alerts(
                data, idx[j], int(slots[j]), int(crossed[j]), X[j], pd[j], el[j], exposure[j]
            )
        out.latest = self._latest(data.keys, np.unique(slots))
        return out

    def _alerts(
        self,
        data: StageInput,
        i: int,
        slot: int,
        crossed: int,
        vector: np.ndarray,
        pd: float,
        el: float,
        exposure: float,
    ) -> list[Alert]:
        from engine.explain.service import ExplainInput

        cols = data.columns
        customer = data.keys[slot]
        st = self.state.state
        both = bool(st["over_pd"][slot]) and bool(st["over_el"][slot])
        details = {
            "tx_id": cols.tx_ids[i],
            "pd": float(pd),
            "expected_loss": float(el),
            "exposure": float(exposure),
            "lgd": self.lgd,
            "pd_limit": self.pd_limit,
            "el_limit": self.el_limit,
            "reviews": int(st["reviews"][slot]),
        }
        explain = ExplainInput(vector.copy())
        version = self.model.version
        alerts = []
        for flag, kind, value, limit in (
            (PD_CROSSED, "credit_pd", pd, self.pd_limit),
            (EL_CROSSED, "credit_el", el, self.el_limit),
        ):
            if crossed & flag:
                alerts.append(
                    Alert(
                        alert_id=alert_id(kind, customer, f"{version}@{limit:g}", cols.tx_ids[i]),
                        kind=kind,
                        subject=customer,
                        ts=int(cols.ts[i]),
                        severity="critical" if both else "warning",
                        value=float(value),
                        threshold=float(limit),
                        model=self.model.name,
                        model_version=version,
                        details=details,
                        explain_input=explain,
                    )
                )
        return alerts

    def _latest(self, keys: list[str], slots: np.ndarray) -> list[LatestState]:
        st = self.state.state
        model, version, lgd = self.model.name, self.model.version, repr(self.lgd)
        reviews = st["reviews"][slots].tolist()
        ts = st["last_ts"][slots].tolist()
        pd = st["pd"][slots].tolist()
        el = st["expected_loss"][slots].tolist()
        exposure = st["exposure"][slots].tolist()
        over_pd = st["over_pd"][slots].tolist()
        over_el = st["over_el"][slots].tolist()
        out = []
        for n, s in enumerate(slots.tolist()):
            customer = keys[s]
            out.append(
                LatestState(
                    CREDIT_KEY.format(customer),
                    "reviews",
                    reviews[n],
                    {
                        "customer_id": customer,
                        "ts": format_ts(ts[n]),
                        "reviews": str(reviews[n]),
                        "pd": repr(pd[n]),
                        "expected_loss": repr(el[n]),
                        "exposure": repr(exposure[n]),
                        "lgd": lgd,
                        "over_pd": str(over_pd[n]),
                        "over_el": str(over_el[n]),
                        "model": model,
                        "model_version": version,
                    },
                )
            )
        return out


def credit_stages(settings: Settings) -> list[CreditStage]:
    """The credit stage the settings ask for: none when disabled or when no model is found.

    An explicitly configured model directory that cannot be loaded is an error
    (:class:`~engine.errors.InputError` / :class:`~engine.errors.ModelMismatchError`); the
    default one being absent only turns credit scoring off, with a warning.
    """
    import logging

    if not settings.credit.enabled:
        return []
    if settings.credit.model_dir is None and not (DEFAULT_MODEL_DIR / "card.json").is_file():
        logging.getLogger(__name__).warning(
            "no credit model at %s: credit scoring is off (set RISKSTREAM_CREDIT_MODEL_DIR)",
            DEFAULT_MODEL_DIR,
        )
        return []
    return [CreditStage.from_settings(settings)]
