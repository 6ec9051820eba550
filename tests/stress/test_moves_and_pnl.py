"""Scenario moves on today's market and the linear P&L of spot positions."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from engine.stress.moves import Market, Source, library_moves, scenario_moves
from engine.stress.pnl import contributions, exposures, holdings_of, scenario_pnl
from engine.stress.scenarios import (
    HistoricalScenario,
    HypotheticalScenario,
    Shock,
    SpotVolGrid,
    Window,
)

# Three symbols with a known covariance of daily log returns: SPX, a stock with beta 1.5
# to it, and an unrelated one.
SYMBOLS = ("SPX", "AAA", "ZZZ")
PRICES = np.array([4000.0, 50.0, 20.0])
COV = np.array(
    [
        [1.0e-4, 1.5e-4, 0.0],
        [1.5e-4, 4.0e-4, 0.0],
        [0.0, 0.0, 2.0e-4],
    ]
)


def market(**kwargs: object) -> Market:
    args = dict(symbols=SYMBOLS, prices=PRICES, cov=COV, observations=np.array([100, 100, 100]))
    args.update(kwargs)
    return Market(**args)  # type: ignore[arg-type]


def lehman(moves: dict[str, float]) -> HistoricalScenario:
    return HistoricalScenario(
        "lehman", 1, "t", "approved", Window(date(2008, 9, 12), date(2008, 10, 10), "arch:sp500"),
        moves, "SPX",
    )  # fmt: skip


def test_linear_pnl_is_quantity_times_price_times_move_to_1e_9():
    rng = np.random.default_rng(3)
    shocks = tuple(
        Shock("symbol", s, float(v))
        for s, v in zip(SYMBOLS, rng.uniform(-0.3, 0.2, 3), strict=True)
    )
    scenario = HypotheticalScenario("adhoc", 1, "t", "approved", shocks)
    holdings = {"a": {"SPX": 3.0, "AAA": -250.0, "ZZZ": 1000.0}, "b": {"AAA": 7.5}}
    x = exposures(holdings, market())
    pnl = scenario_pnl(x.matrix, scenario_moves(scenario, market()))
    by_hand = {
        name: sum(q * PRICES[SYMBOLS.index(s)] * shocks[SYMBOLS.index(s)].value for s, q in held.items())
        for name, held in holdings.items()
    }  # fmt: skip
    assert x.portfolios == ("a", "b")
    assert pnl[:, 0] == pytest.approx([by_hand["a"], by_hand["b"]], abs=1e-9)


def test_an_absolute_shock_is_a_change_in_price_units():
    scenario = HypotheticalScenario(
        "abs", 1, "t", "approved", (Shock("symbol", "AAA", -5.0, "absolute"),)
    )
    moves = scenario_moves(scenario, market())
    assert moves.spot[0, 1] == pytest.approx(-0.1)
    assert scenario_pnl(exposures({"p": {"AAA": 10.0}}, market()).matrix, moves)[0, 0] == (
        pytest.approx(-50.0, abs=1e-12)
    )


def test_historical_replay_moves_covered_symbols_and_proxies_the_rest_by_beta():
    moves = scenario_moves(lehman({"SPX": -0.2}), market())
    spx, aaa, zzz = moves.spot[0]
    assert spx == -0.2 and moves.source[0, 0] == Source.DIRECT
    # beta of AAA on SPX is 1.5 in log space; ZZZ is uncorrelated, beta 0
    assert aaa == pytest.approx(np.expm1(1.5 * np.log1p(-0.2)), rel=1e-12)
    assert zzz == 0.0
    assert list(moves.source[0, 1:]) == [Source.BETA, Source.BETA]


def test_without_common_history_the_proxy_move_is_taken_as_is_and_flagged():
    thin = market(observations=np.array([100, 5, 100]))  # AAA: 5 grid returns < min_obs
    moves = scenario_moves(lehman({"SPX": -0.2}), thin)
    assert moves.spot[0, 1] == -0.2 and moves.source[0, 1] == Source.UNIT_BETA
    # and when the proxy itself is not in the price file, every uncovered symbol is unit-beta
    no_index = Market(SYMBOLS[1:], PRICES[1:], COV[1:, 1:], np.array([100, 100]))
    moves = scenario_moves(lehman({"SPX": -0.2}), no_index)
    assert list(moves.spot[0]) == [-0.2, -0.2]
    assert list(moves.source[0]) == [Source.UNIT_BETA, Source.UNIT_BETA]


def test_correlation_propagation_is_the_gaussian_conditional_mean():
    scenario = HypotheticalScenario(
        "c", 1, "t", "approved", (Shock("factor", "SPX", -0.1),), propagation="correlation"
    )
    moves = scenario_moves(scenario, market())
    log_spx = np.log1p(-0.1)
    expected_aaa = np.expm1(COV[1, 0] / COV[0, 0] * log_spx)
    assert moves.spot[0, 1] == pytest.approx(expected_aaa, rel=1e-12)
    assert moves.source[0, 1] == Source.CORRELATION
    # no propagation: unshocked symbols stay where they are
    still = HypotheticalScenario("n", 1, "t", "approved", (Shock("factor", "SPX", -0.1),))
    assert list(scenario_moves(still, market()).spot[0]) == [-0.1, 0.0, 0.0]


def test_asset_class_shocks_reach_every_symbol_of_the_class():
    classed = market(asset_classes={"AAA": "equity", "ZZZ": "equity", "SPX": "index"})
    scenario = HypotheticalScenario(
        "eq", 1, "t", "approved", (Shock("asset_class", "equity", -0.1),)
    )
    assert list(scenario_moves(scenario, classed).spot[0]) == [0.0, -0.1, -0.1]


def test_a_grid_gives_one_column_per_cell_and_spot_books_do_not_move_with_vol():
    grid = SpotVolGrid("g", 1, "t", "approved", (-0.1, 0.1), (0.0, 0.2))
    moves = library_moves([grid], market())
    assert moves.names == grid.cells() and moves.scenario == ("g",) * 4
    x = exposures({"p": {"SPX": 1.0, "AAA": 2.0}}, market())
    pnl = scenario_pnl(x.matrix, moves)[0]
    value = 4000.0 + 100.0
    assert list(pnl) == pytest.approx([-0.1 * value, -0.1 * value, 0.1 * value, 0.1 * value])
    vega = np.array([[0.0, 30.0, 0.0]])  # an option book: 30 per 1.00 of vol on AAA
    with_vega = scenario_pnl(x.matrix, moves, vega)[0]
    assert with_vega[1] - with_vega[0] == pytest.approx(30.0 * 0.2)


def test_contributions_by_position_sum_to_the_portfolio_pnl():
    moves = scenario_moves(lehman({"SPX": -0.2}), market())
    x = exposures({"p": {"SPX": 2.0, "AAA": -30.0, "ZZZ": 5.0}}, market())
    parts = contributions(x.matrix[0], moves)
    assert parts.sum(axis=1) == pytest.approx(scenario_pnl(x.matrix, moves)[0], abs=1e-9)


def test_later_positions_replace_earlier_ones_and_zero_closes():
    rows = [("p", "A", 1.0), ("p", "B", 2.0), ("p", "A", 5.0), ("p", "B", 0.0)]
    assert holdings_of(rows) == {"p": {"A": 5.0}}
