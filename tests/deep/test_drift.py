"""Drift: the Page-Hinkley component equals river's detector; the stage alerts and marks refits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from river.drift import PageHinkley

from engine.core import PriceRiskBook, RiskSpec
from engine.core.drift import PageHinkleyDrift
from engine.deep.drift import DriftStage
from engine.offline.runs import columns_from_frame
from engine.pipeline import load_deep
from engine.stages import StageInput


@pytest.mark.parametrize("mode", ["up", "down", "both"])
def test_page_hinkley_detects_exactly_where_river_does(mode: str) -> None:
    rng = np.random.default_rng(3)
    n, keys = 3000, 3
    slots = rng.integers(0, keys, n)
    shift = np.where(np.arange(n) > 1500, 1.5, 0.0) * (1 if mode != "down" else -1)
    x = rng.exponential(1.0, n) + shift
    x[rng.random(n) < 0.02] = np.nan
    params = {"min_instances": 20, "delta": 0.01, "threshold": 15.0, "mode": mode}
    ours = PageHinkleyDrift("drift_test", **params)  # type: ignore[arg-type]
    ours.ensure(keys)
    got = np.concatenate(
        [ours.update(slots[i : i + 97], x[i : i + 97])[0] for i in range(0, n, 97)]
    )
    theirs = [PageHinkley(**params) for _ in range(keys)]
    expected = np.zeros(n, bool)
    for i in range(n):
        if np.isnan(x[i]):
            continue
        detector = theirs[slots[i]]
        detector.update(float(x[i]))
        expected[i] = detector.drift_detected
    assert expected.sum() >= 3
    np.testing.assert_array_equal(got, expected)


def test_page_hinkley_state_survives_a_restart() -> None:
    rng = np.random.default_rng(4)
    x = rng.exponential(1.0, 400) + np.where(np.arange(400) > 200, 2.0, 0.0)
    slots = np.zeros(400, np.int64)
    a, b = PageHinkleyDrift("d", threshold=5.0), PageHinkleyDrift("d", threshold=5.0)
    a.ensure(1)
    b.ensure(1)
    a.update(slots[:150], x[:150])
    b.restore(0, a.export(0))
    np.testing.assert_array_equal(
        a.update(slots[150:], x[150:])[0], b.update(slots[150:], x[150:])[0]
    )


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="threshold"):
        PageHinkleyDrift("d", threshold=0.0)
    with pytest.raises(ValueError, match="mode"):
        PageHinkleyDrift("d", mode="sideways")  # type: ignore[arg-type]


def test_drift_stage_alerts_and_marks_the_model_for_refit(tiny) -> None:  # type: ignore[no-untyped-def]
    from producers.sources import sp500_realized

    _, out = tiny
    frame = sp500_realized()
    frame = frame[(frame["timestamp"] >= "2006-01-01") & (frame["timestamp"] < "2009-07-01")]
    frame = frame.reset_index(drop=True)
    stage = DriftStage(("lstm", "ewma"), min_instances=30, delta=0.05, threshold=10.0)
    spec = RiskSpec(vol_models=("ewma", "lstm"), method="ewma-normal", deep_model_dir=str(out))
    book = PriceRiskBook(spec, extra=stage.components(), predictors=load_deep)
    alerts, latest = [], []
    for start in range(0, len(frame), 250):
        cols = columns_from_frame(frame.iloc[start : start + 250], start)
        step = book.step(cols)
        result = stage.run(StageInput(cols, step, book.index.keys, 0))
        alerts += result.alerts
        latest += result.latest
    assert alerts, "the 2008 crisis must look like drift to a model trained before it"
    assert {a.kind for a in alerts} == {"drift"}
    assert {a.model for a in alerts} <= {"lstm", "ewma"}
    assert all(a.value > a.threshold for a in alerts)
    assert len({a.alert_id for a in alerts}) == len(alerts)
    when = [pd.Timestamp(a.ts, unit="ms") for a in alerts]
    assert any(pd.Timestamp("2008-09-01") <= t <= pd.Timestamp("2009-03-31") for t in when)
    slot = book.index.slot_of("SPX") if hasattr(book.index, "slot_of") else 0
    due = [int(d.state["refit_due"][slot]) for d in stage.detectors.values()]
    assert max(due) == 1
    assert latest[-1].key == "riskstream:model:SPX"
    assert int(latest[-1].fields["lstm_drifts"]) + int(latest[-1].fields["ewma_drifts"]) == len(
        alerts
    )


def test_the_price_pipeline_runs_the_drift_stage_the_settings_ask_for(tiny) -> None:  # type: ignore[no-untyped-def]
    from engine.config import Settings
    from engine.errors import ConfigError
    from engine.pipeline import PricePipeline
    from producers.sources import sp500_realized

    _, out = tiny
    settings = Settings(
        vol_models=("ewma", "lstm"),
        var_method="ewma-normal",
        deep_model_dir=out,
        drift_models=("lstm",),
        drift_threshold=10.0,
    )
    pipeline = PricePipeline.from_settings(settings)
    frame = sp500_realized()
    frame = frame[(frame["timestamp"] >= "2007-06-01") & (frame["timestamp"] < "2009-01-01")]
    frame = frame.reset_index(drop=True)
    alerts = []
    for start in range(0, len(frame), 200):
        cols = columns_from_frame(frame.iloc[start : start + 200], start)
        outcome = pipeline.process_columns(cols, [], received=len(cols.ts), now_ms=0)
        alerts += [a for a in outcome.alerts if a.kind == "drift"]
    assert alerts and all(a.model == "lstm" for a in alerts)
    assert alerts[0].model_version.startswith("lstm-")
    with pytest.raises(ConfigError, match="not among"):
        PricePipeline.from_settings(
            Settings(vol_models=("ewma",), var_method="ewma-normal", drift_models=("lstm",))
        )
