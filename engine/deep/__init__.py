"""Deep volatility models (LSTM, Transformer) served through onnxruntime.

:mod:`engine.deep.features` computes the per-tick feature vectors (the same code builds
the training windows and the stream's windows), :mod:`engine.deep.card` is the model card
that ties an ONNX file to those features, :mod:`engine.deep.model` loads and checks a
model and runs one batched inference call. The online component that keeps each symbol's
rolling window lives in :mod:`engine.core.volatility.deep`.
"""

from __future__ import annotations

from engine.deep.card import DeepCard
from engine.deep.features import FEATURES, FeatureParams

__all__ = ["FEATURES", "DeepCard", "FeatureParams"]
