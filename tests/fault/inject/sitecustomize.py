"""Fault injection into a worker process: a price micro-batch fails after the books took it.

Put this directory first on a worker's ``PYTHONPATH`` and set
``RISKSTREAM_TEST_FAIL_FILE`` to a file of tick sequence numbers, one per line (the
``<n>`` of the fault stream's event ids ``SYMBOL-<n>``). The worker's next price
micro-batch that raises alerts and holds a tick numbered at or beyond the file's first
number fails (``RuntimeError``) once the pipeline has updated the books but before any
of its outputs exist: the worst moment, in-memory state ahead of everything written, and
alerts that exist nowhere else. Before failing, the number is removed from the file, so
each number fails exactly one batch, wherever the stream is when the worker restarts:
the failures follow the input, not the clock. Used by ``tests/fault/test_faults.py``;
never on the path of a real worker.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

_trigger = os.environ.get("RISKSTREAM_TEST_FAIL_FILE")


def _sequence(value: bytes) -> int:
    """``n`` of a fault-stream tick's event id ``SYMBOL-<n>``; -1 for anything else."""
    try:
        event_id = orjson.loads(value).get("event_id", "")
        return int(str(event_id).rsplit("-", 1)[-1])
    except (orjson.JSONDecodeError, AttributeError, ValueError):
        return -1


if _trigger:
    from engine.worker import processors

    _compute = processors.PriceProcessor.compute
    _path = Path(_trigger)

    def _failing_compute(self: Any, records: list[Any], job: Any) -> Any:
        touched = _compute(self, records, job)
        due = _path.read_text().split() if job.alerts and _path.exists() else []
        if due and max(_sequence(r.value) for r in records) >= int(due[0]):
            _path.write_text("\n".join(due[1:]))
            raise RuntimeError(f"injected processing failure after {len(records)} records")
        return touched

    processors.PriceProcessor.compute = _failing_compute  # type: ignore[method-assign]
