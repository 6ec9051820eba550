"""One battery for every online component (river's ``check_estimator`` idea).

Every component must: survive a restart (export, JSON round trip, restore, continue
identically; and from binary records), pickle with its state, give the same outputs for
the same inputs and leave its inputs untouched, start cold from an older state version,
and give the same outputs whether a batch arrives whole or in pieces.

The components are discovered, not listed: every registered volatility model
(:mod:`engine.core.volatility.registry`) is built from a spec by its name and fed what
it declares it needs; every other concrete :class:`OnlineComponent` of the engine must
have inputs here, or the discovery test fails. A model registered by a test of its own
is picked up the same way (``test_a_toy_model_registered_in_one_class_is_checked_and_runs``).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import itertools
import pickle
import pkgutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numba
import numpy as np
import orjson
import pandas as pd
import pytest

import engine
from engine.anomaly.calibration import TailCalibrator
from engine.anomaly.features.prices import PriceFeatures
from engine.anomaly.features.transactions import CustomerWindows
from engine.anomaly.policy import AlertState
from engine.boundary.validation import TransactionColumns
from engine.core.backtest import BreachCounters
from engine.core.backtest.rolling import RollingBacktests
from engine.core.bars import SessionBars
from engine.core.book import PriceRiskBook
from engine.core.champion import ChampionSelector
from engine.core.customers import CustomerProfiles
from engine.core.drift import PageHinkleyDrift
from engine.core.online import OnlineComponent
from engine.core.sequencer import PriceSequencer
from engine.core.slots import Column
from engine.core.spec import RiskSpec
from engine.core.volatility import EWMAVolatility, VolatilityModel
from engine.core.volatility.base import Build, VolOutput
from engine.core.volatility.deep_features import FEATURES, RETURNS_FEATURES, FeatureParams
from engine.core.volatility.fitting import FitResult, RefitSchedule
from engine.core.volatility.realised import Sessions
from engine.core.volatility.refitted import RefittedVolatility
from engine.core.volatility.registry import register, unregister, vol_model, vol_model_names
from engine.core.volatility.session_rv import NO_SESSION, SessionRVTracker
from engine.core.windows import RingHistory, RollingWindow
from engine.offline.runs import columns_from_frame

N_SLOTS = 4
NEVER = RefitSchedule(first=10**9, every=1, delay=0)


# --- inputs ----------------------------------------------------------------------------------


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


def customer_inputs(rng: np.random.Generator, n: int, offset0: int) -> tuple[Any, ...]:
    cols = TransactionColumns(
        ts=rng.integers(0, 1000, n),
        amount=rng.gamma(2.0, 30.0, n),
        tx_hash=rng.integers(1, 40, n),
        offset=np.arange(offset0, offset0 + n),
    )
    return rng.integers(0, N_SLOTS, n), cols


def drift_inputs(rng: np.random.Generator, n: int, offset0: int) -> tuple[Any, ...]:
    """Losses whose mean steps up half-way (so detections happen)."""
    x = rng.normal(0.0, 1.0, n) + np.where(np.arange(n) > n // 2, 1.5, 0.0)
    return rng.integers(0, N_SLOTS, n), x


def alert_inputs(rng: np.random.Generator, n: int, offset0: int) -> tuple[Any, ...]:
    return rng.integers(0, N_SLOTS, n), rng.exponential(1.0, n), 2.0


def window_inputs(rng: np.random.Generator, n: int, offset0: int) -> tuple[Any, ...]:
    ts = np.sort(rng.integers(0, 60_000 * n, n)) + offset0 * 60_000
    return rng.integers(0, N_SLOTS, n), ts, rng.gamma(2.0, 30.0, n)


def calibrator_inputs(rng: np.random.Generator, n: int, offset0: int) -> tuple[Any, ...]:
    return rng.integers(0, N_SLOTS, n), rng.exponential(1.0, (n, 2))


def price_feature_inputs(rng: np.random.Generator, n: int, offset0: int) -> tuple[Any, ...]:
    slots, returns = returns_inputs(rng, n, offset0)
    ts = np.sort(rng.integers(0, 1000 * n, n)) + offset0 * 1000
    volume = np.where(rng.random(n) < 0.2, np.nan, rng.gamma(2.0, 100.0, n))
    return slots, ts, returns, np.full(n, 0.01), volume


def vol_inputs(rng: np.random.Generator, n: int, offset0: int) -> tuple[Any, ...]:
    """What any volatility model may need (:meth:`VolatilityModel.step`): returns, realised
    variances (NaN on some ticks) and two other models' forecasts (for a combination)."""
    slots, returns = returns_inputs(rng, n, offset0)
    rv = rng.gamma(2.0, 5e-5, n)
    rv[rng.random(n) < 0.05] = np.nan
    nan = np.full(n, np.nan)
    others = {
        name: VolOutput(rng.uniform(0.005, 0.02, n), rng.uniform(0.005, 0.02, n), nan, nan)
        for name in ("a", "b")
    }
    return slots, returns, rv, others


