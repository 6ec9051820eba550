"""The interface every online volatility model implements."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from engine.core.online import OnlineComponent


class VolatilityModel(OnlineComponent):
    """A per-symbol, one-step-ahead volatility forecaster, updated per tick.

    Units: log returns in decimals (a 1% move is 0.01); sigma in the same units, for
    the horizon of one tick of that symbol.
    """

    #: Version of the model's *parameters and equations*, reported with every alert.
    model_version: ClassVar[str] = "1"

    def update(self, slots: np.ndarray, returns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Consume one micro-batch of returns, in arrival order.

        Returns ``(sigma_before, sigma_after)``: for observation ``i``, the forecast of
        its return made with data up to ``i - 1``, and the forecast of the *next* return
        made with data up to and including ``i``. NaN while a symbol warms up. A NaN
        return (a symbol's first tick) leaves the state unchanged.
        """
        raise NotImplementedError
