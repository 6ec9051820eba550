"""The risk core: pure, vectorised online risk over micro-batches.

No Kafka, Redis or asyncio in here. Every adapter (the Faust worker, the embedded
runner, the offline CLI) feeds validated columns to a book and turns its step result
into outputs, so all of them compute the same numbers.
"""

from __future__ import annotations

from engine.core.book import PriceRiskBook, PriceStep
from engine.core.customers import CustomerBook, CustomerStep
from engine.core.sequencer import Status
from engine.core.spec import RiskSpec

__all__ = ["CustomerBook", "CustomerStep", "PriceRiskBook", "PriceStep", "RiskSpec", "Status"]
