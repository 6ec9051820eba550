"""One battery for every online component (river's ``checks`` idea).

Every component must: survive a restart (export, JSON round trip, restore, continue
identically), pickle, be deterministic, and leave its inputs untouched.
"""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pytest

from engine.core.backtest import BreachCounters
from engine.core.backtest.rolling import RollingBacktests
from engine.core.champion import ChampionSelector
from engine.core.customers import CustomerProfiles
from engine.core.online import OnlineComponent
from engine.core.sequencer import PriceSequencer
from engine.core.volatility import EWMAVolatility
from engine.core.volatility.fitting import RefitSchedule
from engine.core.volatility.garch import GARCHVolatility
from engine.core.volatility.har import HARVolatility
from engine.core.windows import RollingWindow
from engine.validation import TransactionColumns

N_SLOTS = 4
NEVER = RefitSchedule(first=10**9, every=1, delay=0)


def price_inputs(rng: np.random.Generator, n: int, offset0: int) -> tuple[Any, ...]:
    slots = rng.integers(0, N_SLOTS, n)
    ts = np.sort(rng.integers(0, 10 * n, n)) + offset0 * 10
    price = np.exp(rng.normal(0, 0.01, n).cumsum()) * 100
    ehash = np.where(rng.random(n) < 0.5, rng.integers(1, 5, n), 0)
    offset = np.arange(offset0, offset0 + n)
    return slots, ts, price, ehash, offset


def returns_inputs(rng: np.random.Generator, n: int, offset0: int) -> tuple[Any, ...]:
    returns = rng.normal(0, 0.01, n)
    returns[rng.random(n) < 0.05] = np.nan
    return rng.integers(0, N_SLOTS, n), returns


def breach_inputs(rng: np.random.Generator, n: int, offset0: int) -> tuple[Any, ...]:
    slots, returns = returns_inputs(rng, n, offset0)
    return slots, returns, np.abs(rng.normal(0.02, 0.005, (n, 2, 1)))


def rolling_inputs(rng: np.random.Generator, n: int, offset0: int) -> tuple[Any, ...]:
    """Method ``a`` fair, ``b`` at a third of the risk (so tests reject and events happen)."""
    slots, returns = returns_inputs(rng, n, offset0)
    z = np.array([1.64, 1.96, 2.33])
    var = np.stack([0.01 * z, 0.0033 * z])[None].repeat(n, 0)
    var[rng.random(n) < 0.02] = np.nan
    return slots, returns, var, var * 1.2


def champion_inputs(rng: np.random.Generator, n: int, offset0: int) -> tuple[Any, ...]:
    """Three candidates at 0.5, 1 and 3 times the risk (switches and red zones happen)."""
    slots, returns = returns_inputs(rng, n, offset0)
    z = np.array([1.96, 2.33])
    var = np.stack([0.005 * z, 0.01 * z, 0.03 * z])[None].repeat(n, 0)
    var = var * rng.uniform(0.8, 1.2, (n, 1, 1))
    var[rng.random(n) < 0.02] = np.nan
    return slots, returns, var, var * 1.2, var * 0.9, var * 1.1


def rv_inputs(rng: np.random.Generator, n: int, offset0: int) -> tuple[Any, ...]:
    rv = rng.gamma(2.0, 5e-5, n)
    rv[rng.random(n) < 0.05] = np.nan
    return rng.integers(0, N_SLOTS, n), rv


def seeded(model: Any, params: np.ndarray, variance: float = np.nan) -> Any:
    """A refitted model that never refits, with parameters installed in every slot."""
    model.ensure(N_SLOTS)
    for slot in range(N_SLOTS):
        model.state["params"][slot] = params
        model.state["has"][slot] = 1
        if "var" in model.state._arrays:
            model.state["var"][slot] = variance
    return model


def customer_inputs(rng: np.random.Generator, n: int, offset0: int) -> tuple[Any, ...]:
    cols = TransactionColumns(
        ts=rng.integers(0, 1000, n),
        amount=rng.gamma(2.0, 30.0, n),
        tx_hash=rng.integers(1, 40, n),
        offset=np.arange(offset0, offset0 + n),
    )
    return rng.integers(0, N_SLOTS, n), cols


