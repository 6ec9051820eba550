"""Champion selection (engine.core.champion): hysteresis, red-zone replacement, the book's column."""

from __future__ import annotations

import numpy as np
import pytest

from engine.core import PriceRiskBook, RiskSpec
from engine.core.champion import ChampionSelector
from engine.offline.runs import columns_from_frame

LEVELS = (0.975, 0.99)
W = 20


def selector(**kwargs: object) -> ChampionSelector:
    sel = ChampionSelector(
        ("a", "b"), LEVELS, 0.99, 0.975, **{"window": W, "margin": 0.1, "patience": 5, **kwargs}
    )
    sel.ensure(2)
    return sel


def constant(var_a: float, var_b: float, n: int) -> np.ndarray:
    """Forecasts ``[row, candidate, level]``: each candidate's VaR (ES 1.2 times it)."""
    return np.tile(np.array([[var_a, var_a], [var_b, var_b]]), (n, 1, 1))


def run(sel: ChampionSelector, returns: np.ndarray, var: np.ndarray, slot: int = 0):  # type: ignore[no-untyped-def]
    slots = np.full(returns.size, slot, np.int64)
    return sel.update(slots, returns, var, 1.2 * var, var, 1.2 * var)


def test_a_challenger_goes_live_only_after_leading_by_the_margin_for_patience_returns() -> None:
    """Returns of +-1%: VaR 0.02 (``b``) has half the pinball loss of VaR 0.04 (``a``), no
    violation either way. ``b`` becomes eligible once judged on W returns, then must lead
    for ``patience`` returns: it goes live at return W + patience - 1, not before."""
    sel = selector()
    returns = np.where(np.arange(60) % 2, 0.01, -0.01)
    out = run(sel, returns, constant(0.04, 0.02, 60))
    switched = np.flatnonzero(out.switched_from >= 0)
    assert switched.tolist() == [W + 5 - 2]  # row 0 has a return: W returns end at row W - 1
    assert out.live[: switched[0]].tolist() == [0] * switched[0]
    assert out.live[switched[0] :].tolist() == [1] * (60 - switched[0])
    assert sel.reason(0) == "lower_loss"
    # causal: the row that switches publishes b after it; the forecast before it was a's
    row = switched[0]
    assert out.var_before[row, 1] == 0.04 and out.var_after[row, 1] == 0.02
    assert out.var_before[row + 1, 1] == 0.02


def test_no_switch_when_the_challenger_does_not_beat_the_margin() -> None:
    sel = selector(margin=0.6)  # b's loss is half of a's: not 60% lower
    returns = np.where(np.arange(80) % 2, 0.01, -0.01)
    out = run(sel, returns, constant(0.04, 0.02, 80))
    assert (out.switched_from < 0).all() and (out.live == 0).all()
    assert sel.reason(0) == "initial"


def test_a_lead_that_is_interrupted_starts_over() -> None:
    """b leads for 3 returns, a then wins one, b leads again: patience counts from zero."""
    sel = selector(patience=5)
    base = np.where(np.arange(W) % 2, 0.01, -0.01)
    run(sel, base, constant(0.04, 0.02, W))  # b leads from the last of these (streak 1)
    calm = np.where(np.arange(2) % 2, 0.01, -0.01)
    out = run(sel, calm, constant(0.04, 0.02, 2))  # streak 3
    assert (out.switched_from < 0).all()
    # a tick where a's forecast is far better pushes b's mean above a's: the lead is lost
    out = run(sel, np.array([0.0]), constant(0.0, 5.0, 1))
    assert int(sel.state["streak"][0]) == 0 and (out.live == 0).all()


def test_a_live_method_in_the_red_zone_is_replaced_within_one_window() -> None:
    """``a`` is live and right for W returns, then the volatility jumps: ``a`` (VaR 1%) is
    violated by every 3% loss, ``b`` (VaR 8%) never. Hysteresis would wait; the red zone
    does not: ``a`` is replaced the return it reaches ``red_at`` violations."""
    sel = selector(patience=10_000)
    calm = np.where(np.arange(3 * W) % 2, 0.002, -0.002)
    run(sel, calm, constant(0.01, 0.08, calm.size))
    assert int(sel.state["live"][0]) == 0
    storm = np.full(W, -0.03)
    out = run(sel, storm, constant(0.01, 0.08, W))
    switched = np.flatnonzero(out.switched_from >= 0)
    assert switched.tolist() == [sel.red_at - 1]  # the red_at-th violation, within W returns
    assert sel.reason(0) == "red_zone" and sel.live_method(0) == "b"
    assert "red_zone" in sel.explain(0)


def test_a_red_candidate_is_never_chosen() -> None:
    """b has the lower pinball loss but is in the red zone: it is not eligible."""
    sel = selector(patience=1)
    returns = np.where(np.arange(3 * W) % 4 == 0, -0.02, 0.001)  # a 2% loss every 4th return
    out = run(sel, returns, constant(0.05, 0.015, returns.size))
    assert (out.live == 0).all()
    assert sel.scores(0)["b"][2] >= sel.red_at


