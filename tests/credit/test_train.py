"""Training: the model directory, the card, parity, calibration evidence, generic CSVs, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
import orjson
import pandas as pd
import pytest

from engine.credit.card import ModelCard
from engine.credit.model import CreditModel
from engine.errors import InputError
from models.credit.train import TrainOptions, train

from .conftest import SMALL, TARGET
from .helpers import run_cli


def test_model_directory_and_card(small_model: Path, taiwan_sample: Path) -> None:
    names = {p.name for p in small_model.iterdir()}
    assert {
        "card.json",
        "model.onnx",
        "lightgbm.txt",
        "roc.png",
        "reliability.png",
        "shap_summary.png",
    } <= names
    card = orjson.loads((small_model / "card.json").read_bytes())
    assert card["kind"] == "lightgbm" and card["output"] == "log-odds"
    assert [f["name"] for f in card["inputs"]][:3] == ["LIMIT_BAL", "SEX", "EDUCATION"]
    assert len(card["inputs"]) == 23 and card["id_column"] == "ID" and card["target"] == TARGET
    assert card["training_data"]["rows_used"] == 2500 and len(card["training_data"]["sha256"]) == 64
    assert card["split"]["test_rows"] == 500 and card["split"]["cv_folds"] == 3
    assert card["calibration"]["method"] in ("platt", "isotonic")
    assert set(card["calibration"]["evidence"]) == {"none", "platt", "isotonic"}
    for method in ("none", "platt", "isotonic"):
        assert set(card["test"]["lightgbm"][method]) >= {"roc_auc", "pr_auc", "ks", "brier", "ece"}
    assert set(card["cv"]["lightgbm"]["metrics"]["roc_auc"]) == {"mean", "std"}
    assert len(card["cv"]["lightgbm"]["candidates"]) == 2
    assert card["onnx"]["opset"] == {"": 21, "ai.onnx.ml": 5}
    assert card["onnx"]["parity"]["max_abs_diff"] <= 1e-5
    assert card["shap"]["max_additivity_error"] <= 1e-6
    assert (
        card["global_importance"][0]["mean_abs_shap"]
        >= card["global_importance"][-1]["mean_abs_shap"]
    )
    assert card["test"]["lightgbm"]["none"]["roc_auc"] > 0.65  # learns something on 2,000 rows


def test_onnx_and_native_probabilities_agree(small_model: Path, taiwan: pd.DataFrame) -> None:
    """ONNX against LightGBM + the card's calibration, on rows the model never saw."""
    from scipy.special import expit

    model = CreditModel(small_model)
    card = model.card
    X = card.encode_frame(taiwan.iloc[20_000:26_000], "taiwan")
    X[::7, 5] = np.nan  # missing PAY_0 too
    native_margin = model.explainer().model.predict(X, raw_score=True)
    cal = card.extra["calibration"]
    if cal["method"] == "platt":
        native = expit(cal["params"]["a"] * native_margin + cal["params"]["b"])
    else:
        native = np.interp(native_margin, cal["params"]["x"], cal["params"]["y"])
    np.testing.assert_allclose(model.predict(X), native, rtol=0, atol=1e-5)
    assert float(np.max(np.abs(model.predict(X) - native))) < 1e-12


def test_random_forest_export_parity(taiwan_sample: Path, tmp_path: Path) -> None:
    opts = TrainOptions(**{**SMALL.__dict__, "kinds": ("random_forest",)})
    result = train(taiwan_sample, TARGET, tmp_path, opts)
    assert result.card.kind == "random_forest" and (tmp_path / "model.joblib").is_file()
    assert result.card.extra["onnx"]["parity"]["max_abs_diff"] <= 1e-5
    model = CreditModel(tmp_path)
    assert model.explainer().units == "probability"


def test_retraining_is_reproducible(taiwan_sample: Path, tmp_path: Path) -> None:
    opts = TrainOptions(**{**SMALL.__dict__, "kinds": ("lightgbm",)})
    first = train(taiwan_sample, TARGET, tmp_path / "a", opts).card
    second = train(taiwan_sample, TARGET, tmp_path / "b", opts).card
    assert first.version == second.version
    assert (tmp_path / "a" / "model.onnx").read_bytes() == (
        tmp_path / "b" / "model.onnx"
    ).read_bytes()


