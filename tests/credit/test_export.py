"""The float64 ONNX export against the native models: the trees, missing values, calibration."""

from __future__ import annotations

import warnings

import numpy as np
import onnxruntime
import pytest
from scipy.special import expit

from models.credit import calibration, export


def session(model) -> onnxruntime.InferenceSession:  # type: ignore[no-untyped-def]
    return onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )


def data(seed: int, n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    X[:, 3] = rng.integers(0, 4, n)  # a code-like column
    y = (rng.random(n) < expit(X[:, 0] - 0.5 * X[:, 1] + 0.3 * X[:, 3] - 0.5)).astype(int)
    return X, y


def holes(X: np.ndarray, columns: list[int], seed: int, share: float = 0.2) -> np.ndarray:
    out = X.copy()
    rng = np.random.default_rng(seed)
    for c in columns:
        out[rng.random(len(X)) < share, c] = np.nan
    return out


def lightgbm_model(X: np.ndarray, y: np.ndarray, **params):  # type: ignore[no-untyped-def]
    import lightgbm

    options = {"n_estimators": 60, "num_leaves": 8, "min_child_samples": 20, **params}
    return lightgbm.LGBMClassifier(verbose=-1, n_jobs=1, **options).fit(X, y)


@pytest.mark.parametrize("method", ["none", "platt", "isotonic"])
def test_lightgbm_with_missing_values_matches_native(method: str) -> None:
    X, y = data(0)
    X_train = holes(X, [0, 2], seed=1)  # columns 0, 2 learn missing values; the rest do not
    model = lightgbm_model(X_train, y)
    margin = model.booster_.predict(X_train, raw_score=True)
    cal = calibration.fit(method, margin, y, "log-odds")
    onnx_model = export.build_model(
        export.lightgbm_trees(model.booster_), kind="lightgbm", calibrator=cal, n_features=6
    )
    probe = holes(data(5)[0], [0, 1, 2, 3, 4, 5], seed=6)  # NaN also where training had none
    pd_onnx, score = session(onnx_model).run(None, {"features": probe})
    native = model.booster_.predict(probe, raw_score=True)
    np.testing.assert_allclose(score[:, 0], native, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pd_onnx, cal.apply(native), rtol=0, atol=1e-12)
    assert pd_onnx.shape == (len(probe),)


def test_random_forest_with_missing_values_matches_native() -> None:
    from sklearn.ensemble import RandomForestClassifier

    X, y = data(2)
    X_train = holes(X, [1], seed=3)
    forest = RandomForestClassifier(n_estimators=20, min_samples_leaf=10, random_state=0).fit(
        X_train, y
    )
    cal = calibration.fit("isotonic", forest.predict_proba(X_train)[:, 1], y, "probability")
    onnx_model = export.build_model(
        export.forest_trees(forest), kind="random_forest", calibrator=cal, n_features=6
    )
    probe = holes(data(7)[0] * 1.000001, [0, 1], seed=8)  # values that float32 rounds
    pd_onnx, score = session(onnx_model).run(None, {"features": probe})
    native = forest.predict_proba(probe)[:, 1]
    np.testing.assert_allclose(score[:, 0], native, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pd_onnx, cal.apply(native), rtol=0, atol=1e-12)


def test_isotonic_graph_at_knots_between_them_and_outside() -> None:
    cal = calibration.Calibrator(
        "isotonic",
        "log-odds",
        x=np.array([-2.0, -1.0, 0.0, 0.5, 3.0]),
        y=np.array([0.05, 0.1, 0.4, 0.41, 0.9]),
    )
    import lightgbm

    X, y = data(4, 500)
    model = lightgbm.LGBMClassifier(n_estimators=5, verbose=-1, n_jobs=1).fit(X, y)
    graph = export.build_model(
        export.lightgbm_trees(model.booster_), kind="lightgbm", calibrator=cal, n_features=6
    )
    # Probe the calibration itself through a score we control: a one-leaf-per-tree model is
    # not available, so compare on the model's own scores plus the calibrator on the knots.
    s = session(graph)
    pd_onnx, score = s.run(None, {"features": X})
    np.testing.assert_allclose(pd_onnx, np.interp(score[:, 0], cal.x, cal.y), atol=1e-15)
    segment = export._segment_tree(cal.x)
    knots = np.concatenate([cal.x, [-5.0, 5.0, -1.5, 0.25, 1.0]])
    for value in knots:
        node = 0
        while segment.feature[node] >= 0:
            node = segment.left[node] if value <= segment.threshold[node] else segment.right[node]
        j = int(segment.value[node])
        clipped = min(max(value, cal.x[0]), cal.x[-1])
        assert cal.x[j] <= clipped <= cal.x[j + 1]


def test_single_leaf_trees_export() -> None:
    X, y = data(9, 200)
    model = lightgbm_model(X, y, min_child_samples=1000)  # no split is possible: one leaf per tree
    trees = export.lightgbm_trees(model.booster_)
    assert all(len(t.feature) == 1 for t in trees)
    graph = export.build_model(
        trees, kind="lightgbm", calibrator=calibration.Calibrator("none", "log-odds"), n_features=6
    )
    pd_onnx, _ = session(graph).run(None, {"features": X[:10]})
    np.testing.assert_allclose(pd_onnx, model.booster_.predict(X[:10]), atol=1e-15)


def test_zero_as_missing_is_refused() -> None:
    X, y = data(10, 1000)
    model = lightgbm_model(X, y, zero_as_missing=True)
    with pytest.raises(ValueError, match="zero-as-missing"):
        export.lightgbm_trees(model.booster_)


def test_trees_agree_with_onnxmltools() -> None:
    """The exporter reads the trees as the standard converter does (its float32 output aside)."""
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    X, y = data(11)
    X = np.round(X, 3)  # values float32 represents closely
    model = lightgbm_model(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = convert_lightgbm(
            model, initial_types=[("x", FloatTensorType([None, 6]))], zipmap=False, target_opset=15
        )
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # the converter declares the label output's shape wrongly
    theirs = onnxruntime.InferenceSession(
        reference.SerializeToString(), options, providers=["CPUExecutionProvider"]
    ).run(None, {"x": X.astype(np.float32)})[1][:, 1]
    graph = export.build_model(
        export.lightgbm_trees(model.booster_),
        kind="lightgbm",
        calibrator=calibration.Calibrator("none", "log-odds"),
        n_features=6,
    )
    ours = session(graph).run(["pd"], {"features": X})[0]
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
