"""Scoring any univariate series offline: ``riskstream anomaly score``.

Input: a CSV with columns ``timestamp`` and ``value`` (others are kept and passed
through). Output: the same rows, in the same order and with the same text, plus
``anomaly_score`` in [0, 1], the calibrated score (``1 - 10**-S``,
:mod:`engine.anomaly.calibration`): 0.9999 means "one normal row in 10,000 looks like
this", for a price, a volume, a latency or a count alike.

Causal: row ``i``'s score is computed from rows ``0..i`` only, by one online pass
(:class:`~engine.anomaly.features.series.SeriesFeatures`, then the detector, which
learns row ``i`` only after scoring it; models are refitted on past rows only), so
appending rows never changes an earlier score (a property test holds it).

Rules for what users bring:

* ``timestamp``: ISO 8601 (text without an offset is UTC) or numbers (epoch
  milliseconds; any increasing counter works too, gaps are measured in its units);
  rows must be in time order (equal timestamps allowed). Unsorted input is an error
  naming the first row out of order, unless ``sort=True``, which sorts by timestamp
  (stable) and writes the sorted rows.
* ``value``: numbers; an empty cell or ``NaN`` is a missing value: the row is kept, its
  ``anomaly_score`` left empty, and it does not enter any statistic (the next row's
  change is taken from the last present value). ``inf`` or text is an error.
* Level, scale and trend do not matter (features are robust z-scores of values and of
  changes against rolling windows of at least 50 values, with a floor of half the
  series' quantum: its typical step or typical deviation from the typical change);
  degenerate series are handled: a history without variation is no evidence (a
  constant series scores 0, a constant step is no scale for its first deviation),
  stale runs are judged against the series' own rate of unchanged values (per class of
  value, so the states of a quantised series keep their own rates), and gaps are measured on a trading clock (``calendar``, default
  ``auto``: :mod:`engine.anomaly.sessions`), so weekends, holidays and nights are no
  gaps (docs/models/anomaly.md, "Degenerate streams and session gaps").
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.anomaly.calibration import score_from_surprisal
from engine.anomaly.detectors.model import Ensemble, ModelDetector, WindowedModel
from engine.anomaly.detectors.robust import Channel, RobustDetector
from engine.anomaly.features.series import SERIES_FEATURES, SeriesFeatures
from engine.anomaly.sessions import AUTO, check_calendar
from engine.errors import InputError, cell_text

SERIES_DETECTORS = ("robust", "iforest", "lof", "autoencoder", "hst", "ensemble")
DEFAULT_SERIES_DETECTOR = "robust"
"""Chosen by the evaluation (``riskstream anomaly evaluate``, series section)."""

SERIES_CHANNELS = (
    Channel("level_z", "abs", weight=0.20, blend=True),
    Channel("change_z", "abs", weight=0.10, blend=True),
    Channel("change_v", "abs", weight=0.15, blend=True),
    Channel("move_3", "abs", weight=0.15, blend=True),
    Channel("move_10", "abs", weight=0.10, blend=True),
    Channel("burst", "abs", weight=0.10, blend=True),
    Channel("gap", "upper", min_scale=0.1, weight=0.10),
    Channel("frozen_surprisal", "analytic", weight=0.10),
)
SERIES_MODEL_INPUTS = (
    "level_z",
    "change_z",
    "change_v",
    "move_3",
    "move_10",
    "burst",
    "gap",
    "frozen_surprisal",
)
SERIES_ENSEMBLE = ("robust", "iforest", "hst")
FIT_ROWS = 300
"""Complete rows (every model input known) a model detector's fit needs."""
REFIT = {"window": 2000, "every": 500, "min_rows": 400, "background": True, "lag": 200}
"""Sliding-window refits of the model detectors: the last 2,000 rows, every 500 rows,
the first after 400 (``FIT_ROWS`` complete rows after the features' warm-up of about 70
rows); each fit runs in a background thread while scoring goes on and is installed
exactly 200 rows after it was requested (so scores do not depend on timing)."""


