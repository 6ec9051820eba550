"""Fixtures of the deep-model tests: tiny LSTM and Transformer trained once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.deep.train import TrainOptions, TrainResult, train

#: Two epochs of tiny networks on 2013-2014: seconds (the committed models come from
#: the documented full command, `riskstream deep train --out onnx/deep`).
TINY = TrainOptions(
    train_start="2013-01-01",
    folds=(2014,),
    epochs=2,
    sizes={
        "lstm": {"hidden": 4},
        "transformer": {"d_model": 8, "heads": 2, "layers": 1, "ff": 16, "dropout": 0.0},
    },
    progress=False,
    plots=True,
)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainResult, Path]:
    out = tmp_path_factory.mktemp("deep")
    return train(TINY, out, echo=lambda line: None), out
