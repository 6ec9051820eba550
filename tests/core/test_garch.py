"""GARCH and GJR-GARCH against arch: the recursion, the fits, and the refit switch."""

from __future__ import annotations

import arch.data.sp500
import numpy as np
import pytest
from arch import arch_model

from engine.core.volatility.fitting import FitJob, RefitSchedule, SyncFitter, fit
from engine.core.volatility.garch import GARCHVolatility


@pytest.fixture(scope="module")
def returns() -> np.ndarray:
    """S&P 500 daily log returns (decimal), 1999-2018."""
    close = arch.data.sp500.load()["Adj Close"]
    return np.diff(np.log(close.to_numpy()))


@pytest.mark.parametrize(
    ("kind", "params_pct"),
    [
        ("garch", [0.02, 0.09, 0.0, 0.89, 7.0]),
        ("gjr", [0.025, 0.0, 0.17, 0.88, 8.0]),
    ],
)
def test_recursion_matches_arch_conditional_volatility(
    returns: np.ndarray, kind: str, params_pct: list[float]
) -> None:
    pct = returns * 100
    o = 1 if kind == "gjr" else 0
    arch_params = [
        params_pct[0],
        params_pct[1],
        *([params_pct[2]] if o else []),
        params_pct[3],
        params_pct[4],
    ]
    arch_vol = (
        arch_model(pct, mean="Zero", vol="GARCH", p=1, o=o, q=1, dist="t")
        .fix(arch_params)
        .conditional_volatility
    )
    model = GARCHVolatility(kind, RefitSchedule(first=10**9, every=1, delay=0))  # never refits
    model.ensure(1)
    params = np.array(
        [params_pct[0] / 1e4, params_pct[1], params_pct[2], params_pct[3], params_pct[4]]
    )
    model.seed(0, params, (arch_vol[0] / 100) ** 2)
    before, _ = model.update(np.zeros(returns.size, np.int64), returns)
    np.testing.assert_allclose(before, np.asarray(arch_vol) / 100, rtol=1e-8)
    np.testing.assert_array_equal(model.nu_before, 7.0 if kind == "garch" else 8.0)


@pytest.mark.parametrize("kind", ["garch", "gjr"])
def test_fit_recovers_arch_estimates_in_decimal_units(returns: np.ndarray, kind: str) -> None:
    window = returns[:1000]
    result = fit(FitJob("SPX", kind, window, None))
    o = 1 if kind == "gjr" else 0
    ref = arch_model(window * 100, mean="Zero", vol="GARCH", p=1, o=o, q=1, dist="t").fit(
        disp="off"
    )
    p = ref.params.to_numpy()
    assert result.ok
    assert result.params[0] == pytest.approx(p[0] / 1e4, rel=1e-3)
    assert result.params[3] == pytest.approx(p[-2], rel=1e-3)
    assert result.end_var == pytest.approx(
        ref.forecast(horizon=1, reindex=False).variance.iloc[-1, 0] / 1e4, rel=1e-3
    )


def run_with_refits(model: GARCHVolatility, returns: np.ndarray) -> np.ndarray:
    """What the book does: segments end at requests; fits are installed when due."""
    model.ensure(1)
    fitter = SyncFitter()
    out = np.empty(returns.size)
    counts = np.arange(1, returns.size + 1)
    ends = [*(np.flatnonzero(model.schedule.request_mask(counts)) + 1).tolist(), returns.size]
    start = 0
    for end in ends:
        if end <= start:
            continue
        if model.due(0, end - start):  # a pending switch falls in this segment
            req = int(model.state["req"][0])
            model.install(0, fitter.result(model.job(0, ("SPX", req), returns[:req])))
        _, out[start:end] = model.update(np.zeros(end - start, np.int64), returns[start:end])
        if model.requested(0) and model.schedule.delay == 0:  # switch at the request itself
            req = int(model.state["req"][0])
            model.install(0, fitter.result(model.job(0, ("SPX", req), returns[:req])))
            out[end - 1] = model.forecast(0)[0]
        start = end
    return out


@pytest.mark.parametrize("delay", [0, 5])
def test_forecasts_after_a_refit_equal_arch_with_the_refitted_parameters(
    returns: np.ndarray, delay: int
) -> None:
    window, every = 600, 100
    n = window + every  # the second request; its parameters rule until the third
    model = GARCHVolatility(
        "gjr", RefitSchedule(first=window, every=every, delay=delay), window=window
    )
    sigma = run_with_refits(model, returns[: n + every - 1])
    assert (
        np.isnan(sigma[: window + delay - 1]).all()
        and np.isfinite(sigma[window + delay - 1 :]).all()
    )
    installed = model.state["params"][0]
    # arch: the GJR-t model with these parameters, estimated on the window ending at the
    # request (last_obs), forecasting with the returns since: what the switch produces.
    pct = returns[n - window : n + every - 1] * 100
    fixed = arch_model(pct, mean="Zero", vol="GARCH", p=1, o=1, q=1, dist="t").fix(
        [installed[0] * 1e4, installed[1], installed[2], installed[3], installed[4]],
        last_obs=window,
    )
    arch_forecast = fixed.forecast(
        horizon=1, start=window - 1 + delay, reindex=False
    ).variance.to_numpy()[:, 0]
    ours = sigma[n - 1 + delay :] ** 2 * 1e4
    np.testing.assert_allclose(ours, arch_forecast, rtol=1e-8)