def contract_sessions(calendar: str, first: int, last: int) -> tuple[Sessions, int, int]:
    """Sessions of 600 ms starting every 1000 ms (the other 400 ms are a gap), around the span."""
    start, end = (first // 1000 - 1) * 1000, (last // 1000 + 2) * 1000
    opens = np.arange(start, end, 1000)
    return Sessions(opens, opens + 600), start, end


def session_rv_inputs(rng: np.random.Generator, n: int, offset0: int) -> tuple[Any, ...]:
    """Ticks over several sessions per slot (some in the gaps), a few carrying their own rv."""
    slots, ts, price, _, _ = price_inputs(rng, n, offset0)
    rv = np.where(rng.random(n) < 0.02, rng.gamma(2.0, 5e-5, n), np.nan)
    return slots, ts * 20, price, rv


def bars_inputs(rng: np.random.Generator, n: int, offset0: int) -> tuple[Any, ...]:
    """The tracker's per-tick sessions of :func:`contract_sessions` (ticks in the gaps are
    outside), some ticks at a session's close, a few carrying their own rv."""
    slots, ts, price, rv = session_rv_inputs(rng, n, offset0)
    ts = np.where(rng.random(n) < 0.05, ts // 1000 * 1000 + 600, ts)
    ts = np.sort(ts)
    inside = ts % 1000 <= 600
    opens = np.where(inside, ts // 1000 * 1000, NO_SESSION)
    closes = np.where(inside, opens + 600, NO_SESSION)
    session_rv = np.where(inside & (rng.random(n) < 0.5), rng.gamma(2.0, 5e-5, n), np.nan)
    return slots, ts, price, opens, closes, session_rv, rv


# --- volatility models, from the registry ----------------------------------------------------


class LinearPredictor:
    """A deterministic stand-in for a deep model: log-variance linear in the window's mean.

    Its card lists the inputs of the model directory it stands for (``lstm-returns``: the
    returns-only variant's)."""

    def __init__(self, inputs: tuple[str, ...] = FEATURES) -> None:
        self.card = SimpleNamespace(
            features=FeatureParams(0.94, 1e-6, 0.1, 0.85, 1e-4, window=5, burn=5),
            version="contract-linear",
            inputs=inputs,
        )

    def predict_log_var(self, windows: np.ndarray) -> np.ndarray:
        return -9.0 + 0.1 * np.tanh(windows.mean(axis=(1, 2)))


def linear_predictors(kind: str, directory: str | None) -> LinearPredictor:
    return LinearPredictor(RETURNS_FEATURES if kind.endswith("-returns") else FEATURES)


#: Refits never requested (a component alone has no book to run them); small windows.
CONTRACT_SPEC = RiskSpec(
    vol_models=("ewma",),
    method="hs",
    garch_refit=NEVER,
    garch_window=300,
    har_refit=NEVER,
    har_window=300,
)


@functools.cache
def own_fit(name: str, data_length: int, needs: str) -> FitResult:
    """The model's own estimate on synthetic data (its fallback when the fit is rejected)."""
    rng = np.random.default_rng(5)
    data = rng.gamma(2.0, 5e-5, data_length) if needs == "rv" else rng.normal(0, 0.01, data_length)
    result = vol_model(name).estimate(name, data, None)  # type: ignore[attr-defined]
    if result.ok:
        return result
    assert result.fallback is not None, f"{name}: rejected fit without fallback"
    return FitResult(result.fallback, result.fallback_var, True)


def build_vol_model(name: str) -> VolatilityModel:
    """The model registered as ``name``, built from the contract spec; a fitted model gets
    the parameters of its own fit in every slot."""
    others = {"a": EWMAVolatility(), "b": EWMAVolatility()}
    model = vol_model(name).from_spec(name, Build(CONTRACT_SPEC, linear_predictors, others))
    if isinstance(model, RefittedVolatility):
        model.ensure(N_SLOTS)
        fitted = own_fit(name, model.data_length, model.needs)
        for slot in range(N_SLOTS):
            model.switch_now(slot, fitted)
    return model


def step_vol(model: Any, inputs: tuple[Any, ...]) -> Any:
    return model.step(*inputs)


# --- the cases -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    build: Callable[[], OnlineComponent]
    inputs: Callable[..., tuple[Any, ...]]
    step: Callable[[Any, tuple[Any, ...]], Any] = lambda component, inputs: component.update(
        *inputs
    )


#: The components that are not volatility models, with their inputs.
OTHER_CASES: dict[str, Case] = {
    "sequencer": Case(PriceSequencer, price_inputs),
    "breaches": Case(lambda: BreachCounters(("a", "b"), (0.99,)), breach_inputs),
    "rolling_backtests": Case(
        lambda: RollingBacktests(
            ("a", "b"), (0.95, 0.975, 0.99), (0.95, 0.99), 0.975, ("a", "b"), window=20
        ),
        rolling_inputs,
    ),
    "champion": Case(
        lambda: ChampionSelector(("a", "b", "c"), (0.975, 0.99), 0.99, 0.975, window=20),
        champion_inputs,
    ),
    "champion_fz0": Case(
        lambda: ChampionSelector(
            ("a", "b", "c"), (0.975, 0.99), 0.99, 0.975, "fz0", window=20, patience=3
        ),
        champion_inputs,
    ),
    "customer_profiles": Case(CustomerProfiles, customer_inputs),
    "rolling_window": Case(
        lambda: RollingWindow("w", 50, (0.01, 0.025, 0.05), min_obs=20, extra=10),
        returns_inputs,
    ),
    "drift": Case(
        lambda: PageHinkleyDrift("drift", min_instances=5, delta=0.1, threshold=5.0), drift_inputs
    ),
    "alert_state": Case(lambda: AlertState("alerts", rearm=3), alert_inputs),
    "customer_windows": Case(CustomerWindows, window_inputs),
    "tail_calibrator": Case(
        lambda: TailCalibrator("cal", ("x", "y"), halflife=50, min_obs=20), calibrator_inputs
    ),
    "price_features": Case(lambda: PriceFeatures(halflife=20), price_feature_inputs),
    "ring_history": Case(lambda: RingHistory("h", 40), returns_inputs),
    "session_rv": Case(
        lambda: SessionRVTracker(contract_sessions, "24/7", min_returns=3), session_rv_inputs
    ),
    "session_bars": Case(lambda: SessionBars(n_levels=2), bars_inputs),
}

#: Components whose state another object drives (they have no ``update`` of their own);
#: their drivers' tests cover them.
DRIVEN = {
    "SeriesState": "driven by SeriesFeatures (tests/anomaly)",
    "CreditState": "driven by CreditStage (tests/credit)",
}


def vol_cases() -> dict[str, Case]:
    """One case per registered volatility model, as registered now."""
    return {
        f"vol:{name}": Case(functools.partial(build_vol_model, name), vol_inputs, step_vol)
        for name in vol_model_names()
    }


def all_cases() -> dict[str, Case]:
    return {**OTHER_CASES, **vol_cases()}


CASES = all_cases()


def concrete_components() -> set[type[OnlineComponent]]:
    """Every concrete OnlineComponent subclass defined in the engine's modules."""
    for module in pkgutil.walk_packages(engine.__path__, "engine."):
        if module.name.startswith(("engine.core", "engine.anomaly", "engine.credit")):
            importlib.import_module(module.name)
    found: set[type[OnlineComponent]] = set()
    stack = list(OnlineComponent.__subclasses__())
    while stack:
        cls = stack.pop()
        stack += cls.__subclasses__()
        if cls.__module__.startswith("engine.") and "columns" in _defined(cls):
            found.add(cls)
    return found


def _defined(cls: type) -> set[str]:
    return {name for klass in cls.__mro__ if klass is not OnlineComponent for name in vars(klass)}


# --- the battery -----------------------------------------------------------------------------


def fresh(case: Case) -> OnlineComponent:
    component = case.build()
    component.ensure(N_SLOTS)
    return component


def state_of(component: OnlineComponent) -> bytes:
    """Every slot's exported state (JSON bytes: NaN-safe equality)."""
    return orjson.dumps(
        [component.export(slot) for slot in range(N_SLOTS)], option=orjson.OPT_SERIALIZE_NUMPY
    )


def outputs(result: Any) -> list[Any]:
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return [getattr(result, f.name) for f in dataclasses.fields(result)]
    if isinstance(result, dict):
        return [result[k] for k in sorted(result)]
    if isinstance(result, tuple):
        return list(result)
    return [result]


def assert_same(got: list[Any], want: list[Any]) -> None:
    for x, y in zip(got, want, strict=True):
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y)
        else:
            assert x == y


def take(inputs: tuple[Any, ...], rows: slice, n: int) -> tuple[Any, ...]:
    """The rows ``rows`` of every per-row input (arrays, dataclasses and dicts of them)."""

    def cut(x: Any) -> Any:
        if isinstance(x, np.ndarray) and x.ndim and x.shape[0] == n:
            return x[rows]
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            return dataclasses.replace(
                x, **{f.name: cut(getattr(x, f.name)) for f in dataclasses.fields(x)}
            )
        if isinstance(x, dict):
            return {k: cut(v) for k, v in x.items()}
        return x

    return tuple(cut(x) for x in inputs)


def joined(parts: list[list[Any]], starts: list[int]) -> list[Any]:
    """Outputs of consecutive pieces as one batch's: arrays concatenated, events (which
    carry their row in the batch) shifted to rows of the whole batch."""
    out = []
    for i, first in enumerate(parts[0]):
        column = [p[i] for p in parts]
        if isinstance(first, np.ndarray):
            out.append(np.concatenate(column))
        elif isinstance(first, list):
            out.append(
                [
                    dataclasses.replace(event, row=event.row + start)
                    for events, start in zip(column, starts, strict=True)
                    for event in events
                ]
            )
        else:
            out.append(first)
    return out


def restarted_continues_identically(
    case: Case, restart: Callable[[OnlineComponent], OnlineComponent]
) -> None:
    """Run 300 inputs, restart with ``restart(component)``, run 300 more: as if never stopped.

    ``restart`` takes the component after the first inputs and returns a fresh one holding
    its saved state; the outputs on the next inputs and the final state must equal those of
    a component that was never restarted.
    """
    rng = np.random.default_rng(1)
    first, second = case.inputs(rng, 300, 0), case.inputs(rng, 300, 300)
    reference = fresh(case)
    case.step(reference, first)
    expected = outputs(case.step(reference, second))

    before_restart = fresh(case)
    case.step(before_restart, first)
    restarted = restart(before_restart)
    assert_same(outputs(case.step(restarted, second)), expected)
    assert state_of(restarted) == state_of(reference)


def check_json_restart(case: Case) -> None:
    """Export, JSON round trip, restore: the restarted component continues identically."""

    def restart(before_restart: OnlineComponent) -> OnlineComponent:
        saved = {
            slot: orjson.loads(
                orjson.dumps(before_restart.export(slot), option=orjson.OPT_SERIALIZE_NUMPY)
            )
            for slot in range(N_SLOTS)
        }
        restarted = fresh(case)
        for slot, state in saved.items():
            restarted.restore(slot, state)
        return restarted

    restarted_continues_identically(case, restart)


def check_binary_restart(case: Case) -> None:
    """Binary records and ring blocks: the restarted component continues identically."""

    def restart(before_restart: OnlineComponent) -> OnlineComponent:
        records = before_restart.pack(np.arange(N_SLOTS))
        blocks = {
            (slot, ring, block): data
            for slot, ring, block, data in before_restart.ring_blocks(np.arange(N_SLOTS))
        }
        restarted = fresh(case)
        assert restarted.fingerprint == before_restart.fingerprint
        for slot in range(N_SLOTS):
            restarted.unpack(
                slot,
                records[slot].tobytes(),
                lambda ring, block, s=slot: blocks.get((s, ring, block)),
            )
        return restarted

    restarted_continues_identically(case, restart)


def check_pickles(case: Case) -> None:
    rng = np.random.default_rng(2)
    component = fresh(case)
    case.step(component, case.inputs(rng, 100, 0))
    clone = pickle.loads(pickle.dumps(component))
    nxt = case.inputs(rng, 50, 100)
    assert_same(outputs(case.step(clone, nxt)), outputs(case.step(component, nxt)))
    assert state_of(clone) == state_of(component)


def check_deterministic_and_inputs_untouched(case: Case) -> None:
    """Seeded inputs give the same outputs on two fresh components; inputs are not mutated."""
    inputs = case.inputs(np.random.default_rng(3), 200, 0)
    copies = pickle.loads(pickle.dumps(inputs))
    one, two = fresh(case), fresh(case)
    assert_same(outputs(case.step(one, inputs)), outputs(case.step(two, inputs)))
    assert state_of(one) == state_of(two)
    assert pickle.dumps(inputs) == pickle.dumps(copies)


def check_batch_equals_pieces(case: Case) -> None:
    """A batch gives the same outputs whole, in uneven pieces, and one row at a time."""
    n = 120
    inputs = case.inputs(np.random.default_rng(6), n, 0)
    reference = fresh(case)
    whole = outputs(case.step(reference, inputs))
    for cuts in ([0, 1, 8, 50, 51, 97, n], list(range(n + 1))):
        component = fresh(case)
        parts = [
            outputs(case.step(component, take(inputs, slice(a, b), n)))
            for a, b in itertools.pairwise(cuts)
        ]
        assert_same(joined(parts, cuts[:-1]), whole)
        assert state_of(component) == state_of(reference)


def check_older_state_starts_cold(case: Case) -> None:
    component = fresh(case)
    case.step(component, case.inputs(np.random.default_rng(4), 100, 0))
    state = component.export(0)
    state["v"] = -1
    component.restore(0, state)
    cold = fresh(case)
    cold.reset(0)
    assert orjson.dumps(component.export(0)) == orjson.dumps(cold.export(0))  # NaN-safe equality


BATTERY = (
    check_binary_restart,
    check_pickles,
    check_deterministic_and_inputs_untouched,
    check_batch_equals_pieces,
    check_older_state_starts_cold,
)


def check_component(case: Case) -> None:
    """The whole battery (the JSON restart only for components without rings)."""
    for check in BATTERY:
        check(case)
    if not fresh(case).state.rings:
        check_json_restart(case)


# --- the tests -------------------------------------------------------------------------------

# The JSON export holds state columns only: ring components restart from binary blocks.
JSON_CASES = sorted(name for name, case in CASES.items() if not fresh(case).state.rings)


@pytest.mark.parametrize("name", JSON_CASES)
def test_restart_from_exported_state_continues_identically(name: str) -> None:
    check_json_restart(CASES[name])


@pytest.mark.parametrize("check", BATTERY, ids=lambda check: check.__name__)
@pytest.mark.parametrize("name", sorted(CASES))
def test_battery(name: str, check: Callable[[Case], None]) -> None:
    check(CASES[name])


def test_every_online_component_of_the_engine_is_in_the_battery() -> None:
    covered = {type(case.build()) for case in CASES.values()}
    missing = {
        cls.__qualname__
        for cls in concrete_components()
        if not any(issubclass(c, cls) for c in covered) and cls.__qualname__ not in DRIVEN
    }
    assert not missing, f"online components without a case in the battery: {sorted(missing)}"


def test_every_registered_volatility_model_is_in_the_battery() -> None:
    assert {f"vol:{name}" for name in vol_model_names()} <= set(CASES)
    assert len(vol_model_names()) >= 7


# --- a model of one's own --------------------------------------------------------------------


@numba.njit(cache=True)
def _mean_absolute(slots, returns, mad, nobs, before, after):  # pragma: no cover - compiled
    for i in range(slots.shape[0]):
        s = slots[i]
        before[i] = mad[s] * np.sqrt(np.pi / 2.0) if nobs[s] >= 5 else np.nan
        r = returns[i]
        if not np.isnan(r):
            nobs[s] += 1
            mad[s] += (abs(r) - mad[s]) / min(nobs[s], 50)
        after[i] = mad[s] * np.sqrt(np.pi / 2.0) if nobs[s] >= 5 else np.nan


class ToyVolatility(VolatilityModel):
    """Sigma from the mean absolute return (normal scaling), a 50-return running mean."""

    name = "toy"
    needs = "returns"

    @classmethod
    def from_spec(cls, name: str, build: Build) -> ToyVolatility:
        return cls()

    def columns(self) -> tuple[Column, ...]:
        return (Column("mad", np.float64, 0.0), Column("nobs", np.int64, 0))

    def update(self, slots: np.ndarray, returns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        before, after = np.empty(slots.shape[0]), np.empty(slots.shape[0])
        _mean_absolute(slots, returns, self.state["mad"], self.state["nobs"], before, after)
        return before, after


@contextmanager
def registered(name: str, cls: type[VolatilityModel]) -> Iterator[None]:
    register(name)(cls)
    try:
        yield
    finally:
        unregister(name)


def test_a_toy_model_registered_in_one_class_is_checked_and_runs() -> None:
    with registered("toy", ToyVolatility):
        cases = all_cases()
        assert "vol:toy" in cases and "vol:toy" not in CASES
        check_component(cases["vol:toy"])  # the whole battery, on the new model

        spec = RiskSpec(vol_models=("ewma", "toy"), method="toy-t", backtest_methods=("all",))
        assert "toy-mix" in spec.methods
        book = PriceRiskBook(spec)
        rng = np.random.default_rng(7)
        n = 400
        price = 100 * np.exp(rng.standard_t(5, n).cumsum() * 0.01)
        stamps = pd.to_datetime(np.arange(n) * 1000, unit="ms", utc=True)
        cols = columns_from_frame(
            pd.DataFrame({"timestamp": stamps, "symbol": ["A", "B"] * (n // 2), "price": price})
        )
        step = book.step(cols)
    assert book.model_name == "toy-t" and book.model_version == "1"
    sigma = step.sigma["toy"]
    assert np.isnan(sigma[:8]).all() and np.isfinite(sigma[20:]).all()
    j = book.methods.index("toy-normal")
    np.testing.assert_allclose(step.var[20:, j, book.level_index(0.99)], 2.3263479 * sigma[20:])
    with pytest.raises(ValueError, match=r"unknown volatility models \['toy'\]; choose from"):
        RiskSpec(vol_models=("toy",), method="toy-t")


@pytest.mark.parametrize("name", vol_model_names())
def test_the_battery_feeds_every_model_what_it_needs_to_forecast(name: str) -> None:
    case = CASES[f"vol:{name}"]
    out = case.step(fresh(case), case.inputs(np.random.default_rng(8), 300, 0))
    assert np.isfinite(out.after).mean() > 0.5  # the checks compare forecasts, not NaNs


class LeakyVolatility(ToyVolatility):
    """Keeps a count outside its state columns: a restart loses it."""

    def __init__(self) -> None:
        self.seen = 0
        super().__init__()

    def update(self, slots: np.ndarray, returns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        before, after = super().update(slots, returns)
        self.seen += slots.shape[0]
        return before * (2.0 if self.seen > 300 else 1.0), after


def test_the_battery_rejects_a_model_that_keeps_state_outside_its_columns() -> None:
    with registered("leaky", LeakyVolatility):
        case = all_cases()["vol:leaky"]
        with pytest.raises(AssertionError):
            check_binary_restart(case)
