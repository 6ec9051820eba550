"""The credit stage in the transactions pipeline: batched ONNX scoring, PD and EL state, alerts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from engine.alerts import alert_id
from engine.boundary.schemas import Transaction
from engine.config import Settings
from engine.credit.model import CreditModel
from engine.credit.stage import CreditStage, credit_stages
from engine.pipeline import TransactionPipeline
from producers.credit_reviews import taiwan_credit

NOW = 1_800_000_000_000


@pytest.fixture(scope="module")
def reviews() -> list[Transaction]:
    return list(taiwan_credit(start_ms=NOW - 10_000_000, interval_ms=100))[:3000]


def pipeline(model: CreditModel, **options: Any) -> TransactionPipeline:
    return TransactionPipeline(stages=[CreditStage(model, **options)])


def records(txs: list[Transaction], start: int = 0) -> list[Any]:
    return [t.to_record(start + i) for i, t in enumerate(txs)]


def review(customer: str, features: dict[str, Any], n: int, **extra: Any) -> Transaction:
    return Transaction(
        f"r{customer}-{n}",
        NOW - 100_000 + n,
        customer,
        10.0,
        type="credit_review",
        features={**features, **extra},
    )


def test_one_onnx_call_per_batch_and_pd_el_per_customer(
    model: CreditModel, reviews: list[Transaction]
) -> None:
    p = pipeline(model, lgd=0.6)
    out = p.process(records(reviews), now_ms=NOW)
    stage = p.stages[0]
    assert stage.calls == 1
    X = model.card.encode_rows([t.features for t in reviews])
    pd_expected = model.predict(X)
    latest = {s.key: s for s in out.latest}
    assert len(latest) == 3000
    for i in (0, 17, 2999):
        t = reviews[i]
        fields = latest[f"riskstream:credit:{t.customer_id}"].fields
        assert float(fields["pd"]) == pytest.approx(pd_expected[i], abs=1e-15)
        assert float(fields["exposure"]) == t.features["LIMIT_BAL"]
        assert float(fields["expected_loss"]) == pytest.approx(
            pd_expected[i] * 0.6 * t.features["LIMIT_BAL"]
        )
        assert fields["reviews"] == "1" and fields["model_version"] == model.version


def test_alerts_on_crossing_with_deterministic_ids(
    model: CreditModel, reviews: list[Transaction]
) -> None:
    out = pipeline(model).process(records(reviews), now_ms=NOW)
    X = model.card.encode_rows([t.features for t in reviews])
    pd_all = model.predict(X)
    el_all = pd_all * 0.45 * np.array([t.features["LIMIT_BAL"] for t in reviews])
    pd_alerts = {a.subject: a for a in out.alerts if a.kind == "credit_pd"}
    el_alerts = {a.subject: a for a in out.alerts if a.kind == "credit_el"}
    assert set(pd_alerts) == {
        t.customer_id for t, p in zip(reviews, pd_all, strict=True) if p > 0.5
    }
    assert set(el_alerts) == {
        t.customer_id for t, e in zip(reviews, el_all, strict=True) if e > 50_000
    }
    a = next(iter(pd_alerts.values()))
    tx = a.details["tx_id"]
    assert a.alert_id == alert_id("credit_pd", a.subject, f"{model.version}@0.5", tx)
    assert a.threshold == 0.5 and a.value > 0.5 and a.model == "credit_lightgbm"
    assert a.explain_input is not None and a.explain_input.vector.shape == (23,)
    both = [x for x in out.alerts if x.subject in pd_alerts and x.subject in el_alerts]
    assert both and all(x.severity == "critical" for x in both)
    again = pipeline(model).process(records(reviews), now_ms=NOW)
    assert [x.alert_id for x in again.alerts] == [x.alert_id for x in out.alerts]


def test_a_customer_alerts_again_only_after_coming_back_below(
    model: CreditModel, reviews: list[Transaction]
) -> None:
    X = model.card.encode_rows([t.features for t in reviews])
    pd_all = model.predict(X)
    high = reviews[int(np.argmax(pd_all))].features
    low = reviews[int(np.argmin(pd_all))].features
    sequence = [review("c1", f, n) for n, f in enumerate([high, high, low, high, high])]
    out = pipeline(model).process(records(sequence), now_ms=NOW)
    assert [a.details["tx_id"] for a in out.alerts if a.kind == "credit_pd"] == ["rc1-0", "rc1-3"]
    assert out.latest[-1].seq == 5


def test_replays_change_nothing_and_state_survives_a_restart(
    model: CreditModel, reviews: list[Transaction]
) -> None:
    first = pipeline(model)
    out = first.process(records(reviews[:100]), now_ms=NOW)
    rows = {key: row for key, _, row in out.rows}
    restarted = pipeline(model)
    replay = restarted.process(records(reviews[:100]), now_ms=NOW, load_row=rows.get)
    assert replay.alerts == [] and replay.latest == []
    X = model.card.encode_rows([t.features for t in reviews[:1]])
    again = Transaction(
        "new-1",
        NOW - 10,
        reviews[0].customer_id,
        1.0,
        type="credit_review",
        features=reviews[0].features,
    )
    later = restarted.process([again.to_record(100)], now_ms=NOW, load_row=rows.get)
    assert later.latest[0].seq == 2  # the second review of the customer
    assert float(later.latest[0].fields["pd"]) == pytest.approx(model.predict(X)[0])
    assert later.alerts == []  # still above (or below) the limits: no new crossing


def test_which_transactions_are_scored(model: CreditModel, reviews: list[Transaction]) -> None:
    features = reviews[0].features
    txs = [
        Transaction("a", NOW - 5, "c1", 10.0),  # a card payment: not scored
        Transaction("b", NOW - 4, "c2", 10.0, type="credit_review", features={"LIMIT_BAL": 50_000}),
        Transaction(
            "c", NOW - 3, "c3", 10.0, type="purchase", features=features
        ),  # carries all features
        Transaction("d", NOW - 2, "c4", 10.0, type="purchase", features={"LIMIT_BAL": 1}),
    ]
    out = pipeline(model).process(records(txs), now_ms=NOW)
    scored = {s.fields["customer_id"] for s in out.latest}
    assert scored == {"c2", "c3"}
    c2 = next(s for s in out.latest if s.fields["customer_id"] == "c2").fields
    assert 0.0 < float(c2["pd"]) < 1.0  # 22 of 23 features missing still scores
    assert float(c2["exposure"]) == 10.0  # no exposure field: the amount


def test_bad_feature_values_are_missing_not_fatal(model: CreditModel) -> None:
    txs = [
        Transaction(
            "x",
            NOW - 1,
            "c9",
            1.0,
            type="credit_review",
            features={"LIMIT_BAL": "lots", "AGE": None, "PAY_0": True},
        )
    ]
    out = pipeline(model).process(records(txs), now_ms=NOW)
    assert len(out.latest) == 1 and 0 < float(out.latest[0].fields["pd"]) < 1


def test_the_pipeline_from_settings_scores_credit(tmp_path: Any) -> None:
    only_credit = Settings(anomaly_enabled=False)
    assert [s.name for s in TransactionPipeline.from_settings(only_credit).stages] == ["credit"]
    none = Settings(credit_enabled=False, anomaly_enabled=False)
    assert TransactionPipeline.from_settings(none).stages == ()
    from engine.errors import InputError

    with pytest.raises(InputError, match="not a credit model directory"):
        credit_stages(Settings(credit_model_dir=tmp_path))


def test_limits_are_validated(model: CreditModel) -> None:
    with pytest.raises(ValueError, match="lgd"):
        CreditStage(model, lgd=0)
    with pytest.raises(ValueError, match="pd_limit"):
        CreditStage(model, pd_limit=1.0)


def test_feature_encoding_fast_paths_equal_the_per_value_rule(model: CreditModel) -> None:
    """Rows with every feature, some absent, nulls, text: one encoding whatever the path."""
    from engine.credit.card import _number

    names = model.card.feature_names
    full = {n: float(i) for i, n in enumerate(names)}
    cases = [
        [full, {**full, "AGE": None}],  # every feature present (itemgetter)
        [full, {n: v for n, v in full.items() if n != "PAY_0"}],  # one absent (dict.get)
        [full, {**full, "LIMIT_BAL": "lots"}],  # text (per value)
    ]
    for rows in cases:
        expected = np.array([[_number(row.get(n)) for n in names] for row in rows])
        np.testing.assert_array_equal(model.card.encode_rows(rows), expected)
