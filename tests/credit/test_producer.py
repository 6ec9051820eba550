"""Taiwan rows replayed as credit_review transactions, and ``produce transactions --source taiwan-credit``."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import orjson
import pytest

from engine.errors import InputError
from producers.credit_reviews import taiwan_credit, taiwan_rows

from .helpers import run_cli


def test_rows_become_credit_reviews_with_the_model_features() -> None:
    first, second = islice(taiwan_credit(start_ms=1_000, interval_ms=500), 2)
    assert first.tx_id == "cr-1-0" and first.customer_id == "tw1" and first.type == "credit_review"
    assert first.ts == 1_000 and second.ts == 1_500
    assert first.amount == 3913.0  # BILL_AMT1
    assert first.features["LIMIT_BAL"] == 20000 and first.features["exposure"] == 20000
    assert first.features["PAY_0"] == 2 and len(first.features) == 24
    assert "default.payment.next.month" not in first.features and "ID" not in first.features
    assert taiwan_rows() == 30_000


def test_passes_repeat_customers_with_new_review_ids_and_labels() -> None:
    reviews = list(taiwan_credit(start_ms=0, passes=2, labels=True))
    assert len(reviews) == 60_000
    assert reviews[30_000].customer_id == "tw1" and reviews[30_000].tx_id == "cr-1-1"
    assert reviews[30_000].features["LIMIT_BAL"] == reviews[0].features["LIMIT_BAL"]
    assert reviews[0].features["default_next_month"] == 1
    assert reviews[-1].ts == 59_999_000


def test_bad_file(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("ID,LIMIT_BAL\n1,2\n")
    with pytest.raises(InputError, match="missing column"):
        list(taiwan_credit(tmp_path / "x.csv"))


def test_produce_dry_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "produce",
        "transactions",
        "--source",
        "taiwan-credit",
        "--dry-run",
        "--limit",
        "3",
        "--start",
        "2026-01-01T00:00:00Z",
    )
    assert code == 0, err
    lines = [orjson.loads(line) for line in out.splitlines()]
    assert [m["key"] for m in lines] == ["tw1", "tw2", "tw3"]
    value = orjson.loads(lines[0]["value"])
    assert value["type"] == "credit_review" and value["ts"] == "2026-01-01T00:00:00Z"
