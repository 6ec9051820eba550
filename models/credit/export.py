"""ONNX export of a calibrated tree model, in double precision end to end.

The graph::

    features (float64, N x F)
      -> TreeEnsemble (ai.onnx.ml opset 5, float64 thresholds and leaf values)
      -> score (N x 1): LightGBM's log-odds margin, or a forest's vote share
      -> calibration (Platt: Sigmoid(a * s + b); isotonic: interpolation; none: Sigmoid or identity)
      -> pd (N)

Why not onnxmltools / skl2onnx alone: both emit the older ``TreeEnsembleClassifier``, whose
thresholds, leaf values and output are float32. That is fine for the trees (measured on
the Taiwan test split: 2.8e-7 from LightGBM) but isotonic calibration has near-vertical
segments (slopes above 30,000 between adjacent knots), which magnify float32 rounding of the
score to 1.3e-5 in the probability, over the 1e-5 the engine promises. The tree ensemble is
therefore written as the opset-5 ``TreeEnsemble`` operator with float64 attributes, from
the same tree dumps the converters read (``Booster.dump_model``, ``tree_``), and the
tests check it against onnxmltools' conversion of the same trees.

Tree semantics reproduced exactly:

* LightGBM: ``x <= threshold`` goes left; a NaN goes the split's default direction when
  the split learned missing values (``missing_type`` NaN), else it is read as 0 (LightGBM
  converts NaN to 0 for such splits); zero-as-missing splits are refused.
* scikit-learn forests: features are cast to float32 before comparing (scikit-learn
  does so), ``x <= threshold`` goes left, NaN follows ``missing_go_to_left``; the forest's
  probability is the mean of the trees' leaf class shares.
* Isotonic calibration: a binary-search ``TreeEnsemble`` finds the segment of the clipped
  score, then ``y_j + slope_j * (s - x_j)`` exactly as ``numpy.interp`` computes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

import onnx
from models.credit.calibration import Calibrator
from onnx import TensorProto, helper, numpy_helper

OPSET = {"": 21, "ai.onnx.ml": 5}
IR_VERSION = 10
INPUT = "features"
OUTPUT_PD = "pd"
OUTPUT_SCORE = "score"

_LEQ = 0  # TreeEnsemble nodes_modes: BRANCH_LEQ
_SUM, _AVERAGE = 1, 0  # aggregate_function


@dataclass(frozen=True)
class Tree:
    """One binary tree in arrays (scikit-learn layout): ``feature`` is -1 at leaves."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    missing_left: np.ndarray
    value: np.ndarray


# --- tree dumps -----------------------------------------------------------------------------


def lightgbm_trees(booster: Any) -> list[Tree]:
    """The trees of a binary LightGBM booster (leaf values in log-odds)."""
    dump = booster.dump_model()
    if dump.get("num_tree_per_iteration", 1) != 1:
        raise ValueError("only binary LightGBM models can be exported")
    trees = []
    for info in dump["tree_info"]:
        arrays: dict[str, list[Any]] = {
            k: [] for k in ("feature", "threshold", "left", "right", "missing_left", "value")
        }

        def visit(node: dict[str, Any], arrays: dict[str, list[Any]] = arrays) -> int:
            index = len(arrays["feature"])
            for k in arrays:
                arrays[k].append(None)
            if "leaf_value" in node:
                arrays["feature"][index] = -1
                arrays["threshold"][index] = 0.0
                arrays["left"][index] = arrays["right"][index] = -1
                arrays["missing_left"][index] = False
                arrays["value"][index] = float(node["leaf_value"])
                return index
            if node["decision_type"] != "<=":
                raise ValueError(
                    f"LightGBM split type {node['decision_type']!r} (categorical) is not exportable; "
                    "categories are ordinal-encoded before training"
                )
            threshold = float(node["threshold"])
            missing = node.get("missing_type", "None")
            if missing == "NaN":
                missing_left = bool(node["default_left"])
            elif missing == "None":
                missing_left = threshold >= 0.0  # LightGBM reads NaN as 0 here
            else:
                raise ValueError("LightGBM zero-as-missing splits are not exportable")
            arrays["feature"][index] = int(node["split_feature"])
            arrays["threshold"][index] = threshold
            arrays["missing_left"][index] = missing_left
            arrays["value"][index] = 0.0
            arrays["left"][index] = visit(node["left_child"])
            arrays["right"][index] = visit(node["right_child"])
            return index

        visit(info["tree_structure"])
        trees.append(_tree(arrays))
    return trees


