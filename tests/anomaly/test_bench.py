"""``riskstream bench anomaly``'s price part, tiny: the stage is timed on warm ticks only."""

from __future__ import annotations

from engine.bench.anomaly import AnomalyBenchResult, bench_prices
from engine.config import Settings


def test_price_stage_cost_is_measured_on_warm_ticks() -> None:
    settings = Settings(vol_models=("ewma",), var_method="ewma-normal")
    wall, cpu, events, alerts = bench_prices(settings, symbols=3, ticks=2500, batch=700, warm=1000)
    assert 3 * 1000 <= events <= 3 * 1500  # ticks after the warm-up (stale gaps remove some)
    assert wall > 0 and cpu > 0 and alerts >= 0
    result = AnomalyBenchResult("robust", 3, events, wall, cpu, alerts, "gbm", 0, 0, 0, 0, 700, 0)
    assert "us/event CPU" in result.markdown()
