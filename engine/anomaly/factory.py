"""Detectors by name, for each stream, with the engine's defaults.

=================  =============================================================  =========
detector           what                                                           state
=================  =============================================================  =========
``robust``         each feature's own calibrated tail, weighted Bonferroni        per key
``iforest``        Isolation Forest (scikit-learn, ONNX)                          artifact
``lof``            Local Outlier Factor, novelty mode (scikit-learn, ONNX)        artifact
``autoencoder``    torch MLP reconstruction error (ONNX)                          artifact
``hst``            river Half-Space Trees                                         in-process
``gbm``            gradient-boosted trees on delayed labels (transactions, ONNX)  artifact
``ensemble``       the stream's ensemble (see :data:`ENSEMBLES`)                  members'
=================  =============================================================  =========

Artifacts are the committed models in ``onnx/anomaly`` (``riskstream anomaly train``);
``root`` points elsewhere. In the stream every model is fixed between trainings and the
transactions' global calibration is frozen, so a worker's output is a deterministic
function of its input (what the end-to-end tests check); :class:`~.detectors.hst.HalfSpaceTrees`
is therefore trained on the reference rows at start and frozen there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engine.anomaly.artifacts import ModelCard, OnnxModel, artifact_dir
from engine.anomaly.detectors.model import Ensemble, ModelDetector
from engine.anomaly.detectors.robust import Channel, RobustDetector
from engine.anomaly.features.prices import PRICE_FEATURES
from engine.errors import ConfigError

STREAMS = ("prices", "transactions")
DETECTORS = ("robust", "iforest", "lof", "autoencoder", "hst", "gbm", "ensemble")
DEFAULTS = {"prices": "robust", "transactions": "gbm"}
"""The default detector per stream: the evaluation's choice (docs/models/anomaly.md, "Measured")."""

PRICE_CHANNELS = (
    Channel("z", "abs", weight=0.30, blend=True),
    Channel("move_2", "abs", weight=0.15),
    Channel("move_3", "abs", weight=0.10),
    Channel("move_10", "abs", weight=0.07, blend=True),
    Channel("burst", "abs", weight=0.07, blend=True),
    Channel("volume_z", "abs", min_scale=0.5, weight=0.03, blend=True),
    Channel("gap", "upper", min_scale=0.1, weight=0.10),
    Channel("frozen_surprisal", "analytic", weight=0.10),
)
"""What the robust detector reads from price features: both tails of the standardised
return and moves and of volume surprises, the burst statistic, the upper tail of gaps,
and the frozen-run surprisal as it is. Weights share the false-alarm budget: most of it
goes to single-tick, two-tick and three-tick moves (jumps, flash crashes falling over
1-3 ticks); level shifts and volatility bursts (``move_10``, ``burst``) are rarely caught
within 3 ticks at this budget whatever their share, so theirs is small. The two- and
three-tick moves' tails are the linear GPD fit alone (the blend's log fit made them too
heavy: flash crashes of 20 sigmas over three ticks scored below 4). Channels, weights
and the threshold were chosen on validation streams only (seeds 101 and 102 of
``riskstream anomaly evaluate``, apart from the evaluation's)."""

PRICE_MODEL_INPUTS = ("z", "move_3", "move_10", "burst", "volume_z", "gap", "frozen_surprisal")

TRANSACTION_CHANNELS = (
    Channel("amount", "abs", weight=0.2, blend=True),
    Channel("amount_ratio_30d", "upper", weight=0.2),
    Channel("amount_median_ratio_30d", "upper", weight=0.2),
    Channel("term_risk_7d", "upper", min_scale=0.02, weight=0.2),
    Channel("term_risk_30d", "upper", min_scale=0.02, weight=0.2),
)
TRANSACTION_MODEL_INPUTS = (
    "log_amount",
    "amount_ratio_1d",
    "amount_ratio_7d",
    "amount_ratio_30d",
    "amount_median_ratio_30d",
    "cust_count_1d",
    "term_risk_7d",
    "term_risk_30d",
    "is_night",
)
BLEND = {"autoencoder": True}
"""Model detectors whose raw scores are non-negative get the blended tail fit."""

ENSEMBLES = {
    "prices": ("robust", "iforest", "autoencoder"),
    "transactions": ("gbm", "robust", "iforest"),
}


def feature_names(stream: str) -> tuple[str, ...]:
    if stream == "prices":
        return PRICE_FEATURES
    if stream == "transactions":
        from engine.anomaly.stages import TRANSACTION_FEATURES

        return TRANSACTION_FEATURES
    raise ConfigError(f"unknown stream {stream!r}; choose from {list(STREAMS)}")


def _onnx_detector(
    stream: str, name: str, features: tuple[str, ...], root: Path | None, halflife: float
) -> ModelDetector:
    model = OnnxModel(artifact_dir(stream, name, root))
    det = ModelDetector(
        name,
        model.version,
        lambda X: model.raw(X, features),
        scope="key" if stream == "prices" else "global",
        calibration=model.card.calibration or None,
        learn_calibration=stream == "prices",
        blend=BLEND.get(name, False),
        halflife=halflife,
    )
    if name == "gbm":
        _explainable_gbm(det, model, features)
    return det


