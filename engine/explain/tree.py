"""SHAP attributions of a tree model (shap's ``TreeExplainer``), with an additivity check.

:class:`TreeShap` wraps any tree model ``shap.TreeExplainer`` supports (LightGBM boosters,
scikit-learn forests including ``IsolationForest``, XGBoost, ...), with the
``tree_path_dependent`` algorithm: no background data, exact, deterministic. Attributions
are in the units of the model's *raw* output: log-odds for a LightGBM classifier (the
margin before the logistic), the class-1 vote share for a scikit-learn forest classifier.

Additivity: for each row, ``base + sum(shap) == output`` where ``output`` is the model's raw
output computed independently of the explainer (``Booster.predict(raw_score=True)``,
``predict_proba``); :attr:`Attributions.additivity_error` is the largest difference and
:data:`ADDITIVITY_TOLERANCE` the bound the explanation service enforces.

Thread safety: :meth:`TreeShap.explain` may run in a worker thread. For LightGBM the work is
LightGBM's own C++ TreeSHAP through ctypes, which releases the GIL.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.explain.shap_import import import_shap

ADDITIVITY_TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True)
class Attributions:
    """SHAP values of ``n`` rows: ``values`` (n, features), ``base`` and ``output`` (n,)."""

    values: np.ndarray
    base: np.ndarray
    output: np.ndarray

    @property
    def additivity_error(self) -> np.ndarray:
        """Per row ``|base + sum(values) - output|``."""
        return np.abs(self.base + self.values.sum(axis=1) - self.output)


class TreeShap:
    """``shap.TreeExplainer`` over one tree model; see the module docstring.

    Parameters
    ----------
    model
        A tree model shap supports.
    output
        ``f(X) -> (n,)`` raw model output the attributions must add up to; ``None`` leaves
        the check to shap's own (looser) ``check_additivity``.
    units
        Name of the output's units, e.g. ``"log-odds"``.
    class_index
        For classifiers whose attributions come per class: the class explained.
    """

    def __init__(
        self,
        model: Any,
        *,
        output: Callable[[np.ndarray], np.ndarray] | None = None,
        units: str = "raw",
        class_index: int = 1,
    ) -> None:
        shap = import_shap()
        self.model = model
        self.units = units
        self.class_index = class_index
        self._output = output
        self._explainer = shap.TreeExplainer(model, feature_perturbation="tree_path_dependent")

    @classmethod
    def lightgbm(cls, source: Path | str | Any) -> TreeShap:
        """A binary LightGBM model (text file, model string or ``Booster``); log-odds units."""
        import lightgbm

        if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source):
            booster = lightgbm.Booster(model_file=str(source))
        elif isinstance(source, str):
            booster = lightgbm.Booster(model_str=source)
        else:
            booster = source
        # One OpenMP thread: an alert's row gains nothing from more, and the team's barrier
        # waits cost 4-18 ms at the 99th percentile on a busy 2-core machine (measured).
        # shap's TreeExplainer calls booster.predict(..., pred_contrib=True) for LightGBM.
        booster.predict = functools.partial(  # type: ignore[method-assign]
            lightgbm.Booster.predict, booster, num_threads=1
        )
        return cls(
            booster,
            output=lambda X: np.asarray(booster.predict(X, raw_score=True)),
            units="log-odds",
        )

    @classmethod
    def forest(cls, forest: Any) -> TreeShap:
        """A scikit-learn forest classifier; units: the class-1 vote share (probability)."""
        return cls(forest, output=lambda X: forest.predict_proba(X)[:, 1], units="probability")

    def explain(self, X: np.ndarray) -> Attributions:
        """Attributions of every row of ``X`` (float64, the model's input order)."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X.reshape(1, -1)
        values = np.asarray(
            self._explainer.shap_values(X, check_additivity=self._output is None, from_call=True)
        )
        base = np.asarray(self._explainer.expected_value, dtype=np.float64).reshape(-1)
        if values.ndim == 3:  # (rows, features, classes)
            values = values[:, :, self.class_index]
            base = base[self.class_index : self.class_index + 1]
        elif values.ndim == 2 and values.shape[1] == X.shape[1] + 1:  # trailing bias column
            values = values[:, :-1]
        base_rows = np.full(X.shape[0], float(base[0]))
        if self._output is not None:
            output = np.asarray(self._output(X), dtype=np.float64).reshape(-1)
        else:
            output = base_rows + values.sum(axis=1)
        return Attributions(values.astype(np.float64), base_rows, output)
