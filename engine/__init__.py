"""riskstream engine: the online risk core, its stream adapters and the CLI.

The risk core (:mod:`engine.core`) is pure: no Kafka, Redis or asyncio. The Faust
worker (:mod:`engine.worker`), the embedded runner (:mod:`engine.offline.embedded`) and the
offline CLI all call the same pipeline (:mod:`engine.pipeline`), so streaming output
equals batch output for the same input.
"""

from __future__ import annotations

__version__ = "0.1.0"
