"""``riskstream anomaly evaluate`` (tiny configuration): the report, its tables and plots."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson

from models.anomaly.evaluate_transactions import card_precision_at_k
from producers.anomalies import KINDS


def test_price_evaluation_report(tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "anomaly",
            "evaluate",
            "--section",
            "prices",
            "--symbols",
            "2",
            "--ticks",
            "3000",
            "--detectors",
            "robust",
            "--quiet",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    text = (out / "report.md").read_text()
    assert "false alarms /10k calm" in text and "Threshold sweep" in text
    doc = orjson.loads((out / "results.json").read_bytes())["prices"]
    assert doc["threshold"] in (0.9999, 0.9998, 0.9997, 0.9995, 0.999)
    sections = {r["section"] for r in doc["runs"]}
    assert sections == {"stream", "series"}
    for run in doc["runs"]:
        assert {k["kind"] for k in run["kinds"]} <= set(KINDS)
        assert all(0.0 <= k["recall"] <= 1.0 for k in run["kinds"])
        assert run["false_alarms_per_10k_calm"] >= 0.0
    for plot in ("prices_recall.png", "prices_example.png"):
        assert (out / plot).stat().st_size > 1000


def test_card_precision_removes_cards_found_on_earlier_days() -> None:
    day = 86_400_000
    ts = np.array([0, 0, 0, day, day, day])
    customers = np.array(["a", "b", "c", "a", "b", "c"])
    labels = np.array([1, 0, 0, 1, 1, 0])
    scores = np.array([0.9, 0.5, 0.1, 0.9, 0.8, 0.1])
    # day 0: top-2 {a, b}, one fraud; day 1: a is already known, top-2 {b, c}, one fraud
    assert card_precision_at_k(ts, customers, labels, scores, k=2) == 0.5
