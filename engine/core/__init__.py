"""The risk core: pure, vectorised online risk over micro-batches.

No Kafka, Redis or asyncio in here. Every adapter (the Faust worker, the embedded
runner, the offline CLI) feeds validated columns to a book and turns its step result
into outputs, so all of them compute the same numbers.

The names below are loaded on first use, so that importing a light module of the core
(:mod:`engine.core.riskmetrics`, for the settings' defaults) does not compile the books.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.core.book import PriceRiskBook, PriceStep
    from engine.core.customers import CustomerBook, CustomerStep
    from engine.core.sequencer import Status
    from engine.core.spec import RiskSpec

_HOMES = {
    "CustomerBook": "engine.core.customers",
    "CustomerStep": "engine.core.customers",
    "PriceRiskBook": "engine.core.book",
    "PriceStep": "engine.core.book",
    "RiskSpec": "engine.core.spec",
    "Status": "engine.core.sequencer",
}

__all__ = ["CustomerBook", "CustomerStep", "PriceRiskBook", "PriceStep", "RiskSpec", "Status"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
