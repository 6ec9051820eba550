"""Fault injection into a worker process: a price micro-batch fails after the books took it.

Put this directory first on a worker's ``PYTHONPATH`` and set
``RISKSTREAM_TEST_FAIL_FILE`` to a path: while a file exists there, the worker's next
price micro-batch that raises alerts fails (``RuntimeError``) once the pipeline has
updated the books but before any of its outputs exist: the worst moment, in-memory
state ahead of everything written, and alerts that exist nowhere else. Used by ``tests/fault/test_faults.py``; never on the path of a real worker.
"""

from __future__ import annotations

import os
from typing import Any

_trigger = os.environ.get("RISKSTREAM_TEST_FAIL_FILE")
if _trigger:
    from engine.worker import processors

    _compute = processors.PriceProcessor.compute

    def _failing_compute(self: Any, records: list[Any], job: Any) -> Any:
        touched = _compute(self, records, job)
        if job.alerts and os.path.exists(_trigger):
            raise RuntimeError(f"injected processing failure after {len(records)} records")
        return touched

    processors.PriceProcessor.compute = _failing_compute  # type: ignore[method-assign]