def _model_fit(kind: str) -> Callable[[np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    from models.anomaly.fit import fit_autoencoder, fit_iforest, fit_lof, robust_scaling

    fitters = {"iforest": fit_iforest, "lof": fit_lof, "autoencoder": fit_autoencoder}
    fit = fitters[kind]
    cols = [SERIES_FEATURES.index(f) for f in SERIES_MODEL_INPUTS]

    def refit(window: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        rows = window[:, cols]
        # a row with a NaN input (the features' warm-up, a session open) is no evidence of
        # what normal rows look like: read as 0 it would be a cluster the model learns as
        # normal; fitted on the complete rows when there are as many as a first fit needs
        complete = np.isfinite(rows).all(axis=1)
        if int(complete.sum()) >= FIT_ROWS:
            rows = rows[complete]
        center, scale = robust_scaling(rows)
        fitted = fit(np.nan_to_num((rows - center) / scale), seed=0, export=False)

        def raw(X: np.ndarray) -> np.ndarray:
            return fitted.raw(np.nan_to_num((X[:, cols] - center) / scale))

        return raw

    return refit


def series_detector(name: str = DEFAULT_SERIES_DETECTOR) -> Any:
    """A detector over :data:`SERIES_FEATURES` rows of one series (slot 0)."""
    if name not in SERIES_DETECTORS:
        raise InputError(f"unknown detector {name!r}; choose from {', '.join(SERIES_DETECTORS)}")
    if name == "robust":
        from engine.anomaly.reference import calm_series_features

        det = RobustDetector(
            SERIES_FEATURES,
            SERIES_CHANNELS,
            name="anomaly_series_cal",
            prior=calm_series_features(),
        )
    elif name == "ensemble":
        det = Ensemble([series_detector(m) for m in SERIES_ENSEMBLE])
    elif name == "hst":
        from engine.anomaly.detectors.hst import HalfSpaceTrees

        det = ModelDetector(
            "hst",
            "hst-25x8-w250-seed7",
            HalfSpaceTrees(SERIES_FEATURES, SERIES_MODEL_INPUTS, seed=7),
        )
    else:
        det = ModelDetector(
            name,
            f"{name}-window{REFIT['window']}-every{REFIT['every']}",
            WindowedModel(_model_fit(name), **REFIT),
            blend=name == "autoencoder",
        )
    for component in det.components():
        component.ensure(1)
    return det


def score_values(
    ts: np.ndarray,
    values: np.ndarray,
    detector: str = DEFAULT_SERIES_DETECTOR,
    calendar: str = AUTO,
) -> np.ndarray:
    """Calibrated scores of one series, causally; NaN where the value is missing.

    ``ts`` epoch milliseconds (non-decreasing), ``values`` floats (NaN = missing),
    ``calendar`` the trading calendar gaps are measured on (:mod:`engine.anomaly.sessions`).

    >>> x = np.r_[np.sin(np.arange(300) / 5.0), 9.0, np.sin(np.arange(301, 320) / 5.0)]
    >>> s = score_values(np.arange(320) * 1000, x)
    >>> bool(s[300] > 0.9999), bool(np.nanmax(s[:300]) < 0.999)  # the spike, nothing before
    (True, True)
    """
    ts = np.asarray(ts, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    present = ~np.isnan(values)
    out = np.full(len(values), np.nan)
    if not present.any():
        return out
    features = SeriesFeatures(calendar=calendar)
    features.ensure(1)
    det = series_detector(detector)
    slots = np.zeros(int(present.sum()), dtype=np.int64)
    X = features.update(slots, ts[present], values[present])
    scores = det.update(slots, X)
    out[present] = score_from_surprisal(scores.surprisal)
    return out


# --- files ----------------------------------------------------------------------------------


def read_series(path: Path, *, sort: bool = False) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """``(rows as text, epoch-ms timestamps, values)``; :class:`InputError` on bad input."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable CSV file ({exc})") from None
    missing = [c for c in ("timestamp", "value") if c not in frame.columns]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {', '.join(missing)} (columns: {', '.join(frame.columns)}); "
            "expected timestamp,value"
        )
    if "anomaly_score" in frame.columns:
        raise InputError(f"{path}: already has an anomaly_score column")
    ts = _timestamps(frame["timestamp"], path)
    values = _values(frame["value"], path)
    order = np.argsort(ts, kind="stable")
    if (np.diff(ts) < 0).any():
        if not sort:
            row = int(np.flatnonzero(np.diff(ts) < 0)[0]) + 2
            raise InputError(
                f"{path}: timestamps must not decrease; row {row} ({frame['timestamp'].iloc[row - 1]!r}) "
                f"is earlier than row {row - 1} (sort the file, or pass --sort)"
            )
        frame = frame.iloc[order].reset_index(drop=True)
        ts, values = ts[order], values[order]
    return frame, ts, values


def _timestamps(column: pd.Series, path: Path) -> np.ndarray:
    text = column.str.strip()
    numeric = pd.to_numeric(text, errors="coerce")
    if text.eq("").any():
        raise InputError(f"{path}: column 'timestamp' is empty in row {_first(text.eq(''))}")
    if numeric.notna().all():
        if not np.isfinite(numeric.to_numpy(dtype=float)).all():
            raise InputError(
                f"{path}: column 'timestamp' is not finite in row {_first(~np.isfinite(numeric))}"
            )
        return np.round(numeric.to_numpy(dtype=float)).astype(np.int64)
    parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    if parsed.isna().any():
        row = _first(parsed.isna())
        raise InputError(
            f"{path}: column 'timestamp' has {cell_text(column.iloc[row - 1])} in row {row}, "
            "expected ISO 8601 or epoch milliseconds"
        )
    return parsed.to_numpy(dtype="datetime64[ms]").astype(np.int64)


def _values(column: pd.Series, path: Path) -> np.ndarray:
    text = column.str.strip()
    missing = text.eq("") | text.str.lower().isin(["nan", "na", "null"])
    numeric = pd.to_numeric(text.where(~missing), errors="coerce")
    bad = numeric.isna() & ~missing
    if bad.any():
        row = _first(bad)
        raise InputError(
            f"{path}: column 'value' has {cell_text(column.iloc[row - 1])} in row {row}, expected a number"
        )
    values = numeric.to_numpy(dtype=float)
    infinite = np.isinf(values)
    if infinite.any():
        row = int(np.flatnonzero(infinite)[0]) + 1
        raise InputError(f"{path}: column 'value' is infinite in row {row}")
    return values


def _first(mask: Any) -> int:
    return int(np.flatnonzero(np.asarray(mask, dtype=bool))[0]) + 1


def score_file(
    source: Path,
    out: Path,
    *,
    detector: str = DEFAULT_SERIES_DETECTOR,
    sort: bool = False,
    calendar: str = AUTO,
) -> int:
    """Score ``source`` into ``out`` (see the module docstring); returns the rows written."""
    if detector not in SERIES_DETECTORS:
        raise InputError(
            f"unknown detector {detector!r}; choose from {', '.join(SERIES_DETECTORS)}"
        )
    try:
        check_calendar(calendar)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    frame, ts, values = read_series(source, sort=sort)
    scores = score_values(ts, values, detector, calendar)
    frame["anomaly_score"] = [("" if np.isnan(s) else f"{s:.10f}") for s in scores]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    return len(frame)
