"""Import :mod:`shap` quietly.

shap 0.51 imports its plotting modules eagerly, and those call a matplotlib colormap method
that matplotlib 3.11 marks as pending deprecation; the warning is not ours to fix and would
fail any caller that runs with warnings as errors (the test suite does).
"""

from __future__ import annotations

import warnings
from types import ModuleType


def import_shap() -> ModuleType:
    """The :mod:`shap` module, imported with its import-time warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import shap
    return shap
