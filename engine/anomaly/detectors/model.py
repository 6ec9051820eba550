"""Model detectors: a raw anomaly score from a model, calibrated per key or per stream.

:class:`ModelDetector` wraps any raw scorer ``X -> raw`` (larger: more anomalous) with a
one-channel :class:`~engine.anomaly.calibration.TailCalibrator`:

* an ONNX artifact (:class:`~engine.anomaly.artifacts.OnnxModel`: Isolation Forest,
  LOF, the autoencoder, gradient-boosted trees), fixed between trainings: the stream's
  scores are then a deterministic function of its events, and restarts change nothing;
* a :class:`WindowedModel`: refitted on a sliding window of the stream's own rows (the
  offline CLI and the evaluation; :class:`~.hst.HalfSpaceTrees` learns online).

Calibration is per key (``scope="key"``, persisted with the key: prices, series) or
one global state (``scope="global"``: transactions), which the stream keeps *frozen*
at the model's reference calibration (``learn_calibration=False``), so a restarted
worker scores exactly as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from engine.anomaly.calibration import RankCalibration, TailCalibrator
from engine.anomaly.detectors.base import Scores, combine
from engine.core.online import OnlineComponent

RawScorer = Callable[[np.ndarray], np.ndarray]
Scope = Literal["key", "global"]


class ModelDetector:
    """A raw scorer plus calibration (see the module docstring).

    Parameters
    ----------
    name, version : str
        What alerts report as the detector and its version.
    raw : callable
        ``raw(X) -> (n,)``, X with the stream's feature columns.
    scope : "key" or "global"
        Calibration per key (persisted) or one for the stream.
    calibration : dict, optional
        A reference calibration state (a model card's) to start from, or a frozen
        :class:`~engine.anomaly.calibration.RankCalibration` (``rank_x``, ``rank_s``:
        global, not learning).
    learn_calibration : bool
        Whether the calibration keeps learning (``False``: frozen).
    blend : bool
        Average the linear and ``log(1 + raw)`` tail fits (non-negative raw scores).
    halflife : float
        Calibration window.
    """

    def __init__(
        self,
        name: str,
        version: str,
        raw: RawScorer,
        *,
        scope: Scope = "key",
        calibration: dict[str, Sequence[float]] | None = None,
        learn_calibration: bool = True,
        blend: bool = False,
        halflife: float = 5000.0,
        min_obs: int = 50,
    ) -> None:
        self.name = name
        self.version = version
        self.scorer = raw
        self.scope = scope
        self.learn_calibration = learn_calibration
        self.blend = blend
        channels = (name, f"log1p_{name}") if blend else (name,)
        self.calibrator = TailCalibrator(
            f"anomaly_{name}_cal", channels, halflife=halflife, min_obs=min_obs
        )
        self.rank = RankCalibration.from_dict(calibration) if calibration else None
        if self.rank is not None and (scope != "global" or learn_calibration):
            raise ValueError("a rank calibration is frozen and global")
        if calibration and self.rank is None:
            self.calibrator.set_prior({k: np.asarray(v) for k, v in calibration.items()})

    def components(self) -> tuple[OnlineComponent, ...]:
        return (self.calibrator,) if self.scope == "key" else ()

    def reference_calibration(
        self, raw: np.ndarray, weight: float | None = 200.0
    ) -> dict[str, list[float]]:
        """The calibration state reached on reference raw scores (a model card's entry).

        ``weight`` caps its pseudo-count (a prior new keys move away from); ``None``
        keeps the full window (a frozen global calibration).
        """
        probe = TailCalibrator(
            "probe",
            self.calibrator.channels,
            halflife=self.calibrator.halflife,
            min_obs=self.calibrator.min_obs,
        )
        probe.with_prior(self.calibration_input(raw), weight=weight if weight else np.inf)
        assert probe.prior is not None
        return {k: v.tolist() for k, v in probe.prior.items()}

    def calibration_input(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float64).reshape(-1, 1)
        if not self.blend:
            return raw
        return np.hstack([raw, np.log1p(np.maximum(raw, 0.0))])

    def update(self, slots: np.ndarray, X: np.ndarray, *, learn: bool = True) -> Scores:
        raw = self.scorer(X)
        if self.rank is not None:
            surprisal = np.nan_to_num(self.rank.surprisal(raw), nan=0.0)
            return Scores(surprisal, surprisal.reshape(-1, 1), (self.name,), raw.reshape(-1, 1))
        if self.scope == "global":
            slots = np.zeros(len(raw), dtype=np.int64)
            self.calibrator.ensure(1)
        out = self.calibrator.update(
            slots, self.calibration_input(raw), learn=learn and self.learn_calibration
        )
        surprisal = out.mean(axis=1) if self.blend else out[:, 0]
        surprisal = np.nan_to_num(surprisal, nan=0.0)
        channels = surprisal.reshape(-1, 1)
        return Scores(surprisal, channels, (self.name,), raw.reshape(-1, 1))


class WindowedModel:
    """A model refitted every ``every`` rows on the last ``window`` rows (module docstring).

    ``fit(X) -> scorer`` builds a scorer from a window of rows. Row ``i`` is scored by the
    model fitted on rows before it (causal); rows before the first fit (``min_rows``
    rows) score NaN. With ``background=True`` a fit runs in a thread while the stream
    goes on and is installed exactly ``lag`` rows after it was requested (waiting for
    it if it is late), so the scores do not depend on timing.
    """

    def __init__(
        self,
        fit: Callable[[np.ndarray], RawScorer],
        *,
        window: int = 2000,
        every: int = 500,
        min_rows: int = 500,
        background: bool = False,
        lag: int = 200,
    ) -> None:
        if not 1 <= min_rows <= window or every < 1:
            raise ValueError("need 1 <= min_rows <= window and every >= 1")
        if background and not 0 < lag < every:
            raise ValueError("a background refit needs 0 < lag < every")
        self.fit = fit
        self.window = window
        self.every = every
        self.min_rows = min_rows
        self.background = background
        self.lag = lag if background else 0
        self.rows = 0
        self.buffer: np.ndarray | None = None
        self.model: RawScorer | None = None
        self._pending: tuple[int, threading.Thread, list[Any]] | None = None

    def _due(self, count: int) -> bool:
        return count >= self.min_rows and (count - self.min_rows) % self.every == 0

    def _history(self) -> np.ndarray:
        assert self.buffer is not None
        return self.buffer[-self.window :]

    def _request(self) -> None:
        data = self._history().copy()
        if not self.background:
            self.model = self.fit(data)
            return
        box: list[Any] = []
        thread = threading.Thread(target=lambda: box.append(self.fit(data)), daemon=True)
        thread.start()
        self._pending = (self.rows + self.lag, thread, box)

    def _install_if_due(self) -> None:
        if self._pending is not None and self.rows >= self._pending[0]:
            _, thread, box = self._pending
            thread.join()
            if box:
                self.model = box[0]
            self._pending = None

    def __call__(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        out = np.full(len(X), np.nan)
        start = 0
        while start < len(X):
            self._install_if_due()
            # rows up to the next refit point (or pending install) share one model
            to_fit = self.every - ((self.rows - self.min_rows) % self.every)
            if self.rows < self.min_rows:
                to_fit = self.min_rows - self.rows
            stop = min(len(X), start + max(to_fit, 1))
            if self._pending is not None:
                stop = min(stop, start + max(self._pending[0] - self.rows, 1))
            chunk = X[start:stop]
            if self.model is not None:
                out[start:stop] = self.model(chunk)
            self.buffer = (
                chunk.copy()
                if self.buffer is None
                else np.concatenate([self.buffer[-self.window :], chunk])
            )
            self.rows += len(chunk)
            if self._due(self.rows):
                self._request()
            start = stop
        return out


class Ensemble:
    """Several detectors at once; surprisal = weighted Bonferroni over theirs.

    Calibrated members make a calibrated ensemble (:func:`~.base.combine`); the members'
    surprisals are its channels, so an alert names the detectors that drove it.
    """

    version_prefix = "ensemble"

    def __init__(
        self,
        members: Sequence[Any],
        weights: Sequence[float] | None = None,
        *,
        name: str = "ensemble",
    ) -> None:
        if not members:
            raise ValueError("an ensemble needs members")
        self.members = tuple(members)
        self.name = name
        self.weights = np.asarray(weights if weights is not None else [1.0] * len(members))
        self.version = "+".join(f"{m.name}:{m.version}" for m in self.members)

    def components(self) -> tuple[OnlineComponent, ...]:
        return tuple(c for m in self.members for c in m.components())

    def update(self, slots: np.ndarray, X: np.ndarray, *, learn: bool = True) -> Scores:
        outs = [m.update(slots, X, learn=learn) for m in self.members]
        channels = np.column_stack([o.surprisal for o in outs])
        return Scores(
            combine(channels, self.weights),
            channels,
            tuple(m.name for m in self.members),
            channels.copy(),
        )
