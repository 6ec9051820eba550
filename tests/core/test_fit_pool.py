"""The worker's fit pool: its processes never outlive the worker, whatever kills it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.faults.harness import wait_until

pytestmark = pytest.mark.slow

_OWNER = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    from engine.core.volatility.fitting import FitJob, PoolFitter

    fitter = PoolFitter(1)
    job = FitJob("SPX", "garch", np.random.default_rng(0).standard_t(5, 500) * 0.01, None)
    fitter.result(job)  # the pool process is up and has fitted once
    print("ready", flush=True)
    time.sleep(600)
    """
)


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_fit_pool_processes_exit_when_their_worker_is_killed_with_sigkill() -> None:
    children: list[int] = []
    owner = subprocess.Popen(
        [sys.executable, "-c", _OWNER], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == "ready"
        children = _children(owner.pid)
        assert len(children) >= 2, "expected the pool process and the resource tracker"
        os.kill(owner.pid, signal.SIGKILL)  # the owner alone, as `kill -9 PID` does
        owner.wait(10)
        wait_until(lambda: not any(_alive(p) for p in children), 10, "the pool processes to exit")
    finally:
        if owner.poll() is None:
            os.killpg(owner.pid, signal.SIGKILL)
            owner.wait(10)
        assert owner.stdout is not None
        owner.stdout.close()
        for pid in filter(_alive, children):  # only if the test failed
            os.kill(pid, signal.SIGKILL)


def test_starting_the_pool_readies_its_process_without_waiting_and_changes_no_fit() -> None:
    """``start()`` returns at once; its warm-up runs in the pool's process, and the fits
    that follow give exactly what a cold pool gives."""
    import time

    import numpy as np

    from engine.core.volatility.fitting import FitJob, PoolFitter

    rng = np.random.default_rng(1)  # a GARCH(1,1) path: clustered volatility to fit
    returns, var = np.empty(500), 1e-4
    for t in range(500):
        returns[t] = np.sqrt(var) * rng.standard_t(5) / np.sqrt(5 / 3)
        var = 2e-6 + 0.08 * returns[t] ** 2 + 0.9 * var
    job = FitJob("SPX", "gjr", returns, None)
    cold = PoolFitter(1)
    try:
        expected = cold.result(job)
    finally:
        cold.close()
    warm = PoolFitter(1)
    try:
        began = time.perf_counter()
        warming = warm.start()
        assert time.perf_counter() - began < 0.5  # the caller never waits for the spawn
        assert warming.result(timeout=120) is None
        got = warm.result(job)
        assert expected.ok
        np.testing.assert_array_equal(got.params, expected.params)
        assert (got.end_var, got.ok, got.reason) == (expected.end_var, True, expected.reason)
    finally:
        warm.close()


def test_the_pool_fits_at_a_lower_priority_than_the_stream() -> None:
    from engine.core.volatility.fitting import POOL_NICENESS, PoolFitter

    fitter = PoolFitter(1)
    try:
        fitter.start().result(timeout=120)  # the pool's process is up
        own = os.getpriority(os.PRIO_PROCESS, 0)
        pool = [os.getpriority(os.PRIO_PROCESS, pid) for pid in _children(os.getpid())]
        assert min(19, own + POOL_NICENESS) in pool, (own, pool)
    finally:
        fitter.close()
