"""``credit score --explain`` and ``explain --row``: SHAP of any scored row, with no services.

The attributions are those the streaming explanation service attaches to an alert (the
model's :class:`~engine.explain.tree.TreeShap`), and the probability they explain is the
PD ``credit score`` writes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.credit.model import CreditModel
from engine.explain import ExplainableModel

from .conftest import COMMITTED
from .helpers import run_cli


@pytest.fixture(scope="module")
def rows(taiwan: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 Taiwan rows without the target (the contract allows it absent)."""
    path = tmp_path_factory.mktemp("explain") / "rows.csv"
    taiwan.head(200).drop(columns=["default.payment.next.month"]).to_csv(path, index=False)
    return path


def score(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    return run_cli(monkeypatch, capsys, "credit", "score", "--model", str(COMMITTED), *args)


def test_explain_writes_the_service_attributions_and_keeps_the_scores_contract(
    rows: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out, why = tmp_path / "scores.csv", tmp_path / "why.csv"
    code, _, err = score(
        monkeypatch, capsys, "--data", str(rows), "--out", str(out), "--explain", str(why)
    )
    assert code == 0, err
    assert err == (
        f"riskstream: scored 200 rows with credit_lightgbm 33d7bf2e0f8d into {out} "
        f"and their SHAP attributions into {why}\n"
    )
    scores = pd.read_csv(out)
    assert list(scores.columns) == ["ID", "pd"]  # the contract's columns, unchanged
    explained = pd.read_csv(why)
    model = CreditModel(COMMITTED)
    names = model.card.feature_names
    assert list(explained.columns) == [
        "ID",
        "pd",
        "base_pd",
        "base",
        "output",
        *(f"shap_{n}" for n in names),
    ]
    assert explained["ID"].tolist() == scores["ID"].tolist()
    assert explained["pd"].tolist() == scores["pd"].tolist()
    # The same numbers as the streaming service's model (ExplainableModel.explain).
    X = model.card.encode_frame(pd.read_csv(rows))
    served = ExplainableModel(model.name, model.version, tuple(names), model.explainer())
    shap, base, output, error = served.explain(X)
    assert np.array_equal(explained[[f"shap_{n}" for n in names]].to_numpy(), shap)
    assert np.array_equal(explained["base"].to_numpy(), base)
    assert np.array_equal(explained["output"].to_numpy(), output)
    assert error.max() <= 1e-6
    # The output, read through the card's calibration, is the PD that credit score writes.
    assert np.abs(model.calibrate(explained["output"].to_numpy()) - scores["pd"]).max() < 1e-12
    assert np.allclose(explained["base_pd"], model.calibrate(base))


def test_a_header_only_file_is_an_error_not_zero_rows(
    tmp_path: Path,
    taiwan: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = tmp_path / "empty.csv"
    taiwan.head(0).to_csv(data, index=False)
    out, why = tmp_path / "o.csv", tmp_path / "why.csv"
    code, _, err = score(
        monkeypatch, capsys, "--data", str(data), "--out", str(out), "--explain", str(why)
    )
    assert code == 2
    assert err == f"riskstream: error: {data}: no rows to score (the file has a header only)\n"
    assert not out.exists() and not why.exists()


def test_explain_into_the_scores_file_is_refused(
    rows: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "o.csv"
    code, _, err = score(
        monkeypatch, capsys, "--data", str(rows), "--out", str(out), "--explain", str(out)
    )
    assert code == 2
    assert err == f"riskstream: error: --explain {out}: give a different file from --out\n"


def test_explain_row_plots_the_waterfall_offline_ending_at_the_scored_pd(
    rows: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "row3.png"
    args = ["explain", "--model", str(COMMITTED), "--data", str(rows), "--row", "3"]
    code, _, err = run_cli(monkeypatch, capsys, *args, "--out", str(png))
    assert code == 0, err
    assert png.read_bytes().startswith(b"\x89PNG")
    code, table, _ = run_cli(monkeypatch, capsys, *args)
    assert code == 0 and "PAY_0" in table and "row 3" in table
    code, _, err = run_cli(monkeypatch, capsys, *args[:-1], "201")
    assert code == 2 and err == f"riskstream: error: --row 201: {rows} has 200 rows\n"


def test_the_waterfall_path_runs_from_the_base_pd_to_the_scored_pd(rows: Path) -> None:
    from engine.explain.cache import Explanation
    from engine.explain.plots import probability_path

    model = CreditModel(COMMITTED)
    X = model.card.encode_frame(pd.read_csv(rows).head(5))
    found = model.explainer().explain(X)
    for i, pd_value in enumerate(model.predict(X)):
        explanation = Explanation(
            model.name,
            model.version,
            tuple(model.card.feature_names),
            tuple(model.card.display(X[i])),
            tuple(found.values[i].tolist()),
            float(found.base[i]),
            float(found.output[i]),
            "log-odds",
        )
        labels, path = probability_path(explanation, model.calibrate, max_display=8)
        assert len(labels) == 8 and labels[-1] == "16 other features"
        assert path[0] == pytest.approx(float(model.calibrate(found.base[:1])[0]), abs=1e-15)
        assert path[-1] == pytest.approx(float(pd_value), abs=1e-12)  # the alert's number


@pytest.mark.parametrize(
    ("doc", "scores", "expected"),
    [
        (
            {"method": "isotonic", "input": "log-odds", "params": {"x": [0, 1], "y": [0.1, 0.3]}},
            [-1.0, 0.5, 2.0],
            [0.1, 0.2, 0.3],
        ),
        ({"method": "none", "input": "log-odds"}, [0.0], [0.5]),
        ({"method": "none", "input": "probability"}, [0.25], [0.25]),
    ],
)
def test_calibration_from_the_card(doc: dict, scores: list[float], expected: list[float]) -> None:
    from engine.credit.calibration import calibration_from_card

    assert calibration_from_card(doc)(np.array(scores)).tolist() == pytest.approx(expected)


def test_a_card_without_calibration_is_a_model_mismatch() -> None:
    from engine.credit.calibration import calibration_from_card
    from engine.errors import ModelMismatchError

    with pytest.raises(ModelMismatchError, match=r"^card.json: no readable calibration"):
        calibration_from_card({}, "card.json")
