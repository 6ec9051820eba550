"""Anomaly stages in the pipelines: features in the stream, alerts with deterministic ids.

The price stage reads the book's step (returns and the volatility forecast made before
each), the transaction stage keeps customer windows and delayed terminal risk; both are
deterministic, never learn from replays, and resume exactly from persisted rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from engine.anomaly.detectors.robust import Channel, RobustDetector
from engine.anomaly.factory import anomaly_stages
from engine.anomaly.features.prices import PRICE_FEATURES, PriceFeatures
from engine.anomaly.features.terminals import TERMINAL_FEATURES
from engine.anomaly.policy import AlertPolicy
from engine.anomaly.stages import TRANSACTION_FEATURES, TransactionAnomalyStage
from engine.boundary.schemas import Transaction
from engine.config import Settings
from engine.pipeline import PricePipeline, TransactionPipeline
from producers.anomalies import labelled_prices

NOW = 1_700_000_000_000
DAY = 86_400_000
SETTINGS = {"warmup": 20, "vol_models": ("ewma",), "var_method": "ewma-normal"}


@pytest.fixture(scope="module")
def stream() -> Any:
    return labelled_prices(3, 2500, kinds=("jump", "frozen", "stale"), spacing=300, seed=4)


def price_records(stream: Any) -> list[Any]:
    return [t.to_record(i) for i, t in enumerate(stream.ticks())]


def anomaly_alerts(pipeline: PricePipeline, records: list[Any], batch: int) -> list[Any]:
    out = []
    for i in range(0, len(records), batch):
        result = pipeline.process(records[i : i + batch], now_ms=NOW)
        out += [a for a in result.alerts if a.kind == "anomaly"]
    return out


def test_price_stage_flags_injected_anomalies_with_ids_independent_of_batching(
    stream: Any,
) -> None:
    records = price_records(stream)
    big = anomaly_alerts(PricePipeline.from_settings(Settings(**SETTINGS)), records, 1000)
    small = anomaly_alerts(PricePipeline.from_settings(Settings(**SETTINGS)), records, 37)
    assert [a.alert_id for a in big] == [a.alert_id for a in small]
    flagged = {(a.subject, int(a.details["event"].rsplit("-", 1)[1])) for a in big}
    for anomaly in stream.anomalies:
        window = range(anomaly.start, anomaly.end + 4)
        if anomaly.kind != "jump" or anomaly.magnitude > 20:  # smaller jumps: see the evaluation
            assert any((anomaly.symbol, t) in flagged for t in window), anomaly
    alert = big[0]
    assert alert.model == "anomaly_robust" and alert.value >= 0.9999
    assert alert.attributions and alert.details["driver"] == alert.attributions[0].feature
    assert set(alert.details["features"]) >= {"z", "move_2", "move_3", "gap", "frozen_surprisal"}


def test_price_moves_are_standardised_by_the_forecast_before_their_first_return() -> None:
    features = PriceFeatures()
    features.ensure(1)
    returns = np.array([np.nan, 0.01, 0.02, -0.03, 0.04])
    sigma = np.array([np.nan, 0.01, 0.02, 0.04, 0.08])  # the forecast reacting to each move
    out = features.update(
        np.zeros(5, np.int64), np.arange(5) * 1000, returns, sigma, np.full(5, np.nan)
    )
    move_2 = out[:, PRICE_FEATURES.index("move_2")]
    move_3 = out[:, PRICE_FEATURES.index("move_3")]
    assert np.isnan(move_2[:2]).all() and np.isnan(move_3[:3]).all()
    np.testing.assert_allclose(
        move_2[2:], np.array([0.03 / 0.01, -0.01 / 0.02, 0.01 / 0.04]) / np.sqrt(2)
    )
    np.testing.assert_allclose(
        move_3[3:], np.array([0.0 / 0.01, 0.03 / 0.02]) / np.sqrt(3), atol=1e-12
    )


def test_price_stage_resumes_from_persisted_rows_and_ignores_replays(stream: Any) -> None:
    records = price_records(stream)
    half = len(records) // 2
    whole = PricePipeline.from_settings(Settings(**SETTINGS))
    expected = anomaly_alerts(whole, records, 500)

    first = PricePipeline.from_settings(Settings(**SETTINGS))
    rows: dict[str, bytes] = {}
    before = []
    for i in range(0, half, 500):
        out = first.process(records[i : min(i + 500, half)], now_ms=NOW)
        before += [a for a in out.alerts if a.kind == "anomaly"]
        rows.update({key: row for key, _, row in out.rows})
    restarted = PricePipeline.from_settings(Settings(**SETTINGS))
    replay = restarted.process(records[half - 200 : half], now_ms=NOW, load_row=rows.get)
    assert [a for a in replay.alerts if a.kind == "anomaly"] == []
    after = []
    for i in range(half, len(records), 500):
        out = restarted.process(records[i : i + 500], now_ms=NOW, load_row=rows.get)
        after += [a for a in out.alerts if a.kind == "anomaly"]
    assert [a.alert_id for a in before + after] == [a.alert_id for a in expected]


def test_settings_turn_the_stages_off_and_choose_the_detector() -> None:
    assert anomaly_stages(Settings(anomaly_enabled=False), "prices") == []
    (stage,) = anomaly_stages(Settings(anomaly_price_threshold=0.999), "prices")
    assert stage.policy.threshold == 0.999 and stage.detector.name == "robust"
    with pytest.raises(ValueError, match="unknown detector"):
        anomaly_stages(Settings(anomaly_price_detector="nope"), "prices")


def tx(n: int, customer: str, day: float, amount: float, terminal: str, fraud: int) -> Transaction:
    return Transaction(
        f"t{n}",
        int((NOW // DAY - 60) * DAY + day * DAY),
        customer,
        amount,
        terminal_id=terminal,
        features={"tx_fraud": fraud},
    )


def test_transaction_features_customer_windows_and_delayed_terminal_risk() -> None:
    detector = RobustDetector(
        TRANSACTION_FEATURES, (Channel("amount_ratio_30d", "upper"),), scope="global"
    )
    stage = TransactionAnomalyStage(detector, AlertPolicy(0.99, rearm=0), keep=True)
    pipeline = TransactionPipeline(stages=[stage])
    txs = [tx(i, "C1", i * 0.5, 20.0 + i % 3, "T1", 0) for i in range(40)]
    txs.append(tx(40, "C2", 1.0, 30.0, "T9", 1))  # a fraud on terminal T9 on day 1
    txs += [tx(41, "C3", 8.2, 25.0, "T9", 0), tx(42, "C3", 9.1, 25.0, "T9", 0)]
    txs.append(tx(43, "C1", 20.1, 900.0, "T1", 0))  # far above C1's usual amounts
    review = Transaction("r1", txs[-1].ts + 1, "C1", 5.0, type="credit_review")
    txs.append(review)  # a credit review is not a payment: not scored here
    pipeline.process([t.to_record(i) for i, t in enumerate(txs)], now_ms=NOW)
    got = stage.captured.arrays()
    X = got["features"]
    risk = X[:, TRANSACTION_FEATURES.index("term_risk_7d")]
    by_id = dict(zip(got["tx_ids"], range(len(X)), strict=True))
    # T9's day-1 fraud is known from day 1 + 7 + 1 = day 9 only (7-day delay, whole days)
    assert risk[by_id["t41"]] == 0.0 and risk[by_id["t42"]] == 1.0
    ratio = X[:, TRANSACTION_FEATURES.index("amount_ratio_30d")]
    assert ratio[by_id["t43"]] > 3.0
    assert X[by_id["t43"], TRANSACTION_FEATURES.index("cust_count_30d")] == 41
    assert len(TERMINAL_FEATURES) == 6 and np.isfinite(X).all()
    assert "r1" not in by_id and len(X) == len(txs) - 1


def test_transaction_stage_from_settings_off_without_models(tmp_path: Any) -> None:
    with pytest.raises(Exception, match="no model card"):
        anomaly_stages(Settings(anomaly_model_dir=tmp_path), "transactions")
    assert anomaly_stages(Settings(anomaly_enabled=False), "transactions") == []
