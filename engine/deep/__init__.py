"""Deep volatility models (LSTM, Transformer) served through onnxruntime.

:mod:`engine.core.volatility.deep_features` computes the per-tick feature vectors (the same code builds
the training windows and the stream's windows), :mod:`engine.deep.card` is the model card
that ties an ONNX file to those features, :mod:`engine.deep.model` loads and checks a
model and runs one batched inference call. The online component that keeps each symbol's
rolling window lives in :mod:`engine.core.volatility.deep`.
"""

from __future__ import annotations

from engine.core.volatility.deep_features import FEATURES, FeatureParams
from engine.deep.card import DeepCard

__all__ = ["FEATURES", "DeepCard", "FeatureParams"]