def generic_csv(path: Path, n: int = 600, seed: int = 0) -> Path:
    """Numeric, categorical and missing values; a text target; no id column."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10, 0.5, n)
    region = rng.choice(["north", "south", "east", "west"], n)
    employment = rng.choice(["salaried", "self-employed", None], n, p=[0.6, 0.3, 0.1])
    risk = -2 + (region == "south") * 1.5 - (income - income.mean()) / income.std()
    outcome = np.where(rng.random(n) < 1 / (1 + np.exp(-risk)), "bad", "good")
    frame = pd.DataFrame(
        {"income": income, "region": region, "employment": employment, "status": outcome}
    )
    frame.loc[rng.random(n) < 0.1, "income"] = np.nan
    frame.to_csv(path, index=False)
    return path


def test_any_tabular_csv_with_categories_and_missing_values(tmp_path: Path) -> None:
    data = generic_csv(tmp_path / "loans.csv")
    result = train(data, "status", tmp_path / "model", SMALL)
    card = result.card
    kinds = {f.name: f.kind for f in card.inputs}
    assert kinds == {"income": "numeric", "region": "categorical", "employment": "categorical"}
    assert card.extra["training_data"]["positive_class"] == "bad"
    region = next(f for f in card.inputs if f.name == "region")
    assert sorted(region.categories) == ["east", "north", "south", "west"]
    scores = CreditModel(tmp_path / "model").predict(
        card.encode_frame(
            pd.DataFrame(
                {
                    "income": [np.nan, 30000.0],
                    "region": ["south", "mars"],
                    "employment": [None, "salaried"],
                }
            )
        )
    )
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1))


def test_cli_train_then_score_any_csv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """DESIGN.md's two commands on a CSV with text categories, missing values, a text target."""
    data = generic_csv(tmp_path / "loans.csv")
    model_dir = tmp_path / "model"
    code, _, err = run_cli(
        monkeypatch,
        capsys,
        *("credit", "train", "--data", str(data), "--target", "status", "--out", str(model_dir)),
        *("--models", "lightgbm", "--folds", "2", "--jobs", "1", "--no-plots", "--no-progress"),
    )
    assert code == 0, err
    assert {"model.onnx", "card.json"} <= {p.name for p in model_dir.iterdir()}
    card = orjson.loads((model_dir / "card.json").read_bytes())
    assert card["test"]["lightgbm"]["none"]["roc_auc"] > 0.6  # a real signal was learned
    new = pd.read_csv(data).drop(columns="status").head(40)
    new.insert(0, "id", [f"L{i}" for i in range(len(new))])
    new.loc[::5, "income"] = np.nan
    new.loc[::7, "region"] = "unseen"
    scoring = tmp_path / "new.csv"
    new.to_csv(scoring, index=False)
    code, _, err = run_cli(
        monkeypatch,
        capsys,
        *("credit", "score", "--model", str(model_dir), "--data", str(scoring)),
        *("--out", str(tmp_path / "scores.csv")),
    )
    assert code == 0, err
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert list(scores.columns) == ["id", "pd"] and list(scores["id"]) == list(new["id"])
    model = CreditModel(model_dir)
    expected = model.predict(model.card.encode_frame(new))
    np.testing.assert_allclose(scores["pd"].to_numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("content", "target", "message"),
    [
        ("", "y", "the file is empty"),
        ("a,b\n1,2\n3,4\n", "y", "target column 'y' not found"),
        ("a,y\n1,0\n2,1\n3,2\n", "y", "must be binary"),
        ("a,y\n" + "1,1\n" * 40, "y", "must be binary"),
        ("a,y\n" + "1,0\n" * 40 + "2,1\n" * 3, "y", "too few rows of one class"),
        ("a,y\n" + "1,red\n2,blue\n" * 20, "y", "cannot tell which value"),
    ],
)
def test_bad_input_is_an_input_error(
    tmp_path: Path, content: str, target: str, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        train(path, target, tmp_path / "out", SMALL)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "riskstream: error: "),
        ("a,b\n1,2\n", "target column 'default' not found"),
        ("a,default\n1,0\n2,1\n3,7\n", "must be binary"),
    ],
)
def test_cli_train_bad_input_exits_2_with_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: str,
    message: str,
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    code, _, err = run_cli(
        monkeypatch,
        capsys,
        "credit",
        "train",
        "--data",
        str(path),
        "--target",
        "default",
        "--out",
        str(tmp_path / "m"),
    )
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("riskstream: error: ") and message in err


def test_cli_train_missing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(
        monkeypatch,
        capsys,
        "credit",
        "train",
        "--data",
        str(tmp_path / "nope.csv"),
        "--target",
        "y",
        "--out",
        str(tmp_path),
    )
    assert code == 2 and "file not found" in err


def test_card_refuses_a_tampered_model(small_model: Path, tmp_path: Path) -> None:
    import shutil

    from engine.errors import ModelMismatchError

    copy = tmp_path / "m"
    shutil.copytree(small_model, copy)
    (copy / "model.onnx").write_bytes((copy / "model.onnx").read_bytes() + b"\x00")
    with pytest.raises(ModelMismatchError, match="sha256 mismatch"):
        ModelCard.load(copy)
    shutil.copytree(small_model, tmp_path / "n")
    card = orjson.loads((tmp_path / "n" / "card.json").read_bytes())
    card["inputs"] = card["inputs"][:-1]  # one feature fewer than the graph takes
    (tmp_path / "n" / "card.json").write_bytes(orjson.dumps(card))
    with pytest.raises(ModelMismatchError, match="card lists 22 features"):
        CreditModel(tmp_path / "n")


def test_onnx_session_is_one_input_two_outputs(small_model: Path) -> None:
    s = onnxruntime.InferenceSession(
        str(small_model / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    assert [i.name for i in s.get_inputs()] == ["features"]
    assert [o.name for o in s.get_outputs()] == ["pd", "score"]
