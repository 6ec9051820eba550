"""The rounding probe: fit verdicts must not depend on the data's last digits (issue 21)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.bench.breadth import rounding
from engine.bench.breadth.rounding import probe
from producers.sources import arch_daily


def test_no_gjr_refit_of_the_sp500_changes_its_verdict_on_float32_rounded_returns() -> None:
    returns = np.diff(np.log(arch_daily("sp500")["price"].to_numpy()))[:1500]
    flips = probe("SP500", returns, "gjr")
    assert flips.refits == 63  # at 250, 270, ..., 1490
    assert flips.flips == 0 and flips.first_flip == ""


def test_a_verdict_that_follows_the_rounding_is_counted_and_located(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def knife_edge(returns: np.ndarray, *_: object) -> list[str]:
        rounded = bool(np.array_equal(returns, returns.astype(np.float32)))
        return ["", "persistence" if rounded else "", "", "below_ewma" if rounded else ""]

    monkeypatch.setattr(rounding, "verdicts", knife_edge)
    flips = probe("X", np.linspace(-0.01, 0.01, 400) + 1e-12, "gjr", first=250, every=20)
    assert (flips.refits, flips.flips, flips.accept_flips, flips.rejected) == (4, 2, 2, 0)
    assert flips.first_flip == "270: accepted -> persistence"
