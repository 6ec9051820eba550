"""``riskstream credit score``: one row per input row, in order; id kept; errors exit 2."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.credit.model import CreditModel

from .conftest import COMMITTED, TARGET
from .helpers import run_cli


def score_committed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], data: Path, out: Path
) -> tuple[int, str, str]:
    """``riskstream credit score`` with the committed model: ``(exit code, stdout, stderr)``."""
    return run_cli(
        monkeypatch,
        capsys,
        "credit",
        "score",
        "--model",
        str(COMMITTED),
        "--data",
        str(data),
        "--out",
        str(out),
    )


def test_scores_every_row_in_order_keeping_the_id(
    tmp_path: Path,
    taiwan: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = (
        taiwan.iloc[1000:1300].drop(columns=[TARGET]).sample(frac=1.0, random_state=1)
    )  # shuffled, no target
    data = tmp_path / "in.csv"
    rows.to_csv(data, index=False)
    out = tmp_path / "out.csv"
    code, _, err = score_committed(monkeypatch, capsys, data, out)
    assert code == 0, err
    scored = pd.read_csv(out)
    assert list(scored.columns) == ["ID", "pd"]
    assert scored["ID"].tolist() == rows["ID"].tolist()
    model = CreditModel(COMMITTED)
    np.testing.assert_allclose(
        scored["pd"], model.predict(model.card.encode_frame(rows)), rtol=0, atol=1e-15
    )
    assert scored["pd"].between(0, 1).all()


def test_without_id_column_and_with_a_lowercase_id(
    tmp_path: Path,
    taiwan: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = taiwan.head(5)
    rows.drop(columns=["ID"]).to_csv(tmp_path / "a.csv", index=False)
    code, _, _ = score_committed(monkeypatch, capsys, tmp_path / "a.csv", tmp_path / "a_out.csv")
    assert code == 0
    with (tmp_path / "a_out.csv").open() as f:
        assert next(csv.reader(f)) == ["pd"]
    rows.rename(columns={"ID": "id"}).to_csv(tmp_path / "b.csv", index=False)
    score_committed(monkeypatch, capsys, tmp_path / "b.csv", tmp_path / "b_out.csv")
    assert pd.read_csv(tmp_path / "b_out.csv")["id"].tolist() == [1, 2, 3, 4, 5]


def test_a_large_file_is_scored_in_chunks(tmp_path: Path, taiwan: pd.DataFrame) -> None:
    from engine.credit.offline import score_file

    data = tmp_path / "in.csv"
    taiwan.head(2500).to_csv(data, index=False)
    rows = score_file(CreditModel(COMMITTED), data, tmp_path / "out.csv", chunk_rows=1000)
    scored = pd.read_csv(tmp_path / "out.csv")
    assert rows == 2500 and scored["ID"].tolist() == list(range(1, 2501))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        ("ID,LIMIT_BAL\n1,20000\n", "missing feature column(s) SEX"),
        (None, "has 'lots' in row 3, expected a number"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path,
    taiwan: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    message: str,
) -> None:
    data = tmp_path / "in.csv"
    if content is None:
        rows = taiwan.head(4).astype(object)
        rows.loc[2, "LIMIT_BAL"] = "lots"
        rows.to_csv(data, index=False)
    else:
        data.write_text(content)
    out = tmp_path / "out.csv"
    code, _, err = score_committed(monkeypatch, capsys, data, out)
    assert code == 2
    assert err.count("\n") == 1 and message in err
    assert not out.exists()


def test_not_a_model_directory_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "x.csv").write_text("a\n1\n")
    code, _, err = run_cli(
        monkeypatch,
        capsys,
        "credit",
        "score",
        "--model",
        str(tmp_path),
        "--data",
        str(tmp_path / "x.csv"),
        "--out",
        str(tmp_path / "o.csv"),
    )
    assert code == 2 and "not a credit model directory" in err
