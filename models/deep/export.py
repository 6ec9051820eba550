"""ONNX export of the trained networks, their cards, learning curves and the training report.

Each model goes to ``out/<name>/model.onnx`` as one self-contained file (the dynamo
exporter with ``external_data=False``; a ``.onnx.data`` file beside it is an error), with
its version and input names in the graph's metadata. Export fails unless onnxruntime and
torch agree to 1e-5 on the test windows.
"""

from __future__ import annotations

import io
import platform
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.artifacts.cards import sha256_file
from engine.artifacts.onnx_session import load_session
from engine.core.volatility.deep_features import FEATURES
from engine.deep.card import INPUT_NAME, ONNX_FILE, OUTPUT_NAME, DeepCard

if TYPE_CHECKING:
    from models.deep.train import Fitted, TrainResult

OPSET = 18
PARITY = 1e-5


def export_onnx(
    fitted: Fitted,
    path: Path,
    *,
    name: str,
    version: str,
    inputs: tuple[str, ...] = FEATURES,
) -> None:
    """Write the network as one ONNX file with riskstream metadata."""
    import contextlib
    import logging
    import warnings

    import torch

    import onnx

    net = fitted.net.eval()
    example = torch.zeros(2, fitted.params.window, len(FEATURES))
    batch = torch.export.Dim("batch", min=1)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed"
    with (
        contextlib.redirect_stdout(io.StringIO()),  # the exporter prints its progress
        warnings.catch_warnings(),  # torch.export's internal deprecation notes
    ):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            net,
            (example,),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},),
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    assert program is not None  # dynamo=True always returns a program
    model = program.model_proto
    for key, value in (
        ("riskstream.name", name),
        ("riskstream.version", version),
        ("riskstream.inputs", ",".join(inputs)),
    ):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path), save_as_external_data=False)
    leftover = path.with_name(path.name + ".data")
    if leftover.exists():
        raise RuntimeError(f"{leftover}: the exporter wrote external data; expected one file")


def parity(fitted: Fitted, path: Path, X: np.ndarray) -> float:
    """Largest absolute difference between torch and onnxruntime outputs on windows ``X``."""
    import torch

    from models.deep.train import scale

    scaled = scale(X, fitted.mean, fitted.std)
    with torch.no_grad():
        expected = fitted.net.eval()(torch.from_numpy(scaled)).numpy()
    session = load_session(path, threads=1)
    got = session.run([OUTPUT_NAME], {INPUT_NAME: scaled})[0]
    return float(np.max(np.abs(got - expected))) if len(X) else 0.0


def make_card(result: TrainResult, kind: str, path: Path, max_diff: float) -> DeepCard:
    import onnxruntime
    import torch

    import onnx
    from models.deep.train import options_json, today

    o = result.options
    fitted = result.final[kind]
    name = f"{kind}{o.suffix}"
    target = "squared return" if o.target == "returns" else "realized variance"
    folds = [
        {
            "validation_year": year,
            "best_val_qlike": float(min(f.val_curve)),
            "val_qlike_at_chosen_epoch": float(f.val_curve[result.chosen_epochs[kind] - 1]),
        }
        for year, f in zip(o.folds, result.folds[kind], strict=True)
    ]
    return DeepCard(
        name=name,
        kind=kind,
        version=f"{name}-{o.version}-seed{o.seed}",
        inputs=o.inputs,
        mean=tuple(float(x) for x in fitted.mean),
        std=tuple(float(x) for x in fitted.std),
        target_mean=float(fitted.target_mean + fitted.bias),
        target_std=float(fitted.target_std),
        features=fitted.params,
        opset=OPSET,
        extra={
            "onnx": {
                "sha256": sha256_file(path),
                "ir_version": int(onnx.load(str(path)).ir_version),
                "external_data": False,
                "parity_max_abs_diff": max_diff,
            },
            "architecture": {"network": kind, **o.sizes[kind]},
            "training": {
                "data": {"file": Path(result.series.source).name, "sha256": result.series.sha256},
                "train_period": [
                    o.train_start or str(result.series.dates[0].date()),
                    o.train_end,
                ],
                "test_period": [o.test_start, o.test_end],
                "walk_forward": {"validation_years": list(o.folds), "folds": folds},
                "epochs": result.chosen_epochs[kind],
                "loss": o.loss,
                "seed": o.seed,
                "options": options_json(o),
                "seconds": round(result.seconds[kind], 1),
                "trained_at": today(),
                "torch": torch.__version__,
                "onnxruntime": onnxruntime.__version__,
                "python": platform.python_version(),
            },
            "metrics": {
                "test": result.test[kind],
                "test_garch_feature": result.baseline_test,
                "note": f"variance forecasts against the next day's {target} on the test period "
                "(targets dated in it); dm_* is Diebold-Mariano on QLIKE against the fixed-parameter "
                "GARCH(1,1) feature; the full comparison is `riskstream deep compare`",
            },
            "command": "riskstream deep train --out onnx/deep"
            + (
                f" --models lstm --target returns --epochs {o.epochs}"
                if o.target == "returns"
                else ""
            ),
        },
    )


def export_all(result: TrainResult, out: Path) -> list[Path]:
    """Export every trained model with its card, plus the report and learning curves."""
    from models.deep.data import make_samples
    from models.deep.report import write_report

    o = result.options
    written: list[Path] = []
    for kind, fitted in result.final.items():
        name = f"{kind}{o.suffix}"
        directory = out / name
        path = directory / ONNX_FILE
        version = f"{name}-{o.version}-seed{o.seed}"
        export_onnx(fitted, path, name=name, version=version, inputs=o.inputs)
        test = make_samples(result.series, fitted.params).between(o.test_start, o.test_end)
        diff = parity(fitted, path, test.X)
        if not diff <= PARITY:
            raise RuntimeError(f"{kind}: onnxruntime differs from torch by {diff:.2e} > {PARITY}")
        card = make_card(result, kind, path, diff)
        written += [path, card.save(directory)]
    # the returns-only variant's report goes beside its model, not over the RV models' one
    written += write_report(
        result, out / f"{next(iter(result.final))}{o.suffix}" if o.suffix else out
    )
    return written
