"""The price risk book: every symbol's online risk state, advanced one micro-batch at a time.

:class:`PriceRiskBook` composes the online components of the risk core (sequencer,
volatility model, VaR method, breach counters) over one shared slot index. It is pure:
state comes in through ``load_row`` (a callback, e.g. a Faust table lookup) and goes
out through :meth:`PriceRiskBook.rows`; nothing here knows about Kafka or Redis.

Causality, per symbol: the forecasts reported for tick ``t`` (``sigma``, ``var``,
``es``) use prices up to and including ``t`` and are for the log return from ``t`` to
the symbol's next tick. ``var_before`` is the forecast made at ``t - 1`` for the return
ending at ``t``; a breach compares that return with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.core.backtest import BreachCounters
from engine.core.keyed import KeyedBook, LoadRow
from engine.core.online import OnlineComponent
from engine.core.sequencer import PriceSequencer, Status
from engine.core.var import ParametricNormal
from engine.core.volatility import EWMAVolatility, VolatilityModel
from engine.validation import PriceColumns


@dataclass(slots=True)
class PriceStep:
    """What one micro-batch did.

    ``status`` has one entry per input tick (a :class:`~engine.core.sequencer.Status`);
    every other array has one entry per *accepted* tick, in arrival order, and
    ``accepted`` gives their positions in the input.
    """

    status: np.ndarray
    accepted: np.ndarray
    slots: np.ndarray
    returns: np.ndarray
    sigma_before: np.ndarray
    sigma: np.ndarray
    var_before: dict[float, np.ndarray]
    var: dict[float, np.ndarray]
    es_before: np.ndarray
    es: np.ndarray
    breach: dict[float, np.ndarray]
    touched: np.ndarray
    """Slots whose state changed in this batch (sorted, unique)."""


class PriceRiskBook(KeyedBook):
    """Online per-symbol risk: returns, volatility, VaR/ES, breach counts.

    Parameters
    ----------
    volatility : VolatilityModel
        The volatility model behind the published VaR.
    var_levels : sequence of float
        VaR confidence levels.
    es_level : float
        Expected-shortfall level.
    extra : tuple of OnlineComponent
        State components of add-on stages (:mod:`engine.stages`), persisted in the same rows.
    """

    def __init__(
        self,
        volatility: VolatilityModel | None = None,
        var_levels: Sequence[float] = (0.95, 0.99),
        es_level: float = 0.975,
        extra: tuple[OnlineComponent, ...] = (),
    ) -> None:
        self.sequencer = PriceSequencer()
        self.volatility = volatility if volatility is not None else EWMAVolatility()
        self.var_method = ParametricNormal(var_levels, es_level)
        self.backtest = BreachCounters(self.var_method.var_levels)
        super().__init__((self.sequencer, self.volatility, self.backtest, *extra))

    @property
    def var_levels(self) -> tuple[float, ...]:
        return self.var_method.var_levels

    @property
    def es_level(self) -> float:
        return self.var_method.es_level

    @property
    def model_name(self) -> str:
        """Name of the published risk model: volatility model and VaR method."""
        return f"{self.volatility.name}_{self.var_method.name}"

    # --- the micro-batch step ---------------------------------------------------------------

    def step(self, cols: PriceColumns, load_row: LoadRow | None = None) -> PriceStep:
        """Advance every symbol in ``cols`` by its ticks, in arrival order."""
        slots = self.slots_for(cols.symbols, load_row)
        status, returns = self.sequencer.update(
            slots, cols.ts, cols.price, cols.event_hash, cols.offset
        )
        accepted = np.flatnonzero(status == Status.ACCEPTED)
        acc_slots = slots[accepted]
        acc_returns = returns[accepted]
        sigma_before, sigma = self.volatility.update(acc_slots, acc_returns)
        var_before = self.var_method.var(sigma_before)
        breach = self.backtest.update(acc_slots, acc_returns, var_before)
        self.meta["partition"][slots] = cols.partition
        touched = np.unique(slots[status != Status.REPLAY])
        return PriceStep(
            status=status,
            accepted=accepted,
            slots=acc_slots,
            returns=acc_returns,
            sigma_before=sigma_before,
            sigma=sigma,
            var_before=var_before,
            var=self.var_method.var(sigma),
            es_before=self.var_method.es(sigma_before),
            es=self.var_method.es(sigma),
            breach=breach,
            touched=touched,
        )