def test_slots_are_independent() -> None:
    sel = selector()
    returns = np.where(np.arange(60) % 2, 0.01, -0.01)
    run(sel, returns, constant(0.04, 0.02, 60), slot=1)
    assert int(sel.state["live"][1]) == 1 and int(sel.state["live"][0]) == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window": 10}, "window"),
        ({"margin": -0.1}, "margin"),
        ({"patience": 0}, "patience"),
        ({"loss": "mse"}, "loss"),
    ],
)
def test_bad_parameters_are_refused(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ChampionSelector(("a", "b"), LEVELS, 0.99, 0.975, **kwargs)  # type: ignore[arg-type]


def test_fz0_scores_var_and_es_jointly() -> None:
    """Same VaR, ES too small in ``a`` for the losses beyond it: FZ0 prefers ``b``."""
    sel = selector(loss="fz0", margin=0.0, patience=1)
    returns = np.where(np.arange(3 * W) % 10 == 0, -0.05, 0.002)
    var = constant(0.03, 0.03, returns.size)
    es = var.copy()
    es[:, 0] = 0.031
    es[:, 1] = 0.05
    out = sel.update(np.zeros(returns.size, np.int64), returns, var, es, var, es)
    assert out.live[-1] == 1


# --- in the book ------------------------------------------------------------------------------


def fat_tailed(n: int, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sigma = np.where(np.arange(n) < n // 2, 0.01, 0.03)  # a volatility regime change
    return 100.0 * np.exp(np.cumsum(sigma * rng.standard_t(3, n) / np.sqrt(3.0)))


def small_spec() -> RiskSpec:
    return RiskSpec(
        vol_models=("ewma",),
        method="champion",
        window=100,
        min_obs=50,
        champion_methods=("ewma-normal", "ewma-fhs", "hs"),
        champion_window=50,
        champion_margin=0.0,
        champion_patience=3,
    )


def frame(prices: np.ndarray, symbol: str = "X"):  # type: ignore[no-untyped-def]
    import pandas as pd

    ts = pd.date_range("2000-01-01", periods=prices.size, freq="D")
    return pd.DataFrame({"timestamp": ts, "symbol": symbol, "price": prices})


def test_the_book_publishes_the_live_candidates_forecasts_and_switches() -> None:
    book = PriceRiskBook(small_spec())
    step = book.step(columns_from_frame(frame(fat_tailed(600))))
    j = book.methods.index("champion")
    assert step.live is not None and step.switches
    rows = np.arange(step.live.size)
    np.testing.assert_array_equal(step.var[:, j], step.var[rows, step.live])
    np.testing.assert_array_equal(step.es[:, j], step.es[rows, step.live])
    for switch in step.switches:  # the switch row publishes the new method after it
        assert book.methods[step.live[switch.row]] == switch.live
        assert switch.reason in ("lower_loss", "red_zone")


def test_the_book_is_batching_independent() -> None:
    prices = fat_tailed(600)
    whole = PriceRiskBook(small_spec()).step(columns_from_frame(frame(prices)))
    book = PriceRiskBook(small_spec())
    full = frame(prices)
    parts = [book.step(columns_from_frame(full.iloc[i : i + 37], i)) for i in range(0, 600, 37)]
    np.testing.assert_array_equal(np.concatenate([p.var for p in parts]), whole.var)
    offsets = np.cumsum([0] + [p.live.size for p in parts[:-1]])  # type: ignore[union-attr]
    assert [
        (int(o) + s.row, s.previous, s.live, s.reason)
        for o, p in zip(offsets, parts, strict=True)
        for s in p.switches
    ] == [(s.row, s.previous, s.live, s.reason) for s in whole.switches]


def test_without_its_candidates_there_is_no_champion_method() -> None:
    spec = RiskSpec(vol_models=("ewma",), method="ewma-normal")
    assert "champion" not in spec.methods and PriceRiskBook(spec).champion is None
    with pytest.raises(ValueError, match="champion"):
        RiskSpec(vol_models=("ewma",), method="champion")


def test_the_settings_default_candidates_are_the_specs() -> None:
    from engine.config import Settings
    from engine.core.spec import CHAMPION_METHODS

    assert Settings().risk.champion_methods == CHAMPION_METHODS == RiskSpec().champion_methods
    assert "hs" not in CHAMPION_METHODS  # an order statistic: constant for long stretches


def test_the_explanations_of_many_slots_are_each_slots_own_line() -> None:
    """One slot per reason: lower_loss, initial before a full window, initial kept, red_zone."""
    sel = selector()
    sel.ensure(4)
    alternating = np.where(np.arange(60) % 2, 0.01, -0.01)
    run(sel, alternating, constant(0.04, 0.02, 60), slot=0)  # b leads, goes live
    run(sel, alternating[:5], constant(0.04, 0.02, 5), slot=1)  # nobody judged yet
    run(sel, alternating, constant(0.02, 0.04, 60), slot=2)  # a leads, stays
    run(sel, np.where(np.arange(3 * W) % 2, 0.002, -0.002), constant(0.01, 0.08, 3 * W), slot=3)
    run(sel, np.full(W, -0.03), constant(0.01, 0.08, W), slot=3)  # a red: b replaces it
    lines = sel.explain_many(np.array([3, 0, 2, 1]))
    assert lines == [sel.explain(slot) for slot in (3, 0, 2, 1)]
    b0, a2 = sel.scores(0)["b"][0], sel.scores(2)["a"][0]
    assert (
        lines[1]
        == f"lower_loss: b led by margin 0.1 for 5 returns; mean pinball {b0:.4g} over {W} returns"
    )
    assert lines[2] == f"initial: a kept, mean pinball {a2:.4g} over {W} returns"
    assert (
        lines[3]
        == f"initial: a is the base method (no candidate judged on a full window of {W} yet)"
    )
    assert lines[0].startswith("red_zone: replaced a method in the red zone; b has 0 violations")
