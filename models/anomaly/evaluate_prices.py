"""Prices: every detector on seeded streams with injected, labelled anomalies.

Protocol. :func:`producers.anomalies.labelled_prices` makes calm GARCH-t streams (no
anomalies of their own) and injects jumps, flash crashes, level shifts, volatility
bursts, frozen feeds and stale feeds, each labelled with its window of ticks. The
ticks go through the stream's own feature code (the book's EWMA forecast feeding
:class:`~engine.anomaly.features.prices.PriceFeatures`,
:func:`~engine.anomaly.reference.price_feature_rows`), the detector the stream would
build (:func:`~engine.anomaly.factory.make_detector`, one slot per symbol) and the
stream's alert policy (one alert per episode, re-armed after 10 calm ticks) at a
threshold on the calibrated score chosen on *validation* streams with other seeds
(:func:`choose_threshold`: the lowest whose calm false alarms stay within 80% of the
budget of one per 10,000 ticks). Evaluation seeds differ from the validation seeds
and from the reference seed the priors and the models were fitted on.

Metrics, per kind of anomaly:

``recall``
    share of anomalies with an alert from their first tick to ``tolerance`` ticks
    after their last;
``recall@3``
    share with an alert within 3 ticks of their first (``delay <= 3``; a stale feed's
    first observable tick is the first tick after the silence);
``delay``
    median ticks from the first tick to the first alert, over detected anomalies.

``precision``: share of alerts that fall in an anomaly's window (or ``tolerance`` ticks
after it, the anomaly's aftermath). False alarms per 10,000 ticks are measured on a
separate calm run (same generator, no anomalies, its own seed) and, for reference, on
the labelled run's ticks outside every window.

The *series* section scores each symbol's prices as a bare ``timestamp,value`` series
with :func:`engine.anomaly.series.score_values` (what ``riskstream anomaly score``
does), with the same policy: the evidence for the offline CLI's default detector.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.anomaly.calibration import score_from_surprisal
from engine.anomaly.policy import AlertPolicy
from engine.core.slots import SlotIndex
from producers.anomalies import KINDS, LabelledStream, labelled_prices

PRICE_DETECTORS = ("robust", "ensemble", "iforest", "lof", "autoencoder", "hst")
SERIES_DETECTORS = ("robust", "ensemble", "iforest", "lof", "autoencoder", "hst")
TOLERANCE = 20
"""Ticks after an anomaly's window in which an alert still belongs to it (its aftermath)."""
FAST = 3


@dataclass
class PriceSetup:
    """Sizes and seeds of an evaluation run."""

    symbols: int = 20
    ticks: int = 20_000
    seed: int = 1
    calm_seed: int = 2
    min_jump: float = 10.0
    series_symbols: int = 5
    """Symbols of the series section (its model detectors refit every 500 rows: costly)."""


@dataclass
class KindResult:
    kind: str
    count: int
    recall: float
    recall_fast: float
    delay_median: float
    delay_p90: float


@dataclass
class DetectorRun:
    name: str
    section: str
    kinds: list[KindResult]
    alerts: int
    precision: float
    false_alarms_calm: float
    """Alerts per 10,000 ticks of the calm run."""
    false_alarms_outside: float
    """Alerts per 10,000 ticks outside every window (+ tolerance) of the labelled run."""
    us_per_tick: float
    detail: dict[str, Any] = field(default_factory=dict)

    def kind(self, name: str) -> KindResult | None:
        return next((k for k in self.kinds if k.kind == name), None)


@dataclass
class PriceEvaluation:
    setup: PriceSetup
    runs: list[DetectorRun]
    threshold: float
    validation: list[dict[str, Any]]
    ticks: int
    calm_ticks: int
    anomalies: dict[str, int]
    example: dict[str, Any] = field(default_factory=dict)


def subset(stream: LabelledStream, symbols: int) -> LabelledStream:
    """The stream's first ``symbols`` symbols and their anomalies."""
    keep = sorted(stream.frame["symbol"].unique())[:symbols]
    frame = stream.frame[stream.frame["symbol"].isin(keep)].reset_index(drop=True)
    return LabelledStream(frame, tuple(a for a in stream.anomalies if a.symbol in keep))


def _slots(stream: LabelledStream) -> tuple[np.ndarray, list[str]]:
    index = SlotIndex()
    slots, _ = index.lookup(stream.frame["symbol"].astype(str).tolist())
    return slots, index.keys


def stream_surprisal(stream: LabelledStream, detector: str, root: Path | None = None) -> np.ndarray:
    """The stream detector's surprisal of every tick (frame order), in micro-batches of 2,000."""
    from engine.anomaly.factory import make_detector
    from engine.anomaly.reference import price_feature_rows

    X = price_feature_rows(stream.frame)
    slots, keys = _slots(stream)
    det = make_detector("prices", detector, root=root)
    for component in det.components():
        component.ensure(len(keys))
    out = np.empty(len(X))
    for start in range(0, len(X), 2000):
        stop = start + 2000
        out[start:stop] = det.update(slots[start:stop], X[start:stop]).surprisal
    return out


