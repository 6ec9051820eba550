"""kill -9 of a worker as an operator would do it: the process alone, not its group."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.bench.recovery import one_run
from engine.faults.chaos import FaultConfig

pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.slow]


def test_a_worker_killed_with_sigkill_leaves_no_process_behind_and_alerts_again_in_seconds(
    tmp_path: Path,
) -> None:
    """Static membership: the restarted worker does not wait for its old session (60 s)."""
    config = FaultConfig(events=16_000, rate=1_000, models="garch,gjr,har", method="gjr-mix")
    run = one_run(config, 0, tmp_path, static=True, env={})
    assert run.pool_processes >= 2, "the fit pool was not running: nothing was tested"
    assert run.orphans == 0
    assert run.recovery_s < 30, run  # measured: about 6 s here (docs/benchmarks)
