"""What the stream publishes as the latest state of a symbol or a customer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.boundary.timeutil import format_ts
from engine.config import level_label
from engine.stages import LatestState

RISK_KEY = "riskstream:risk:{}"
CUSTOMER_KEY = "riskstream:customer:{}"


@dataclass(frozen=True, slots=True)
class RiskSnapshot:
    """Latest risk of one symbol: what ``riskstream:risk:<symbol>`` and ``risk.updates`` carry.

    ``sigma``, ``var`` and ``es`` are forecasts for the symbol's next log return, made
    with ticks up to and including the one at ``ts`` (NaN while the symbol warms up).
    ``n_ticks`` counts the symbol's accepted ticks; it only grows, so a consumer can
    discard a snapshot older than the one it has.
    """

    symbol: str
    ts: int
    price: float
    sigma: float
    var: dict[float, float]
    es_level: float
    es: float
    n_ticks: int
    model: str
    model_version: str
    backtest: dict[float, tuple[int, int]]
    zones: dict[float, str] | None = None
    """Traffic light of the rolling backtest window per VaR level (``""`` until the window is full)."""
    fit_status: str = ""
    """Parameters of the published method's fitted volatility model: ``fitted``,
    ``last_good`` (the latest fit was rejected), ``fallback`` (EWMA in its place), ``none``
    (no fit yet); ``""`` for models without fits (EWMA, historical simulation)."""
    fit_reason: str = ""
    """The rule the latest rejected fit broke (:mod:`engine.core.volatility.validation`)."""
    live_method: str = ""
    """With the ``champion`` method: the candidate whose VaR and ES are published now."""
    live_reason: str = ""
    """Why it is live (``initial``, ``lower_loss`` or ``red_zone``, with the scores behind it)."""
    intraday: dict[str, float] | None = None
    """Live realised-variance state of the symbol's trading session, after the tick at ``ts``
    (:meth:`engine.core.volatility.session_rv.SessionRVTracker.live`): ``rv_session`` (sum
    of squared intraday log returns so far, decimal^2), ``rv_session_returns``, ``rv_gap``
    (log return into the session) and ``rv_last`` (the last closed session's realised
    variance, decimal^2, as fed to HAR-RV and the deep models; NaN: it had none)."""

    def fields(self) -> dict[str, str]:
        """Flat text fields for the Redis hash."""
        out = {
            "symbol": self.symbol,
            "ts": format_ts(self.ts),
            "price": repr(self.price),
            "sigma": repr(self.sigma),
            f"es_{level_label(self.es_level)}": repr(self.es),
            "n_ticks": str(self.n_ticks),
            "model": self.model,
            "model_version": self.model_version,
        }
        for level, value in self.var.items():
            out[f"var_{level_label(level)}"] = repr(value)
        for level, (tested, violated) in self.backtest.items():
            out[f"tested_{level_label(level)}"] = str(tested)
            out[f"breaches_{level_label(level)}"] = str(violated)
        for level, zone in (self.zones or {}).items():
            out[f"zone_{level_label(level)}"] = zone
        if self.fit_status:
            out["fit_status"] = self.fit_status
            out["fit_reason"] = self.fit_reason
        if self.live_method:
            out["live_method"], out["live_reason"] = self.live_method, self.live_reason
        for name, value in (self.intraday or {}).items():
            out[name] = str(int(value)) if name == "rv_session_returns" else repr(float(value))
        return out

    def latest(self) -> LatestState:
        """The ``riskstream:risk:<symbol>`` hash."""
        return LatestState(RISK_KEY.format(self.symbol), "n_ticks", self.n_ticks, self.fields())

    def to_json(self) -> dict[str, Any]:
        """A JSON document (``risk.updates``): numbers as numbers, NaN as null."""
        doc: dict[str, Any] = {
            "symbol": self.symbol,
            "ts": format_ts(self.ts),
            "price": self.price,
            "sigma": _num(self.sigma),
            f"es_{level_label(self.es_level)}": _num(self.es),
            "n_ticks": self.n_ticks,
            "model": self.model,
            "model_version": self.model_version,
        }
        for level, value in self.var.items():
            doc[f"var_{level_label(level)}"] = _num(value)
        zones = self.zones or {}
        if self.fit_status:
            doc["fit_status"], doc["fit_reason"] = self.fit_status, self.fit_reason
        if self.live_method:
            doc["live_method"], doc["live_reason"] = self.live_method, self.live_reason
        for name, value in (self.intraday or {}).items():
            doc[name] = int(value) if name == "rv_session_returns" else _num(float(value))
        doc["backtest"] = {
            level_label(k): {"tested": t, "breaches": x, "zone": zones.get(k) or None}
            for k, (t, x) in self.backtest.items()
        }
        return doc


def _num(value: float) -> float | None:
    return None if value != value else value


@dataclass(frozen=True, slots=True)
class CustomerSnapshot:
    """A customer's transaction profile after a micro-batch (amounts in currency units)."""

    customer_id: str
    count: int
    mean_amount: float
    std_amount: float
    first_ts: int
    last_ts: int

    def fields(self) -> dict[str, str]:
        return {
            "customer_id": self.customer_id,
            "count": str(self.count),
            "mean_amount": repr(self.mean_amount),
            "std_amount": repr(self.std_amount),
            "first_ts": format_ts(self.first_ts),
            "last_ts": format_ts(self.last_ts),
        }

    def latest(self) -> LatestState:
        """The ``riskstream:customer:<id>`` hash."""
        return LatestState(
            CUSTOMER_KEY.format(self.customer_id), "count", self.count, self.fields()
        )
