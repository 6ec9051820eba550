"""``riskstream anomaly score``, exactly as DESIGN.md's "Offline CLI" contract specifies it.

Input has columns ``timestamp,value``; output is the same rows with an added
``anomaly_score`` in [0, 1]; row i's score uses rows up to i only. Bad input: one line on
stderr, exit status 2.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SCRIPT = [sys.executable, "-m", "engine.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SCRIPT, "anomaly", "score", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A latency-like series (log-normal around 20 ms) with a spike and an extra column."""
    rng = np.random.default_rng(3)
    values = np.round(rng.lognormal(np.log(20.0), 0.2, 1500), 3)
    values[1200] = 400.0
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range("2024-03-01", periods=1500, freq="s").strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "value": values.astype(str),
            "host": "web-1",
        }
    )
    frame.loc[100, "value"] = ""  # a missing value
    path = tmp_path_factory.mktemp("series") / "latency.csv"
    frame.to_csv(path, index=False)
    return path


def test_same_rows_plus_a_causal_score_in_unit_interval(series: Path, tmp_path: Path) -> None:
    out = tmp_path / "scored.csv"
    result = run("--input", str(series), "--out", str(out))
    assert result.returncode == 0, result.stderr
    source = pd.read_csv(series, dtype=str, keep_default_na=False)
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(got.columns) == [*source.columns, "anomaly_score"]
    pd.testing.assert_frame_equal(got[source.columns], source)
    score = pd.to_numeric(got["anomaly_score"].replace("", np.nan))
    assert np.isnan(score[100]) and score.drop(index=100).notna().all()
    assert ((score.dropna() >= 0) & (score.dropna() <= 1)).all()
    assert score.idxmax() == 1200 and score[1200] > 0.9999
    assert (score.drop(index=1200) > 0.9999).sum() <= 2

    # causal: the first 1,000 rows alone score exactly as they did in the whole file
    head = tmp_path / "head.csv"
    source.iloc[:1000].to_csv(head, index=False)
    assert run("--input", str(head), "--out", str(tmp_path / "h.csv"), "--quiet").returncode == 0
    again = pd.read_csv(tmp_path / "h.csv", dtype=str, keep_default_na=False)
    assert again["anomaly_score"].tolist() == got["anomaly_score"].iloc[:1000].tolist()


@pytest.mark.parametrize("detector", ["lof", "ensemble"])
def test_other_detectors(series: Path, tmp_path: Path, detector: str) -> None:
    out = tmp_path / "o.csv"
    result = run("--input", str(series), "--out", str(out), "--detector", detector, "--quiet")
    assert result.returncode == 0, result.stderr
    score = pd.read_csv(out)["anomaly_score"]
    assert score.max() <= 1.0 and score.min() >= 0.0 and score.idxmax() == 1200


def test_epoch_millisecond_timestamps(tmp_path: Path) -> None:
    src = tmp_path / "counts.csv"
    rng = np.random.default_rng(0)
    counts = rng.poisson(30, 800)
    counts[700] = 120
    pd.DataFrame({"timestamp": np.arange(800) * 60_000, "value": counts}).to_csv(src, index=False)
    assert run("--input", str(src), "--out", str(tmp_path / "o.csv"), "--quiet").returncode == 0
    score = pd.read_csv(tmp_path / "o.csv")["anomaly_score"]
    assert score.idxmax() == 700


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("time,value\n1,2\n", "missing column"),
        ("timestamp,value\n2024-01-01,abc\n", "expected a number"),
        ("timestamp,value\nyesterday,1\n", "ISO 8601"),
        ("timestamp,value\n2,1\n1,2\n", "must not decrease"),
        ("timestamp,value\n1,inf\n", "infinite"),
        ("", "empty"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, content: str, message: str) -> None:
    src = tmp_path / "bad.csv"
    src.write_text(content)
    result = run("--input", str(src), "--out", str(tmp_path / "o.csv"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert not (tmp_path / "o.csv").exists()


def test_unknown_detector_and_missing_file(tmp_path: Path, series: Path) -> None:
    result = run("--input", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o.csv"))
    assert result.returncode == 2 and "no such file" in result.stderr
    result = run("--input", str(series), "--out", str(tmp_path / "o.csv"), "--detector", "x")
    assert result.returncode == 2 and "unknown detector" in result.stderr
