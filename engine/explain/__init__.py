"""SHAP explanations of model-driven alerts, computed off the hot path and cached in Redis.

The interface for any tree model (credit scoring, tree-based anomaly detectors):

* :class:`~engine.explain.tree.TreeShap` - ``shap.TreeExplainer`` over one tree model, with
  the additivity check (attributions + base value = the model's raw output);
* :class:`~engine.explain.service.ExplainableModel` - a model registered under the
  ``model`` / ``model_version`` its alerts carry;
* :class:`~engine.explain.service.ExplainInput` - what a stage attaches to an alert
  (``Alert.explain_input``): the model's encoded input vector;
* :class:`~engine.explain.service.ExplanationService` - ``await enrich(alerts)`` attaches
  the top attributions, bounded, cached by (model version, vector digest), with metrics;
* :mod:`engine.explain.cache` - Redis keys, :class:`~engine.explain.cache.Explanation`;
* :mod:`engine.explain.plots` - waterfall, force and summary plots from cached explanations.
"""

from __future__ import annotations

from engine.explain.cache import Explanation, vector_digest
from engine.explain.service import ExplainableModel, ExplainInput, ExplanationService
from engine.explain.tree import Attributions, TreeShap

__all__ = [
    "Attributions",
    "ExplainInput",
    "ExplainableModel",
    "Explanation",
    "ExplanationService",
    "TreeShap",
    "vector_digest",
]