def _hst(stream: str, features: tuple[str, ...], halflife: float) -> ModelDetector:
    from engine.anomaly.detectors.hst import HalfSpaceTrees

    inputs = PRICE_MODEL_INPUTS if stream == "prices" else TRANSACTION_MODEL_INPUTS
    hst = HalfSpaceTrees(features, inputs, seed=7)
    reference = _reference(stream)
    raw = hst(reference)
    hst.learn = False  # frozen after the reference window: deterministic in the stream
    det = ModelDetector(
        "hst",
        "hst-25x8-w250-seed7",
        hst,
        scope="key" if stream == "prices" else "global",
        learn_calibration=stream == "prices",
        halflife=halflife,
    )
    prior = det.reference_calibration(raw[500:], 200.0)
    det.calibrator.set_prior({k: np.asarray(v) for k, v in prior.items()})
    return det


def _reference(stream: str) -> np.ndarray:
    from engine.anomaly.reference import calm_price_features

    return np.asarray(calm_price_features())


def make_detector(
    stream: str,
    name: str | None = None,
    *,
    root: Path | None = None,
    halflife: float = 5000.0,
) -> Any:
    """The detector ``name`` (default: the stream's) for ``stream``'s feature rows."""
    name = name or DEFAULTS[stream]
    features = feature_names(stream)
    if name not in DETECTORS:
        raise ConfigError(f"unknown detector {name!r}; choose from {list(DETECTORS)}")
    if name == "robust":
        if stream == "prices":
            from engine.anomaly.reference import calm_price_features

            return RobustDetector(
                features,
                PRICE_CHANNELS,
                name="anomaly_robust_cal",
                calibrator={"halflife": halflife},
                prior=calm_price_features(),
            )
        card = ModelCard.load(artifact_dir(stream, "robust", root))
        det = RobustDetector(
            features,
            TRANSACTION_CHANNELS,
            scope="global",
            calibrator={"halflife": halflife},
            learn_calibration=False,
        )
        det.calibrator.set_prior({k: np.asarray(v) for k, v in card.calibration.items()})
        return det
    if name == "ensemble":
        members = [
            make_detector(stream, m, root=root, halflife=halflife) for m in ENSEMBLES[stream]
        ]
        return Ensemble(members)
    if name == "hst":
        if stream != "prices":
            raise ConfigError(
                "hst learns in-process; in the transactions stream it would make the output "
                "depend on the process's history (the evaluation runs it: riskstream anomaly evaluate)"
            )
        return _hst(stream, features, halflife)
    if name == "gbm" and stream != "transactions":
        raise ConfigError("gbm needs labels: it is a transactions detector")
    return _onnx_detector(stream, name, features, root, halflife)


def _explainable_gbm(det: ModelDetector, model: OnnxModel, features: tuple[str, ...]) -> None:
    """Let the gradient-boosted detector's alerts be explained with SHAP (engine.explain)."""

    def vectors(X: np.ndarray) -> np.ndarray:
        return model.card.encode(X, features).astype(np.float64)

    def explainable_models() -> list[Any]:
        from engine.explain.service import ExplainableModel
        from engine.explain.tree import TreeShap

        return [
            ExplainableModel(
                name=f"anomaly_{det.name}",
                version=det.version,
                features=tuple(model.card.inputs),
                shap=TreeShap.lightgbm(model.directory / "lightgbm.txt"),
            )
        ]

    det.explain_vectors = vectors  # type: ignore[attr-defined]
    det.explainable_models = explainable_models  # type: ignore[attr-defined]


def anomaly_stages(settings: Any, stream: str) -> list[Any]:
    """The anomaly stage of ``stream`` the settings ask for (none when disabled).

    A detector whose model is missing from the default model root turns the stage off
    with a warning; from an explicitly configured root it is an error.
    """
    import logging

    from engine.anomaly.policy import AlertPolicy
    from engine.anomaly.stages import PriceAnomalyStage, TransactionAnomalyStage
    from engine.errors import ModelMismatchError

    if not settings.anomaly.enabled:
        return []
    root = settings.anomaly.model_dir
    name = settings.anomaly.price_detector if stream == "prices" else settings.anomaly.tx_detector
    try:
        detector = make_detector(stream, name, root=root)
    except ModelMismatchError as exc:
        if root is not None:
            raise
        logging.getLogger(__name__).warning(
            "anomaly detection on %s is off: %s (run riskstream anomaly train)", stream, exc
        )
        return []
    if stream == "prices":
        from engine.anomaly.features.prices import PriceFeatures

        try:
            features = PriceFeatures(calendar=settings.anomaly.calendar)
        except ValueError as exc:
            raise ConfigError(f"RISKSTREAM_ANOMALY_CALENDAR: {exc}") from None
        return [
            PriceAnomalyStage(
                detector, AlertPolicy(settings.anomaly.price_threshold), features=features
            )
        ]
    from engine.anomaly.features.terminals import TerminalRiskTable

    return [
        TransactionAnomalyStage(
            detector,
            AlertPolicy(settings.anomaly.tx_threshold, rearm=0),
            terminals=TerminalRiskTable(settings.anomaly.label_delay_days),
        )
    ]
