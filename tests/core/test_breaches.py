"""VaR violations: a loss strictly greater than the forecast made before the return."""

from __future__ import annotations

import numpy as np

from engine.core.backtest import BreachCounters


def test_violation_is_loss_strictly_above_prior_var_and_counts_only_forecasts() -> None:
    counters = BreachCounters(methods=("m",), levels=(0.95, 0.99))
    counters.ensure(2)
    slots = np.array([0, 0, 0, 1, 1])
    returns = np.array([-0.02, -0.01, 0.05, -0.5, np.nan])
    var = np.stack([[0.01, 0.01, 0.01, np.nan, 0.01], [0.02, 0.02, 0.02, 0.3, 0.3]], axis=1)[
        :, None, :
    ]
    hits = counters.update(slots, returns, var)
    assert hits[:, 0, 0].tolist() == [
        True,
        False,
        False,
        False,
        False,
    ]  # equal loss is no violation
    assert hits[:, 0, 1].tolist() == [False, False, False, True, False]
    assert counters.counts(0) == {("m", 0.95): (3, 1), ("m", 0.99): (3, 0)}
    assert counters.counts(1) == {("m", 0.95): (0, 0), ("m", 0.99): (1, 1)}
