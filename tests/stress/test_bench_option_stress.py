"""``riskstream bench option-stress`` (a smoke test; timings are not asserted)."""

from __future__ import annotations

from engine.bench.option_stress import run
from engine.stress.library import load_library
from engine.stress.reverse import LOSS_TOLERANCE


def test_the_option_stress_benchmark_covers_the_library_and_its_reverse_stress_reaches_the_loss():
    result = run(options=40, underlyings=8, repeat=1)
    assert result.cells == sum(len(s.cells()) for s in load_library().runnable())
    assert min(result.local_ms, result.base_ms, result.reverse_ms) >= 0.0
    assert result.reverse_residual <= LOSS_TOLERANCE
    assert "reverse stress" in result.markdown()