def series_surprisal(stream: LabelledStream, detector: str) -> np.ndarray:
    """Each symbol's prices scored as a ``timestamp,value`` series (the offline CLI's way)."""
    from engine.anomaly.calibration import surprisal_from_score
    from engine.anomaly.series import score_values

    frame = stream.frame
    out = np.empty(len(frame))
    for _, rows in frame.groupby("symbol", sort=False).indices.items():
        score = score_values(
            frame["ts"].to_numpy()[rows], frame["price"].to_numpy()[rows], detector
        )
        with np.errstate(divide="ignore"):
            out[rows] = -np.log10(np.maximum(1.0 - score, 1e-12))
    del surprisal_from_score
    return out


def alerts_of(stream: LabelledStream, surprisal: np.ndarray, policy: AlertPolicy) -> np.ndarray:
    """Which ticks raise an alert under ``policy`` (one alert per episode, per symbol)."""
    slots, keys = _slots(stream)
    state = policy.state("eval")
    state.ensure(len(keys))
    return state.update(slots, surprisal, policy.surprisal)


def score_alerts(
    stream: LabelledStream, fired: np.ndarray, tolerance: int = TOLERANCE
) -> tuple[list[KindResult], float, float, dict[str, Any]]:
    """Per-kind recall and delay, precision, false alarms per 10,000 ticks outside windows."""
    frame = stream.frame
    symbol = frame["symbol"].to_numpy()
    tick = frame["tick"].to_numpy()
    alert_ticks: dict[str, np.ndarray] = {}
    for s in np.unique(symbol):
        sel = (symbol == s) & fired
        alert_ticks[s] = np.sort(tick[sel])
    covered = {s: np.zeros(int(tick[symbol == s].max()) + 1, dtype=bool) for s in alert_ticks}
    delays: dict[str, list[float]] = {k: [] for k in KINDS}
    for a in stream.anomalies:
        covered[a.symbol][a.start : a.end + tolerance + 1] = True
        ticks = alert_ticks[a.symbol]
        hit = ticks[(ticks >= a.start) & (ticks <= a.end + tolerance)]
        delays[a.kind].append(float(hit[0] - a.start) if hit.size else np.inf)
    kinds = []
    for kind in KINDS:
        d = np.array(delays[kind])
        if d.size == 0:
            continue
        found = d[np.isfinite(d)]
        kinds.append(
            KindResult(
                kind,
                int(d.size),
                float(np.isfinite(d).mean()),
                float((d <= FAST).mean()),
                float(np.median(found)) if found.size else np.nan,
                float(np.quantile(found, 0.9)) if found.size else np.nan,
            )
        )
    in_window = np.array(
        [covered[s][t] for s, t in zip(symbol[fired].tolist(), tick[fired].tolist(), strict=True)],
        dtype=bool,
    )
    precision = float(in_window.mean()) if in_window.size else np.nan
    outside_ticks = sum(int((~c).sum()) for c in covered.values())
    outside = 1e4 * int((~in_window).sum()) / max(outside_ticks, 1)
    return kinds, precision, outside, {"missed": _missed(stream, delays)}


def _missed(stream: LabelledStream, delays: dict[str, list[float]]) -> dict[str, list[float]]:
    """Magnitudes of the jumps and flash crashes not flagged within 3 ticks."""
    out: dict[str, list[float]] = {}
    pos = dict.fromkeys(KINDS, 0)
    for a in stream.anomalies:
        d = delays[a.kind][pos[a.kind]]
        pos[a.kind] += 1
        if a.kind in ("jump", "flash_crash") and d > FAST:
            out.setdefault(a.kind, []).append(round(a.magnitude, 2))
    return out