CASES: dict[str, tuple[Callable[[], OnlineComponent], Callable[..., tuple[Any, ...]]]] = {
    "sequencer": (PriceSequencer, price_inputs),
    "ewma": (lambda: EWMAVolatility(0.94, 3), returns_inputs),
    "breaches": (lambda: BreachCounters(("a", "b"), (0.99,)), breach_inputs),
    "gjr": (
        lambda: seeded(
            GARCHVolatility("gjr", NEVER), np.array([2e-6, 0.02, 0.15, 0.85, 7.0]), 1e-4
        ),
        returns_inputs,
    ),
    "rolling_backtests": (
        lambda: RollingBacktests(
            ("a", "b"), (0.95, 0.975, 0.99), (0.95, 0.99), 0.975, ("a", "b"), window=20
        ),
        rolling_inputs,
    ),
    "champion": (
        lambda: ChampionSelector(("a", "b", "c"), (0.975, 0.99), 0.99, 0.975, window=20),
        champion_inputs,
    ),
    "champion_fz0": (
        lambda: ChampionSelector(
            ("a", "b", "c"), (0.975, 0.99), 0.99, 0.975, "fz0", window=20, patience=3
        ),
        champion_inputs,
    ),
    "har": (lambda: seeded(HARVolatility(NEVER), np.array([1e-6, 0.4, 0.3, 0.2])), rv_inputs),
    "customer_profiles": (CustomerProfiles, customer_inputs),
    "rolling_window": (
        lambda: RollingWindow("w", 50, (0.01, 0.025, 0.05), min_obs=20, extra=10),
        returns_inputs,
    ),
}


def fresh(factory: Callable[[], OnlineComponent]) -> OnlineComponent:
    component = factory()
    component.ensure(N_SLOTS)
    return component


def outputs(result: Any) -> list[np.ndarray]:
    if dataclasses.is_dataclass(result):
        return [getattr(result, f.name) for f in dataclasses.fields(result)]
    if isinstance(result, dict):
        return [result[k] for k in sorted(result)]
    if isinstance(result, tuple):
        return list(result)
    return [result]


@pytest.fixture(params=sorted(CASES))
def case(
    request: pytest.FixtureRequest,
) -> tuple[Callable[[], OnlineComponent], Callable[..., tuple[Any, ...]]]:
    return CASES[request.param]


# The JSON export holds state columns only: ring components restart from binary blocks.
JSON_CASES = sorted(name for name, (factory, _) in CASES.items() if not fresh(factory).state.rings)


@pytest.mark.parametrize("name", JSON_CASES)
def test_restart_from_exported_state_continues_identically(name: str) -> None:
    factory, make = CASES[name]
    rng = np.random.default_rng(1)
    first, second = make(rng, 300, 0), make(rng, 300, 300)
    reference = fresh(factory)
    reference.update(*first)
    expected = outputs(reference.update(*second))

    before_restart = fresh(factory)
    before_restart.update(*first)
    saved = {
        slot: orjson.loads(
            orjson.dumps(before_restart.export(slot), option=orjson.OPT_SERIALIZE_NUMPY)
        )
        for slot in range(N_SLOTS)
    }
    restarted = fresh(factory)
    for slot, state in saved.items():
        restarted.restore(slot, state)
    for got, want in zip(outputs(restarted.update(*second)), expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_restart_from_binary_records_continues_identically(case: Any) -> None:
    factory, make = case
    rng = np.random.default_rng(1)
    first, second = make(rng, 300, 0), make(rng, 300, 300)
    reference = fresh(factory)
    reference.update(*first)
    expected = outputs(reference.update(*second))

    before_restart = fresh(factory)
    before_restart.update(*first)
    records = before_restart.pack(np.arange(N_SLOTS))
    blocks = {
        (slot, ring, block): data
        for slot, ring, block, data in before_restart.ring_blocks(np.arange(N_SLOTS))
    }
    restarted = fresh(factory)
    assert restarted.fingerprint == before_restart.fingerprint
    for slot in range(N_SLOTS):
        restarted.unpack(
            slot, records[slot].tobytes(), lambda ring, block, s=slot: blocks.get((s, ring, block))
        )
    for got, want in zip(outputs(restarted.update(*second)), expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_pickles_with_its_state(case: Any) -> None:
    factory, make = case
    rng = np.random.default_rng(2)
    component = fresh(factory)
    component.update(*make(rng, 100, 0))
    clone = pickle.loads(pickle.dumps(component))
    nxt = make(rng, 50, 100)
    for got, want in zip(outputs(clone.update(*nxt)), outputs(component.update(*nxt)), strict=True):
        np.testing.assert_array_equal(got, want)


def test_same_input_same_output_and_inputs_untouched(case: Any) -> None:
    factory, make = case
    inputs = make(np.random.default_rng(3), 200, 0)
    copies = pickle.loads(pickle.dumps(inputs))
    a = outputs(fresh(factory).update(*inputs))
    b = outputs(fresh(factory).update(*inputs))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert pickle.dumps(inputs) == pickle.dumps(copies)


def test_older_state_versions_start_cold(case: Any) -> None:
    factory, make = case
    component = fresh(factory)
    component.update(*make(np.random.default_rng(4), 100, 0))
    state = component.export(0)
    state["v"] = -1
    component.restore(0, state)
    cold = fresh(factory)
    cold.reset(0)
    assert orjson.dumps(component.export(0)) == orjson.dumps(cold.export(0))  # NaN-safe equality
