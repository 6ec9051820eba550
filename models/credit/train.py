"""Train, calibrate, evaluate and export the default credit model (``riskstream credit train``).

Procedure, all seeded (``seed``):

1. read the CSV (:mod:`models.credit.data`) and encode it with the card's encoder;
2. split off an untouched, stratified **test split** (``test_size``, default 20%); nothing
   below looks at it until step 6;
3. on the training part, stratified k-fold **cross-validation** (``folds``, default 5) of
   each model kind: LightGBM (each candidate of :data:`LGBM_GRID`; the smallest within one
   standard error of the best mean ROC AUC is kept, see :func:`_one_standard_error`) and a
   random forest (:data:`RF_PARAMS`); out-of-fold scores for every row;
4. **calibration** chosen by evidence: Platt and isotonic (and, for reference, none) are
   cross-validated on the out-of-fold scores (:func:`models.credit.calibration.choose`,
   lowest Brier score);
5. the **selected model** is the kind with the best mean CV ROC AUC; each kind is refitted
   on the whole training part and its chosen calibrator fitted on its out-of-fold scores;
6. every kind, uncalibrated and with each calibrator, is scored on the test split:
   ROC AUC, PR AUC, KS, Brier, ECE (:mod:`models.credit.metrics`);
7. the selected model is exported to ONNX (:mod:`models.credit.export`) with its
   calibration; ONNX and native probabilities must agree to 1e-5 on the test split (also
   with missing values injected) or training fails;
8. SHAP: global importance (mean |SHAP| over up to 2,000 test rows) and a summary plot;
   ROC and reliability plots; the model card.

The shipped model is trained on the training part only, so the test figures in the card
describe exactly the artifact served.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.artifacts.onnx_session import load_session
from engine.credit.card import ModelCard
from engine.errors import InputError, ModelMismatchError
from models.credit import calibration, data, export
from models.credit.metrics import ECE_BINS, binary_metrics

#: LightGBM settings shared by every candidate. ``deterministic`` + ``force_col_wise``
#: make a retrain reproduce the same trees.
LGBM_BASE: dict[str, Any] = {
    "objective": "binary",
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "deterministic": True,
    "force_col_wise": True,
    "verbose": -1,
}
#: LightGBM candidates compared by cross-validation: small trees, strong regularisation
#: (the Taiwan data rewards it more than depth).
LGBM_GRID: tuple[dict[str, Any], ...] = (
    {"n_estimators": 300, "learning_rate": 0.03, "num_leaves": 8, "min_child_samples": 100},
    {
        "n_estimators": 600,
        "learning_rate": 0.02,
        "num_leaves": 16,
        "min_child_samples": 100,
        "reg_lambda": 5.0,
    },
    {
        "n_estimators": 800,
        "learning_rate": 0.01,
        "num_leaves": 12,
        "min_child_samples": 150,
        "colsample_bytree": 0.5,
        "reg_lambda": 10.0,
    },
)
#: The random forest: leaves of at least 50 rows keep it small enough to export and serve.
RF_PARAMS: dict[str, Any] = {"n_estimators": 200, "min_samples_leaf": 50, "max_features": "sqrt"}
KINDS = ("lightgbm", "random_forest")
NATIVE_FILES = {"lightgbm": "lightgbm.txt", "random_forest": "model.joblib"}
PLOTS = ("roc.png", "reliability.png", "shap_summary.png")
PARITY_TOLERANCE = 1e-5
SHAP_ROWS = 2000

Step = Callable[[str, int, int], None]
"""Progress callback: ``(what is running, steps done, steps in all)``."""


@dataclass(frozen=True)
class TrainOptions:
    test_size: float = 0.2
    folds: int = 5
    seed: int = 0
    kinds: tuple[str, ...] = KINDS
    positive: str | None = None
    max_categories: int = 50
    lgbm_grid: tuple[dict[str, Any], ...] = LGBM_GRID
    rf_params: dict[str, Any] = field(default_factory=lambda: dict(RF_PARAMS))
    n_jobs: int = 2
    plots: bool = True

    def check(self) -> None:
        if not 0.05 <= self.test_size <= 0.5:
            raise InputError(f"test size must be between 0.05 and 0.5, got {self.test_size}")
        if self.folds < 2:
            raise InputError(f"folds must be at least 2, got {self.folds}")
        unknown = set(self.kinds) - set(KINDS)
        if unknown or not self.kinds:
            raise InputError(f"model kinds must be among {', '.join(KINDS)}, got {self.kinds}")


@dataclass
class TrainResult:
    card: ModelCard
    directory: Path
    seconds: float

    def summary(self) -> str:
        card = self.card.extra
        selected = card["selected"]["model"]
        test = card["test"][selected][card["calibration"]["method"]]
        return (
            f"{self.card.name} {self.card.version}: test ROC AUC {test['roc_auc']:.4f}, "
            f"PR AUC {test['pr_auc']:.4f}, KS {test['ks']:.4f}, Brier {test['brier']:.4f}, "
            f"ECE {test['ece']:.4f} ({card['calibration']['method']} calibration), "
            f"in {self.directory} after {self.seconds:.0f}s"
        )


# --- models -------------------------------------------------------------------------------


def _scaled(params: dict[str, Any], rows: int) -> dict[str, Any]:
    """Leaf-size minimums scaled down for small data (at most 1/50 of the rows, at least 5)."""
    out = dict(params)
    for key in ("min_child_samples", "min_samples_leaf"):
        if key in out:
            out[key] = int(min(out[key], max(5, rows // 50)))
    return out


def _fit(
    kind: str, params: dict[str, Any], X: np.ndarray, y: np.ndarray, opts: TrainOptions
) -> Any:
    if kind == "lightgbm":
        import lightgbm

        return lightgbm.LGBMClassifier(
            **{**LGBM_BASE, **params}, random_state=opts.seed, n_jobs=opts.n_jobs
        ).fit(X, y)
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(**params, random_state=opts.seed, n_jobs=opts.n_jobs).fit(X, y)


def _score(kind: str, model: Any, X: np.ndarray) -> np.ndarray:
    """The uncalibrated score the calibrator reads: log-odds (LightGBM) or vote share (forest)."""
    if kind == "lightgbm":
        return np.asarray(model.booster_.predict(X, raw_score=True), dtype=np.float64)
    return np.asarray(model.predict_proba(X)[:, 1], dtype=np.float64)


def _units(kind: str) -> str:
    return "log-odds" if kind == "lightgbm" else "probability"


def _size(params: dict[str, Any]) -> int:
    """Leaves evaluated per prediction, a proxy of inference cost (trees x leaves)."""
    return int(params.get("n_estimators", 100)) * int(params.get("num_leaves", 31))


def _one_standard_error(tried: list[dict[str, Any]], folds: int) -> dict[str, Any]:
    """The smallest candidate whose mean CV ROC AUC is within one standard error of the best.

    The one-standard-error rule: candidates closer to the best than the noise of its own
    cross-validated estimate are equally good by the evidence, so the cheapest to serve
    (fewest trees x leaves) wins.
    """
    best = max(tried, key=lambda t: t["metrics"]["roc_auc"]["mean"])
    auc = best["metrics"]["roc_auc"]
    floor = auc["mean"] - auc["std"] / np.sqrt(folds)
    eligible = [t for t in tried if t["metrics"]["roc_auc"]["mean"] >= floor]
    return min(eligible, key=lambda t: (_size(t["params"]), -t["metrics"]["roc_auc"]["mean"]))


def _summary(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    return {
        name: {
            "mean": float(np.mean([r[name] for r in rows])),
            "std": float(np.std([r[name] for r in rows], ddof=1)) if len(rows) > 1 else 0.0,
        }
        for name in rows[0]
    }


# --- the procedure --------------------------------------------------------------------------


def train(
    data_path: Path | str,
    target: str,
    out_dir: Path | str,
    options: TrainOptions | None = None,
    step: Step | None = None,
) -> TrainResult:
    """Run the module's procedure; write the model directory; :class:`InputError` on bad input."""
    from sklearn.model_selection import StratifiedKFold, train_test_split

    opts = options or TrainOptions()
    opts.check()
    started = time.perf_counter()
    out = Path(out_dir)
    data_path = Path(data_path)
    ds = data.load(data_path, target, positive=opts.positive, max_categories=opts.max_categories)
    encoder = ModelCard("encoder", "lightgbm", "", ds.inputs)
    X = encoder.encode_frame(ds.frame, str(data_path))
    y = ds.y
    train_rows, test_rows = train_test_split(
        np.arange(len(y)), test_size=opts.test_size, stratify=y, random_state=opts.seed
    )
    X_tr, y_tr, X_te, y_te = X[train_rows], y[train_rows], X[test_rows], y[test_rows]
    n_folds = int(min(opts.folds, np.bincount(y_tr).min()))
    fold_of = np.empty(len(y_tr), dtype=np.int64)
    splitter = StratifiedKFold(n_folds, shuffle=True, random_state=opts.seed)
    for k, (_, held) in enumerate(splitter.split(X_tr, y_tr)):
        fold_of[held] = k

    candidates = {
        kind: [
            _scaled(p, len(y_tr))
            for p in (opts.lgbm_grid if kind == "lightgbm" else [opts.rf_params])
        ]
        for kind in opts.kinds
    }
    total = sum(len(c) * n_folds + 1 for c in candidates.values()) + 3 + int(opts.plots)
    done = 0

    def tick(what: str) -> None:
        nonlocal done
        if step is not None:
            step(what, done, total)
        done += 1

    # 3. cross-validation on the training part
    cv: dict[str, Any] = {}
    oof: dict[str, np.ndarray] = {}
    for kind in opts.kinds:
        raw = calibration.Calibrator("none", _units(kind))  # type: ignore[arg-type]
        tried = []
        for c, params in enumerate(candidates[kind], start=1):
            score = np.empty(len(y_tr))
            fold_metrics = []
            for k in range(n_folds):
                tick(f"cross-validation: {kind}, candidate {c}, fold {k + 1}/{n_folds}")
                held = fold_of == k
                model = _fit(kind, params, X_tr[~held], y_tr[~held], opts)
                score[held] = _score(kind, model, X_tr[held])
                fold_metrics.append(binary_metrics(y_tr[held], raw.apply(score[held])))
            tried.append({"params": params, "metrics": _summary(fold_metrics), "oof": score})
        best = _one_standard_error(tried, n_folds)
        oof[kind] = best["oof"]
        cv[kind] = {
            "params": best["params"],
            "metrics": best["metrics"],
            "candidates": [
                {"params": t["params"], "roc_auc": t["metrics"]["roc_auc"]} for t in tried
            ],
            "rule": "smallest (trees x leaves) within one standard error of the best mean ROC AUC",
        }
    selected = max(opts.kinds, key=lambda k: cv[k]["metrics"]["roc_auc"]["mean"])

    # 4-6. calibration, final fits, the test split
    test: dict[str, Any] = {}
    calibrators: dict[str, calibration.Calibrator] = {}
    chosen: dict[str, Any] = {}
    finals: dict[str, Any] = {}
    test_pd: dict[str, dict[str, np.ndarray]] = {}
    for kind in opts.kinds:
        tick(f"fit on the training part: {kind}")
        units = _units(kind)
        method, evidence = calibration.choose(oof[kind], y_tr, units, fold_of)
        fitted = {m: calibration.fit(m, oof[kind], y_tr, units) for m in calibration.METHODS}
        calibrators[kind] = fitted[method]
        chosen[kind] = {"method": method, "evidence": evidence}
        finals[kind] = _fit(kind, cv[kind]["params"], X_tr, y_tr, opts)
        score_te = _score(kind, finals[kind], X_te)
        test_pd[kind] = {m: c.apply(score_te) for m, c in fitted.items()}
        test[kind] = {m: binary_metrics(y_te, p) for m, p in test_pd[kind].items()}

    # 7. export
    tick(f"export to ONNX: {selected}")
    out.mkdir(parents=True, exist_ok=True)
    for stale in (*NATIVE_FILES.values(), "model.onnx", "card.json", *PLOTS):
        (out / stale).unlink(missing_ok=True)  # nothing of an earlier model may remain
    model = finals[selected]
    calibrator = calibrators[selected]
    native_file = NATIVE_FILES[selected]
    if selected == "lightgbm":
        trees = export.lightgbm_trees(model.booster_)
        (out / native_file).write_bytes(model.booster_.model_to_string().encode())
    else:
        import joblib

        trees = export.forest_trees(model)
        joblib.dump(model, out / native_file)
    native_bytes = (out / native_file).read_bytes()
    onnx_model = export.build_model(
        trees, kind=selected, calibrator=calibrator, n_features=X.shape[1]
    )
    version = hashlib.sha256(native_bytes + onnx_model.SerializeToString()).hexdigest()[:12]
    name = f"credit_{selected}"
    for key, value in (("riskstream.model", name), ("riskstream.version", version)):
        entry = onnx_model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx_bytes = onnx_model.SerializeToString()
    (out / "model.onnx").write_bytes(onnx_bytes)
    parity = _parity(onnx_bytes, selected, model, calibrator, X_te, opts.seed)

    # 8. SHAP, plots, card
    tick("SHAP global importance")
    from engine.explain.tree import TreeShap

    explainer = (
        TreeShap.lightgbm(model.booster_) if selected == "lightgbm" else TreeShap.forest(model)
    )
    sample = np.random.default_rng(opts.seed).permutation(len(X_te))[:SHAP_ROWS]
    attributions = explainer.explain(X_te[sample])
    mean_abs = np.abs(attributions.values).mean(axis=0)
    importance = sorted(
        (
            {"feature": f.name, "mean_abs_shap": float(v)}
            for f, v in zip(ds.inputs, mean_abs, strict=True)
        ),
        key=lambda d: -d["mean_abs_shap"],
    )
    plots: list[str] = []
    if opts.plots:
        tick("plots")
        from models.credit import plots as plotting

        plotting.roc(
            out / "roc.png",
            y_te,
            {f"{k} ({chosen[k]['method']})": test_pd[k][chosen[k]["method"]] for k in opts.kinds},
            "ROC, test split",
        )
        plotting.reliability_diagram(
            out / "reliability.png",
            y_te,
            {f"{selected} {m}": test_pd[selected][m] for m in calibration.METHODS},
            f"Reliability, test split (served: {chosen[selected]['method']})",
        )
        plotting.shap_summary(
            out / "shap_summary.png",
            attributions.values,
            X_te[sample],
            [f.name for f in ds.inputs],
            f"{name} {version}: SHAP ({explainer.units})",
        )
        plots = list(PLOTS)

    card = ModelCard(
        name=name,
        kind=selected,  # type: ignore[arg-type]
        version=version,
        inputs=ds.inputs,
        onnx_file="model.onnx",
        native_file=native_file,
        output=_units(selected),  # type: ignore[arg-type]
        id_column=ds.id_column,
        target=ds.target,
        extra=_card_extra(
            data_path=data_path,
            target=target,
            out=out,
            ds=ds,
            opts=opts,
            n_train=len(y_tr),
            n_test=len(y_te),
            n_folds=n_folds,
            cv=cv,
            calibrator=calibrator,
            chosen=chosen,
            selected=selected,
            test=test,
            n_features=X.shape[1],
            native_file=native_file,
            parity=parity,
            importance=importance,
            shap_info={
                "rows": len(sample),
                "units": explainer.units,
                "max_additivity_error": float(attributions.additivity_error.max()),
            },
            plots=plots,
        ),
    )
    card.save(out)
    tick("done")
    return TrainResult(card, out, time.perf_counter() - started)