def forest_trees(forest: Any) -> list[Tree]:
    """The trees of a fitted scikit-learn ``RandomForestClassifier`` (leaf value: share of class 1)."""
    trees = []
    for estimator in forest.estimators_:
        t = estimator.tree_
        counts = t.value[:, 0, :]
        share = counts[:, 1] / np.where(counts.sum(axis=1) > 0, counts.sum(axis=1), 1.0)
        missing = getattr(t, "missing_go_to_left", np.zeros(t.node_count, dtype=np.uint8))
        trees.append(
            Tree(
                feature=np.where(t.children_left < 0, -1, t.feature).astype(np.int64),
                threshold=t.threshold.astype(np.float64),
                left=t.children_left.astype(np.int64),
                right=t.children_right.astype(np.int64),
                missing_left=np.asarray(missing, dtype=bool),
                value=share.astype(np.float64),
            )
        )
    return trees


def _tree(arrays: dict[str, list[Any]]) -> Tree:
    return Tree(
        feature=np.asarray(arrays["feature"], dtype=np.int64),
        threshold=np.asarray(arrays["threshold"], dtype=np.float64),
        left=np.asarray(arrays["left"], dtype=np.int64),
        right=np.asarray(arrays["right"], dtype=np.int64),
        missing_left=np.asarray(arrays["missing_left"], dtype=bool),
        value=np.asarray(arrays["value"], dtype=np.float64),
    )


# --- ONNX nodes -----------------------------------------------------------------------------


def tree_ensemble_node(
    trees: list[Tree], inputs: str, output: str, *, aggregate: int, name: str
) -> onnx.NodeProto:
    """One ``TreeEnsemble`` (ai.onnx.ml opset 5) node over ``trees``, float64, one target."""
    feats: list[int] = []
    splits: list[float] = []
    true_ids: list[int] = []
    true_leaf: list[int] = []
    false_ids: list[int] = []
    false_leaf: list[int] = []
    missing: list[int] = []
    leaf_weights: list[float] = []
    roots: list[int] = []
    for tree in trees:
        node_index: dict[int, int] = {}
        leaf_index: dict[int, int] = {}
        for i in range(len(tree.feature)):
            if tree.feature[i] < 0:
                leaf_index[i] = len(leaf_weights)
                leaf_weights.append(float(tree.value[i]))
            else:
                node_index[i] = len(feats) + len(node_index)
        if not node_index:  # a single leaf: one dummy split whose branches both reach it
            roots.append(len(feats))
            leaf = leaf_index[0]
            feats.append(0)
            splits.append(0.0)
            true_ids.append(leaf)
            true_leaf.append(1)
            false_ids.append(leaf)
            false_leaf.append(1)
            missing.append(0)
            continue
        roots.append(node_index[0])
        for i in sorted(node_index):
            feats.append(int(tree.feature[i]))
            splits.append(float(tree.threshold[i]))
            for child, ids, leafs in (
                (int(tree.left[i]), true_ids, true_leaf),
                (int(tree.right[i]), false_ids, false_leaf),
            ):
                if child in leaf_index:
                    ids.append(leaf_index[child])
                    leafs.append(1)
                else:
                    ids.append(node_index[child])
                    leafs.append(0)
            missing.append(int(bool(tree.missing_left[i])))
    return helper.make_node(
        "TreeEnsemble",
        [inputs],
        [output],
        domain="ai.onnx.ml",
        name=name,
        aggregate_function=aggregate,
        post_transform=0,
        n_targets=1,
        tree_roots=roots,
        nodes_featureids=feats,
        nodes_splits=numpy_helper.from_array(np.asarray(splits, dtype=np.float64)),
        nodes_modes=numpy_helper.from_array(np.full(len(feats), _LEQ, dtype=np.uint8)),
        nodes_truenodeids=true_ids,
        nodes_trueleafs=true_leaf,
        nodes_falsenodeids=false_ids,
        nodes_falseleafs=false_leaf,
        nodes_missing_value_tracks_true=missing,
        leaf_targetids=[0] * len(leaf_weights),
        leaf_weights=numpy_helper.from_array(np.asarray(leaf_weights, dtype=np.float64)),
    )


def _segment_tree(knots: np.ndarray) -> Tree:
    """A binary search over ``knots[1:-1]``: leaf value = index j of the segment [x_j, x_j+1]."""
    feature: list[int] = []
    threshold: list[float] = []
    left: list[int] = []
    right: list[int] = []
    value: list[float] = []

    def build(lo: int, hi: int) -> int:  # segments lo..hi inclusive
        index = len(feature)
        feature.append(-1)
        threshold.append(0.0)
        left.append(-1)
        right.append(-1)
        value.append(float(lo))
        if lo < hi:
            mid = (lo + hi + 1) // 2  # s <= knots[mid] -> segments lo..mid-1
            feature[index] = 0
            threshold[index] = float(knots[mid])
            left[index] = build(lo, mid - 1)
            right[index] = build(mid, hi)
        return index

    build(0, len(knots) - 2)
    n = len(feature)
    return Tree(
        np.asarray(feature),
        np.asarray(threshold),
        np.asarray(left),
        np.asarray(right),
        np.zeros(n, dtype=bool),
        np.asarray(value),
    )


