"""The online-component battery for the anomaly state: restart, pickle, determinism.

Every per-key component of the anomaly stages (calibration, price features, customer
windows, alert episodes) must survive a worker restart: binary records (and ring
blocks) restored into a fresh component continue exactly as the original would.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from engine.anomaly.calibration import TailCalibrator
from engine.anomaly.features.prices import PriceFeatures
from engine.anomaly.features.transactions import CustomerWindows
from engine.anomaly.policy import AlertPolicy
from engine.core.online import OnlineComponent

N_SLOTS = 3


def calibrator_inputs(rng: np.random.Generator, n: int, offset: int) -> tuple[Any, ...]:
    raw = np.column_stack([rng.standard_t(4, n), rng.exponential(1.0, n)])
    raw[rng.random(n) < 0.03, 0] = np.nan
    return rng.integers(0, N_SLOTS, n), raw


def price_inputs(rng: np.random.Generator, n: int, offset: int) -> tuple[Any, ...]:
    slots = rng.integers(0, N_SLOTS, n)
    ts = (offset + np.arange(n)) * 1000 + rng.integers(0, 500, n)
    returns = rng.normal(0, 0.01, n)
    returns[rng.random(n) < 0.1] = 0.0
    sigma = np.full(n, 0.01)
    volume = np.where(rng.random(n) < 0.2, np.nan, rng.lognormal(5, 1, n))
    return slots, ts, returns, sigma, volume


def customer_inputs(rng: np.random.Generator, n: int, offset: int) -> tuple[Any, ...]:
    ts = (offset + np.arange(n)) * 3_600_000
    return rng.integers(0, N_SLOTS, n), ts, rng.gamma(2.0, 30.0, n)


def alert_inputs(rng: np.random.Generator, n: int, offset: int) -> tuple[Any, ...]:
    return rng.integers(0, N_SLOTS, n), rng.exponential(1.5, n), 4.0


CASES: dict[str, tuple[Callable[[], OnlineComponent], Callable[..., tuple[Any, ...]]]] = {
    "calibrator": (lambda: TailCalibrator("c", ("a", "b"), halflife=200), calibrator_inputs),
    "calibrator_prior": (
        lambda: TailCalibrator("c", ("a",), min_obs=5).with_prior(
            np.random.default_rng(9).standard_normal((500, 1))
        ),
        lambda rng, n, off: (rng.integers(0, N_SLOTS, n), rng.standard_normal((n, 1))),
    ),
    "price_features": (PriceFeatures, price_inputs),
    "customer_windows": (CustomerWindows, customer_inputs),
    "alert_state": (lambda: AlertPolicy(rearm=3).state("a"), alert_inputs),
}


def fresh(factory: Callable[[], OnlineComponent]) -> OnlineComponent:
    component = factory()
    component.ensure(N_SLOTS)
    return component


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> Any:
    return CASES[request.param]


def test_restart_from_binary_records_continues_identically(case: Any) -> None:
    factory, make = case
    rng = np.random.default_rng(1)
    first, second = make(rng, 400, 0), make(rng, 300, 400)
    reference = fresh(factory)
    reference.update(*first)
    expected = reference.update(*second)

    before = fresh(factory)
    before.update(*first)
    records = before.pack(np.arange(N_SLOTS))
    blocks = {(s, ring, b): data for s, ring, b, data in before.ring_blocks(np.arange(N_SLOTS))}
    restarted = fresh(factory)
    assert restarted.fingerprint == before.fingerprint
    for slot in range(N_SLOTS):
        restarted.unpack(
            slot, records[slot].tobytes(), lambda ring, block, s=slot: blocks.get((s, ring, block))
        )
    np.testing.assert_array_equal(restarted.update(*second), expected)


def test_pickles_deterministic_and_leaves_inputs_alone(case: Any) -> None:
    factory, make = case
    first = make(np.random.default_rng(2), 200, 0)
    copies = [np.copy(a) if isinstance(a, np.ndarray) else a for a in first]
    a, b = fresh(factory), fresh(factory)
    np.testing.assert_array_equal(a.update(*first), b.update(*first))
    for got, want in zip(first, copies, strict=True):
        np.testing.assert_array_equal(got, want)
    clone = pickle.loads(pickle.dumps(a))
    nxt = make(np.random.default_rng(3), 100, 200)
    np.testing.assert_array_equal(clone.update(*nxt), a.update(*nxt))


def features_in_batches(
    component: PriceFeatures, ts: np.ndarray, returns: np.ndarray, cut: int
) -> np.ndarray:
    """``component``'s features of one series (slot 0; sigma 1%, no volume) fed in
    micro-batches of ``cut`` rows, concatenated in row order."""
    sigma, volume = np.full(ts.size, 0.01), np.full(ts.size, np.nan)
    slots = np.zeros(ts.size, dtype=np.int64)
    component.ensure(1)
    parts = [
        component.update(
            slots[i : i + cut],
            ts[i : i + cut],
            returns[i : i + cut],
            sigma[i : i + cut],
            volume[i : i + cut],
        )
        for i in range(0, ts.size, cut)
    ]
    return np.concatenate(parts)


@pytest.mark.parametrize("calendar", ["auto", "XNYS"])
def test_price_features_on_a_trading_clock_do_not_depend_on_the_batching(calendar: str) -> None:
    """The trading clock's origin depends on the timestamps it is given: a gap spanning two
    micro-batches must still be measured as within one (S&P 500 daily closes, 2003-2006)."""
    from producers.sources import arch_daily

    frame = arch_daily("sp500").iloc[1000:2000]
    ts = frame["timestamp"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    returns = np.diff(np.log(frame["price"].to_numpy()), prepend=np.nan)

    def features(cut: int) -> np.ndarray:
        return features_in_batches(PriceFeatures(calendar=calendar), ts, returns, cut)

    whole = features(ts.size)
    for cut in (1, 7, 250):
        np.testing.assert_array_equal(features(cut), whole)


def test_price_features_on_the_weekday_clock_do_not_depend_on_the_batching() -> None:
    """WTI moved on an NYSE holiday in July 1987, so ``auto`` moves it to the weekday clock
    mid-series: a gap spanning two micro-batches on that clock is measured as within one."""
    import arch.data.wti

    from engine.anomaly.features.gap import WEEKDAYS

    wti = arch.data.wti.load().iloc[:400]
    ts = wti.index.as_unit("ms").asi8
    prices = wti.iloc[:, 0].to_numpy(float)
    returns = np.diff(np.log(prices), prepend=np.nan)

    def features(cut: int) -> tuple[np.ndarray, int]:
        component = PriceFeatures(calendar="auto")
        got = features_in_batches(component, ts, returns, cut)
        return got, int(component.state["wall"][0])

    whole, clock = features(ts.size)
    assert clock == WEEKDAYS
    for cut in (1, 7, 250):
        got, _ = features(cut)
        np.testing.assert_array_equal(got, whole)
