"""EWMA (RiskMetrics) volatility against its closed form, per symbol and across batches."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.volatility import EWMAVolatility


def closed_form_variance(returns: np.ndarray, lam: float, warmup: int) -> np.ndarray:
    """Forecast variance after each return, from the weighted-sum form (not the recursion).

    var_n = lam^(n-m) * mean(r_1..r_m ^2) + (1 - lam) * sum_{j=m+1..n} lam^(n-j) r_j^2
    """
    out = np.full(returns.size, np.nan)
    for n in range(1, returns.size + 1):
        if n < warmup:
            continue
        seed = np.mean(returns[:warmup] ** 2)
        tail = returns[warmup:n]
        weights = lam ** np.arange(tail.size - 1, -1, -1)
        out[n - 1] = lam ** (n - warmup) * seed + (1 - lam) * np.sum(weights * tail**2)
    return out


def test_matches_closed_form_on_one_symbol() -> None:
    rng = np.random.default_rng(7)
    returns = rng.standard_t(5, 400) * 0.01
    model = EWMAVolatility(lam=0.94, warmup=20)
    model.ensure(1)
    before, after = model.update(np.zeros(returns.size, np.int64), returns)
    expected = np.sqrt(closed_form_variance(returns, 0.94, 20))
    np.testing.assert_allclose(after, expected, rtol=1e-12, equal_nan=True)
    # The forecast used for return t is the one published after return t-1.
    np.testing.assert_array_equal(before[1:], after[:-1])
    assert np.isnan(after[:19]).all() and np.isfinite(after[19:]).all()


def test_symbols_are_independent_when_interleaved() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 0.01, 100), rng.normal(0, 0.03, 100)
    slots = np.empty(200, np.int64)
    slots[0::2], slots[1::2] = 0, 1
    returns = np.empty(200)
    returns[0::2], returns[1::2] = a, b
    model = EWMAVolatility(0.9, 5)
    model.ensure(2)
    _, after = model.update(slots, returns)
    np.testing.assert_allclose(
        after[0::2], np.sqrt(closed_form_variance(a, 0.9, 5)), rtol=1e-12, equal_nan=True
    )
    np.testing.assert_allclose(
        after[1::2], np.sqrt(closed_form_variance(b, 0.9, 5)), rtol=1e-12, equal_nan=True
    )


@settings(max_examples=50, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=149), max_size=8, unique=True))
def test_micro_batch_boundaries_do_not_change_the_result(cuts: list[int]) -> None:
    rng = np.random.default_rng(11)
    returns = rng.normal(0, 0.02, 150)
    slots = rng.integers(0, 3, 150)
    whole = EWMAVolatility(0.94, 4)
    whole.ensure(3)
    _, expected = whole.update(slots, returns)
    pieces = EWMAVolatility(0.94, 4)
    pieces.ensure(3)
    got = [
        pieces.update(slots[s:e], returns[s:e])[1]
        for s, e in zip([0, *sorted(cuts)], [*sorted(cuts), 150], strict=True)
    ]
    np.testing.assert_array_equal(np.concatenate(got), expected)


def test_nan_return_leaves_state_unchanged() -> None:
    model = EWMAVolatility(0.94, 1)
    model.ensure(1)
    model.update(np.zeros(2, np.int64), np.array([0.01, 0.02]))
    state = model.export(0)
    before, after = model.update(np.zeros(1, np.int64), np.array([np.nan]))
    assert model.export(0) == state
    assert before[0] == after[0]


@pytest.mark.parametrize("lam", [0.0, 1.0, -0.1, 1.5])
def test_rejects_lambda_outside_the_open_unit_interval(lam: float) -> None:
    with pytest.raises(ValueError, match="lam must be strictly between 0 and 1"):
        EWMAVolatility(lam=lam)


def test_rejects_zero_warmup() -> None:
    with pytest.raises(ValueError, match="warmup must be at least 1"):
        EWMAVolatility(warmup=0)


def test_the_python_step_and_the_compiled_model_give_the_same_bits() -> None:
    """One recursion: :func:`ewma_step` from Python equals the compiled model, bit for bit."""
    from engine.core.volatility.ewma import ewma_step

    rng = np.random.default_rng(11)
    returns = rng.standard_t(4, 300) * 0.01
    returns[rng.random(300) < 0.05] = np.nan
    model = EWMAVolatility(0.9, 5)
    model.ensure(1)
    _, after = model.update(np.zeros(returns.size, np.int64), returns)
    var, n, expected = 0.0, 0, []
    for r in returns:
        if not np.isnan(r):
            var, n = ewma_step(var, n, float(r), 0.9, 5)
        expected.append(np.sqrt(var) if n >= 5 else np.nan)
    np.testing.assert_array_equal(after, np.array(expected))
