"""Fitting the anomaly models and exporting them to ONNX graphs with a ``raw`` output.

Every fitter takes standardised rows (the card's ``(x - center) / scale`` with NaN as 0)
and returns a :class:`Fitted`: the native model, a native raw scorer (used for
sliding-window refits, where converting every refit would cost more than it serves),
and an ONNX graph ``features -> raw`` (larger: more anomalous) for serving. Everything is
seeded; the same rows give the same model.

=================  ====================================================================
``iforest``        scikit-learn ``IsolationForest`` (100 trees, 256 samples each);
                   raw = ``-decision_function`` (skl2onnx, float32)
``lof``            ``LocalOutlierFactor(novelty=True)``, 20 neighbours, fitted on at most
                   ``max_rows`` rows; raw = ``-decision_function`` (skl2onnx, float64:
                   in float32 distances to far-out rows lose 1e-3)
``autoencoder``    a torch MLP ``F -> 16 -> 4 -> 16 -> F`` (tanh), inputs clipped to
                   +-10, trained on the mean squared reconstruction error; raw = that
                   error per row (``torch.onnx.export``, float32)
``gbm``            LightGBM gradient-boosted trees on labels (supervised); raw = the
                   log-odds margin (float64 ``TreeEnsemble``, the credit exporter's)
=================  ====================================================================
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import onnx
from onnx import TensorProto, helper, numpy_helper

ONNX_OPSET = {"": 17, "ai.onnx.ml": 3}


@dataclass
class Fitted:
    """A fitted model: native object, native raw scorer, ONNX graph (``raw`` output)."""

    kind: str
    model: Any
    raw: Callable[[np.ndarray], np.ndarray]
    onnx: onnx.ModelProto | None
    dtype: str = "float32"
    params: dict[str, Any] | None = None


def robust_scaling(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column: the median, and IQR / 1.349 (else the standard deviation, else 1)."""
    X = np.asarray(X, dtype=np.float64)
    center = np.nanmedian(X, axis=0)
    q75, q25 = np.nanpercentile(X, [75, 25], axis=0)
    scale = (q75 - q25) / 1.349
    std = np.nanstd(X, axis=0)
    scale = np.where(scale > 0, scale, np.where(std > 0, std, 1.0))
    return np.nan_to_num(center), scale


def _append_raw(
    model: onnx.ModelProto, scores: str, *, negate: bool, dtype: int = TensorProto.FLOAT
) -> onnx.ModelProto:
    """Add ``raw`` (N) = +-``scores`` (N x 1) to a converted graph and make it the only output."""
    graph = model.graph
    graph.initializer.append(numpy_helper.from_array(np.array([-1], dtype=np.int64), "raw_shape"))
    flat = "raw_flat"
    graph.node.append(helper.make_node("Reshape", [scores, "raw_shape"], [flat]))
    graph.node.append(helper.make_node("Neg" if negate else "Identity", [flat], ["raw"]))
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("raw", dtype, [None]))
    return model


def _skl_onnx(estimator: Any, width: int, *, double: bool = False) -> onnx.ModelProto:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    tensor = DoubleTensorType if double else FloatTensorType
    model = convert_sklearn(
        estimator,
        initial_types=[("features", tensor([None, width]))],
        target_opset=ONNX_OPSET,
    )
    dtype = TensorProto.DOUBLE if double else TensorProto.FLOAT
    # skl2onnx names graphs (and Scan bodies) with random uuids: fixed names keep versions
    # reproducible
    model.graph.name = f"anomaly_{type(estimator).__name__}"
    imports = sorted((o.domain, o.version) for o in model.opset_import)  # set order varies
    del model.opset_import[:]
    model.opset_import.extend(helper.make_opsetid(d, v) for d, v in imports)
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                attr.g.name = f"{node.name}_{attr.name}"
    return _append_raw(model, "scores", negate=True, dtype=dtype)


def fit_iforest(
    Z: np.ndarray, seed: int = 0, n_estimators: int = 100, *, export: bool = True
) -> Fitted:
    from sklearn.ensemble import IsolationForest

    Z = np.asarray(Z, dtype=np.float32)
    model = IsolationForest(n_estimators=n_estimators, max_samples=256, random_state=seed)
    model.fit(Z)
    return Fitted(
        "iforest",
        model,
        lambda X: -model.decision_function(np.asarray(X, dtype=np.float32)),
        _skl_onnx(model, Z.shape[1]) if export else None,
        params={"n_estimators": n_estimators, "max_samples": 256, "seed": seed},
    )


