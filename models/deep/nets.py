"""The two networks: both map a standardised window ``[batch, window, F]`` to ``y[batch]``.

``y`` is the standardised log-variance forecast for the next day (the card turns it into
decimal^2 units). Both are small on purpose: about 3,700 training days.
"""

from __future__ import annotations

import torch
from torch import nn


class LSTMNet(nn.Module):
    """One LSTM layer over the window; a linear head on the last hidden state."""

    def __init__(self, features: int, hidden: int = 32, layers: int = 1, dropout: float = 0.0):
        super().__init__()
        self.lstm = nn.LSTM(
            features,
            hidden,
            num_layers=layers,
            batch_first=True,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1]).squeeze(-1)


class TransformerNet(nn.Module):
    """A small pre-norm Transformer encoder with learned positions; the last position's output."""

    def __init__(
        self,
        features: int,
        window: int,
        d_model: int = 32,
        heads: int = 4,
        layers: int = 1,
        ff: int = 64,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.embed = nn.Linear(features, d_model)
        self.position = nn.Parameter(torch.zeros(1, window, d_model))
        layer = nn.TransformerEncoderLayer(
            d_model, heads, ff, dropout=dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, 1)
        nn.init.normal_(self.position, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.embed(x) + self.position)
        return self.head(self.norm(h[:, -1])).squeeze(-1)


def build(kind: str, features: int, window: int, size: dict[str, int]) -> nn.Module:
    """A network by kind (``lstm`` or ``transformer``) with the given size parameters."""
    if kind == "lstm":
        return LSTMNet(features, **size)
    if kind == "transformer":
        return TransformerNet(features, window, **size)
    raise ValueError(f"unknown network kind {kind!r}; choose lstm or transformer")