def evaluate_prices(
    setup: PriceSetup | None = None,
    *,
    detectors: tuple[str, ...] = PRICE_DETECTORS,
    series_detectors: tuple[str, ...] = SERIES_DETECTORS,
    root: Path | None = None,
    threshold: float | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> PriceEvaluation:
    """Run every detector on the labelled and the calm streams (module docstring).

    ``threshold`` (the alert policy's, on the calibrated score): by default the one
    :func:`choose_threshold` picks on validation streams with other seeds.
    """
    setup = setup or PriceSetup()
    validation: list[dict[str, Any]] = []
    if threshold is None:
        progress("prices: choosing the alert threshold on validation streams")
        threshold, validation = choose_threshold(setup, detectors[0], root)
    policy = AlertPolicy(threshold)
    full = labelled_prices(setup.symbols, setup.ticks, seed=setup.seed, min_jump=setup.min_jump)
    full_calm = labelled_prices(setup.symbols, setup.ticks, kinds=(), seed=setup.calm_seed)
    runs = []
    example: dict[str, Any] = {}
    for section, names, fn in (
        ("stream", detectors, lambda s, n: stream_surprisal(s, n, root)),
        ("series", series_detectors, series_surprisal),
    ):
        labelled, calm = full, full_calm
        if section == "series":
            labelled = subset(full, setup.series_symbols)
            calm = subset(full_calm, setup.series_symbols)
        for name in names:
            progress(f"prices ({section}): {name}")
            started = time.perf_counter()
            s_lab = fn(labelled, name)
            elapsed = time.perf_counter() - started
            s_calm = fn(calm, name)
            fired = alerts_of(labelled, s_lab, policy)
            kinds, precision, outside, detail = score_alerts(labelled, fired)
            calm_alerts = int(alerts_of(calm, s_calm, policy).sum())
            sweep = _sweep(labelled, calm, s_lab, s_calm, policy)
            runs.append(
                DetectorRun(
                    name=name,
                    section=section,
                    kinds=kinds,
                    alerts=int(fired.sum()),
                    precision=precision,
                    false_alarms_calm=1e4 * calm_alerts / len(calm.frame),
                    false_alarms_outside=outside,
                    us_per_tick=1e6 * elapsed / len(labelled.frame),
                    detail={**detail, "calm_alerts": calm_alerts, "sweep": sweep},
                )
            )
            if section == "stream" and name == detectors[0]:
                example = _example(labelled, s_lab, fired)
    return PriceEvaluation(
        setup=setup,
        runs=runs,
        threshold=threshold,
        validation=validation,
        ticks=len(full.frame),
        calm_ticks=len(full_calm.frame),
        anomalies={k: sum(a.kind == k for a in full.anomalies) for k in KINDS},
        example=example,
    )


SWEEP = (0.9999, 0.9998, 0.9997, 0.9995, 0.999)
FALSE_ALARM_BUDGET = 1.0
"""Calm false alarms per 10,000 ticks the price alert threshold may cost (the target)."""
VALIDATION_MARGIN = 0.8
"""Share of the budget the threshold may use on the validation streams (a safety margin)."""


def choose_threshold(
    setup: PriceSetup, detector: str = "robust", root: Path | None = None
) -> tuple[float, list[dict[str, Any]]]:
    """The lowest threshold of :data:`SWEEP` whose calm false alarms on *validation* streams
    (seeds ``seed + 100`` and ``calm_seed + 100``, never the evaluation's) stay within
    ``VALIDATION_MARGIN * FALSE_ALARM_BUDGET`` per 10,000 ticks; the sweep as evidence."""
    labelled = labelled_prices(
        setup.symbols, setup.ticks, seed=setup.seed + 100, min_jump=setup.min_jump
    )
    calm = labelled_prices(setup.symbols, setup.ticks, kinds=(), seed=setup.calm_seed + 100)
    s_lab = stream_surprisal(labelled, detector, root)
    s_calm = stream_surprisal(calm, detector, root)
    sweep = _sweep(labelled, calm, s_lab, s_calm, AlertPolicy())
    ok = [
        row["threshold"]
        for row in sweep
        if row["false_alarms_calm"] <= VALIDATION_MARGIN * FALSE_ALARM_BUDGET
    ]
    return (min(ok) if ok else max(SWEEP)), sweep


def _sweep(
    labelled: LabelledStream,
    calm: LabelledStream,
    s_lab: np.ndarray,
    s_calm: np.ndarray,
    policy: AlertPolicy,
) -> list[dict[str, Any]]:
    """Recall within 3 ticks per kind and calm false alarms at other score thresholds."""
    out = []
    for threshold in SWEEP:
        p = AlertPolicy(threshold, policy.rearm, policy.critical_margin)
        kinds, precision, _, _ = score_alerts(labelled, alerts_of(labelled, s_lab, p))
        out.append(
            {
                "threshold": threshold,
                "false_alarms_calm": 1e4 * int(alerts_of(calm, s_calm, p).sum()) / len(calm.frame),
                "precision": precision,
                **{k.kind: k.recall_fast for k in kinds},
            }
        )
    return out


def _example(stream: LabelledStream, surprisal: np.ndarray, fired: np.ndarray) -> dict[str, Any]:
    """The first symbol's first 6,000 ticks: prices, scores, alerts, windows (for a plot)."""
    frame = stream.frame
    first = frame["symbol"].iloc[0]
    sel = np.flatnonzero((frame["symbol"] == first).to_numpy())[:6000]
    last_tick = int(frame["tick"].to_numpy()[sel[-1]])
    return {
        "symbol": first,
        "tick": frame["tick"].to_numpy()[sel],
        "price": frame["price"].to_numpy()[sel],
        "score": score_from_surprisal(surprisal[sel]),
        "fired": fired[sel],
        "windows": [
            (a.kind, a.start, a.end)
            for a in stream.anomalies
            if a.symbol == first and a.start <= last_tick
        ],
    }