def _const(name: str, values: Any, dtype: Any = np.float64) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=dtype), name=name)


def _calibration_nodes(
    calibrator: Calibrator, score: str, out: str
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    if calibrator.method == "platt":
        inits += [_const("platt_a", [calibrator.a]), _const("platt_b", [calibrator.b])]
        nodes += [
            helper.make_node("Mul", [score, "platt_a"], ["platt_as"]),
            helper.make_node("Add", ["platt_as", "platt_b"], ["platt_z"]),
            helper.make_node("Sigmoid", ["platt_z"], [out]),
        ]
    elif calibrator.method == "isotonic":
        x, y = calibrator.x, calibrator.y
        if len(x) == 1:
            inits += [_const("iso_zero", [0.0]), _const("iso_y0", [y[0]])]
            nodes += [
                helper.make_node("Mul", [score, "iso_zero"], ["iso_zeros"]),
                helper.make_node("Add", ["iso_zeros", "iso_y0"], [out]),
            ]
        else:
            slopes = (y[1:] - y[:-1]) / (x[1:] - x[:-1])
            inits += [
                _const("iso_lo", [x[0]]),
                _const("iso_hi", [x[-1]]),
                _const("iso_x", x[:-1]),
                _const("iso_y", y[:-1]),
                _const("iso_slope", slopes),
                _const("iso_flat", [-1], np.int64),
            ]
            nodes += [
                helper.make_node("Max", [score, "iso_lo"], ["iso_s1"]),
                helper.make_node("Min", ["iso_s1", "iso_hi"], ["iso_s"]),
                tree_ensemble_node(
                    [_segment_tree(x)], "iso_s", "iso_jf", aggregate=_SUM, name="isotonic_segment"
                ),
                helper.make_node("Cast", ["iso_jf"], ["iso_j2"], to=TensorProto.INT64),
                helper.make_node("Reshape", ["iso_j2", "iso_flat"], ["iso_j"]),
                helper.make_node("Gather", ["iso_x", "iso_j"], ["iso_xj1"]),
                helper.make_node("Gather", ["iso_y", "iso_j"], ["iso_yj1"]),
                helper.make_node("Gather", ["iso_slope", "iso_j"], ["iso_mj1"]),
                helper.make_node("Reshape", ["iso_s", "iso_flat"], ["iso_sf"]),
                helper.make_node("Sub", ["iso_sf", "iso_xj1"], ["iso_dx"]),
                helper.make_node("Mul", ["iso_mj1", "iso_dx"], ["iso_dy"]),
                helper.make_node("Add", ["iso_dy", "iso_yj1"], ["iso_out"]),
                helper.make_node("Unsqueeze", ["iso_out", "one_axis"], [out]),
            ]
            inits.append(_const("one_axis", [1], np.int64))
    elif calibrator.score == "log-odds":
        nodes.append(helper.make_node("Sigmoid", [score], [out]))
    else:
        nodes.append(helper.make_node("Identity", [score], [out]))
    return nodes, inits


def build_model(
    trees: list[Tree],
    *,
    kind: str,
    calibrator: Calibrator,
    n_features: int,
    metadata: dict[str, str] | None = None,
) -> onnx.ModelProto:
    """The served graph (module docstring) for a ``lightgbm`` or ``random_forest`` model."""
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    source = INPUT
    if kind == "random_forest":  # scikit-learn compares float32 features
        nodes += [
            helper.make_node("Cast", [INPUT], ["features_f32"], to=TensorProto.FLOAT),
            helper.make_node("Cast", ["features_f32"], ["features_sk"], to=TensorProto.DOUBLE),
        ]
        source = "features_sk"
        aggregate = _AVERAGE
    elif kind == "lightgbm":
        aggregate = _SUM
    else:
        raise ValueError(f"unknown model kind {kind!r}")
    nodes.append(tree_ensemble_node(trees, source, OUTPUT_SCORE, aggregate=aggregate, name="trees"))
    cal_nodes, cal_inits = _calibration_nodes(calibrator, OUTPUT_SCORE, "pd_column")
    nodes += cal_nodes
    inits += cal_inits
    inits.append(_const("pd_shape", [-1], np.int64))
    nodes.append(helper.make_node("Reshape", ["pd_column", "pd_shape"], [OUTPUT_PD]))
    graph = helper.make_graph(
        nodes,
        "riskstream_credit",
        [helper.make_tensor_value_info(INPUT, TensorProto.DOUBLE, [None, n_features])],
        [
            helper.make_tensor_value_info(OUTPUT_PD, TensorProto.DOUBLE, [None]),
            helper.make_tensor_value_info(OUTPUT_SCORE, TensorProto.DOUBLE, [None, 1]),
        ],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(domain, version) for domain, version in OPSET.items()],
        producer_name="riskstream",
        doc_string="Calibrated probability of default; see the model card beside this file.",
    )
    model.ir_version = IR_VERSION
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    return model