def _card_extra(
    *,
    data_path: Path,
    target: str,
    out: Path,
    ds: data.Dataset,
    opts: TrainOptions,
    n_train: int,
    n_test: int,
    n_folds: int,
    cv: dict[str, Any],
    calibrator: calibration.Calibrator,
    chosen: dict[str, Any],
    selected: str,
    test: dict[str, Any],
    n_features: int,
    native_file: str,
    parity: dict[str, Any],
    importance: list[dict[str, Any]],
    shap_info: dict[str, Any],
    plots: list[str],
) -> dict[str, Any]:
    from engine import __version__
    from engine.artifacts.cards import sha256_file

    return {
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "riskstream_version": __version__,
        "command": f"riskstream credit train --data {data_path} --target {target} --out {out}",
        "training_data": {
            "file": data_path.name,
            "sha256": ds.sha256,
            "rows_read": ds.rows_read,
            "rows_used": len(ds.y),
            "positive_class": ds.positive,
            "prevalence": float(ds.y.mean()),
            "notes": ds.notes,
        },
        "preprocessing": {
            "numeric": "value as float64; missing -> NaN (trees send NaN along each split's "
            "learned default branch)",
            "categorical": "index in 'categories' (training levels, most frequent first); "
            "an unseen or rare level -> 'other_code'; missing -> NaN",
            "id_column": "kept in scores, never a feature",
        },
        "split": {
            "test_size": opts.test_size,
            "stratified": True,
            "seed": opts.seed,
            "train_rows": n_train,
            "test_rows": n_test,
            "cv_folds": n_folds,
        },
        "cv": cv,
        "calibration": {
            **calibrator.to_json(),
            "chosen_by": "lowest mean Brier score, Platt vs isotonic cross-validated on the "
            "out-of-fold scores of the training part ('none' is the reference)",
            "evidence": chosen[selected]["evidence"],
            "per_model": {k: chosen[k]["method"] for k in chosen},
        },
        "test": test,
        "metrics_notes": {
            "ece": f"{ECE_BINS} equal-width bins on [0, 1], weighted by rows",
            "ks": "max |TPR - FPR|",
            "pr_auc": "average precision",
            "test": "each model kind uncalibrated ('none') and with each calibrator",
        },
        "selected": {"model": selected, "rule": "highest mean cross-validated ROC AUC"},
        "onnx": {
            "sha256": sha256_file(out / "model.onnx"),
            "opset": export.OPSET,
            "ir_version": export.IR_VERSION,
            "input": {"name": export.INPUT, "dtype": "float64", "shape": ["N", n_features]},
            "outputs": {
                export.OUTPUT_PD: "calibrated probability of default, shape [N]",
                export.OUTPUT_SCORE: f"uncalibrated score ({_units(selected)}), shape [N, 1]",
            },
            "parity": parity,
        },
        "native": {
            "sha256": sha256_file(out / native_file),
            "format": "lightgbm text" if selected == "lightgbm" else "joblib (scikit-learn)",
            "units": _units(selected),
        },
        "global_importance": importance,
        "shap": shap_info,
        "plots": plots,
    }


def _parity(
    onnx_bytes: bytes,
    kind: str,
    model: Any,
    calibrator: calibration.Calibrator,
    X: np.ndarray,
    seed: int,
) -> dict[str, Any]:
    """ONNX pd against the native model + calibrator, on ``X`` and on ``X`` with NaNs injected."""
    session = load_session(onnx_bytes, threads=0, label="the exported credit model")
    holes = X.copy()
    holes[np.random.default_rng(seed).random(X.shape) < 0.1] = np.nan
    worst = 0.0
    for matrix in (X, holes):
        native = calibrator.apply(_score(kind, model, matrix))
        served = session.run([export.OUTPUT_PD], {export.INPUT: matrix})[0]
        worst = max(worst, float(np.max(np.abs(native - served))))
    if not worst <= PARITY_TOLERANCE:
        raise ModelMismatchError(
            f"ONNX and native probabilities differ by {worst:.3g} (> {PARITY_TOLERANCE}); "
            "the export is wrong and no model card was written"
        )
    return {"rows": 2 * len(X), "max_abs_diff": worst, "tolerance": PARITY_TOLERANCE}
