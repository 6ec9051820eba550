"""``riskstream bench stress`` runs the whole library (a smoke test; timings are not asserted)."""

from __future__ import annotations

import numpy as np

from engine.bench.stress import run, synthetic_market
from engine.stress.library import load_library


def test_the_benchmark_covers_every_approved_cell_of_the_library():
    result = run(portfolios=20, positions=5, symbols=50, repeat=2)
    assert result.cells == sum(len(s.cells()) for s in load_library().runnable())
    assert result.total_ms >= result.pnl_ms >= 0.0
    assert "full recomputation" in result.markdown()


def test_the_synthetic_market_is_a_valid_one_factor_covariance():
    market = synthetic_market(30)
    assert market.symbols[:3] == ("SPX", "NASDAQ", "DJI")
    assert np.all(np.linalg.eigvalsh(market.cov) > 0.0) and market.history.all()