def fit_lof(
    Z: np.ndarray,
    seed: int = 0,
    max_rows: int = 2000,
    n_neighbors: int = 20,
    *,
    export: bool = True,
) -> Fitted:
    from sklearn.neighbors import LocalOutlierFactor

    Z = np.asarray(Z, dtype=np.float64)
    if len(Z) > max_rows:
        Z = Z[np.sort(np.random.default_rng(seed).choice(len(Z), max_rows, replace=False))]
    model = LocalOutlierFactor(n_neighbors=min(n_neighbors, len(Z) - 1), novelty=True)
    model.fit(Z)
    return Fitted(
        "lof",
        model,
        lambda X: -model.decision_function(np.asarray(X, dtype=np.float64)),
        _skl_onnx(model, Z.shape[1], double=True) if export else None,
        dtype="float64",
        params={"n_neighbors": n_neighbors, "rows": len(Z), "seed": seed},
    )


def fit_autoencoder(
    Z: np.ndarray,
    seed: int = 0,
    epochs: int = 20,
    hidden: int = 16,
    bottleneck: int = 4,
    *,
    export: bool = True,
) -> Fitted:
    import torch

    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # deterministic and polite on shared cores
    try:
        width = Z.shape[1]
        net = _Autoencoder(width, hidden, bottleneck)
        X = torch.tensor(np.asarray(Z, dtype=np.float32))
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            perm = torch.randperm(len(X), generator=gen)
            for i in range(0, len(X), 256):
                loss = net(X[perm[i : i + 256]]).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        net.eval()
        graph = _export_autoencoder(net, X[:2]) if export else None
    finally:
        torch.set_num_threads(threads)

    def raw(X: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.tensor(np.asarray(X, dtype=np.float32))).numpy().astype(np.float64)

    return Fitted(
        "autoencoder",
        net,
        raw,
        graph,
        params={"hidden": hidden, "bottleneck": bottleneck, "epochs": epochs, "seed": seed},
    )


def _export_autoencoder(net: Any, example: Any) -> onnx.ModelProto:
    import torch

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            net,
            (example,),
            buffer,
            input_names=["features"],
            output_names=["raw"],
            dynamic_axes={"features": {0: "n"}, "raw": {0: "n"}},
            opset_version=ONNX_OPSET[""],
            dynamo=False,
        )
    return onnx.load_from_string(buffer.getvalue())


def _autoencoder_class() -> Any:
    import torch

    class Autoencoder(torch.nn.Module):
        """``F -> hidden -> bottleneck -> hidden -> F``; forward returns the per-row MSE."""

        def __init__(self, width: int, hidden: int, bottleneck: int) -> None:
            super().__init__()
            self.encoder = torch.nn.Sequential(
                torch.nn.Linear(width, hidden),
                torch.nn.Tanh(),
                torch.nn.Linear(hidden, bottleneck),
                torch.nn.Tanh(),
            )
            self.decoder = torch.nn.Sequential(
                torch.nn.Linear(bottleneck, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, width)
            )

        def forward(self, x: Any) -> Any:
            x = torch.clamp(x, -10.0, 10.0)
            return ((x - self.decoder(self.encoder(x))) ** 2).mean(dim=1)

    return Autoencoder


def _Autoencoder(width: int, hidden: int, bottleneck: int) -> Any:
    return _autoencoder_class()(width, hidden, bottleneck)


GBM_PARAMS = {
    "n_estimators": 500,
    "learning_rate": 0.02,
    "num_leaves": 15,
    "min_child_samples": 50,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.6,
    "reg_lambda": 1.0,
}
"""Regularised boosting (small trees, slow learning, row and column subsampling): the
first setting tried on the training week; not tuned on the test week."""


def fit_gbm(X: np.ndarray, y: np.ndarray, seed: int = 0) -> Fitted:
    import lightgbm

    from models.credit.export import IR_VERSION, OPSET, lightgbm_trees, tree_ensemble_node

    X = np.asarray(X, dtype=np.float64)
    model = lightgbm.LGBMClassifier(
        random_state=seed, verbose=-1, n_jobs=1, deterministic=True, **GBM_PARAMS
    )
    model.fit(X, np.asarray(y, dtype=np.int64))
    booster = model.booster_
    node = tree_ensemble_node(lightgbm_trees(booster), "features", "score", aggregate=1, name="gbm")
    graph = helper.make_graph(
        [node, helper.make_node("Reshape", ["score", "raw_shape"], ["raw"])],
        "anomaly_gbm",
        [helper.make_tensor_value_info("features", TensorProto.DOUBLE, [None, X.shape[1]])],
        [helper.make_tensor_value_info("raw", TensorProto.DOUBLE, [None])],
        initializer=[numpy_helper.from_array(np.array([-1], dtype=np.int64), "raw_shape")],
    )
    proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid(k, v) for k, v in OPSET.items()]
    )
    proto.ir_version = IR_VERSION
    onnx.checker.check_model(proto)
    return Fitted(
        "gbm",
        booster,
        lambda Z: booster.predict(np.asarray(Z, dtype=np.float64), raw_score=True),
        proto,
        dtype="float64",
        params={**GBM_PARAMS, "seed": seed},
    )


UNSUPERVISED: dict[str, Callable[..., Fitted]] = {
    "iforest": fit_iforest,
    "lof": fit_lof,
    "autoencoder": fit_autoencoder,
}
