"""Settings, read from the environment once, at the entry point.

Settings are grouped by concern: ``settings.kafka.bootstrap``, ``settings.risk.var_levels``,
``settings.anomaly.tx_threshold``. Every setting is still one environment variable named by
its *flat name*, ``RISKSTREAM_<FLAT_NAME>`` (upper case): the group's prefix (``kafka_``,
``redis_``, ``drift_``, ``credit_``, ``shap_``, ``anomaly_``; none for the others) followed
by the field's name, so ``settings.kafka.bootstrap`` is ``RISKSTREAM_KAFKA_BOOTSTRAP`` and
``settings.risk.var_levels`` is ``RISKSTREAM_VAR_LEVELS``. ``Settings(kafka_bootstrap=...,
partitions=3)`` takes flat names too and routes each into its group; unknown names are
ignored, as they are in the environment.

:class:`Settings` and its groups are frozen: build it in the CLI and pass it down; nothing
below the entry point reads the environment.

Secrets (Kafka SASL password, Redis password, a Redis URL carrying credentials) are
:class:`pydantic.SecretStr`: their ``repr`` and ``str`` print ``**********`` and
:meth:`Settings.describe` redacts them, so logging settings never leaks them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from engine.core.riskmetrics import DEFAULT_LAMBDA, DEFAULT_WARMUP

if TYPE_CHECKING:
    from engine.core.spec import RiskSpec

ENV_PREFIX = "RISKSTREAM_"

#: Lists: the environment's comma-separated text is split by the groups' validators.
Levels = tuple[float, ...]
Names = tuple[str, ...]


def _split_levels(value: object) -> object:
    """Accept ``"0.95,0.99"`` as well as a JSON list or a tuple."""
    if isinstance(value, str):
        text = value.strip().strip("[]")
        return tuple(float(part) for part in text.split(",") if part.strip())
    return value


def _split_names(value: object) -> object:
    """Accept ``"ewma,garch"`` as well as a JSON list or a tuple."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.strip("[]").split(",") if part.strip())
    return value


@functools.cache
def level_label(level: float) -> str:
    """Field-name suffix for a confidence level: 0.95 -> ``"95"``, 0.975 -> ``"975"``.

    >>> level_label(0.99), level_label(0.975), level_label(0.999)
    ('99', '975', '999')
    """
    text = f"{level:.6f}".rstrip("0")
    return text.split(".", 1)[1]


def _group_config(prefix: str = "") -> ConfigDict:
    """Config of a group of settings whose flat names are ``prefix + field``.

    The flat name is each field's validation alias (the group accepts either name), so a
    validation error's location names the environment variable's suffix.
    """
    return ConfigDict(
        frozen=True,
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        alias_generator=AliasGenerator(validation_alias=lambda name: prefix + name),
    )


class SettingsGroup(BaseModel):
    """Base of the groups of :class:`Settings`; each sets its config with :func:`_group_config`."""


_Group = TypeVar("_Group", bound=SettingsGroup)


def _defaults(group: type[_Group]) -> Callable[[], _Group]:
    """Factory of a group with every setting at its default (validated when called)."""
    return lambda: group.model_validate({})


class KafkaSettings(SettingsGroup):
    """Kafka: brokers, client security and consumer-group liveness."""

    model_config = _group_config("kafka_")

    bootstrap: str | None = None
    """``RISKSTREAM_KAFKA_BOOTSTRAP``: ``host:port[,host:port]``. Unset means embedded mode."""
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    """``RISKSTREAM_KAFKA_SECURITY_PROTOCOL``."""
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    """``RISKSTREAM_KAFKA_SASL_MECHANISM``."""
    sasl_username: str | None = None
    """``RISKSTREAM_KAFKA_SASL_USERNAME``."""
    sasl_password: SecretStr | None = None
    """``RISKSTREAM_KAFKA_SASL_PASSWORD``: never logged."""
    ssl_cafile: Path | None = None
    """``RISKSTREAM_KAFKA_SSL_CAFILE``: CA bundle for SSL and SASL_SSL."""
    session_timeout_s: float = Field(60.0, ge=6.0, le=300.0)
    """``RISKSTREAM_KAFKA_SESSION_TIMEOUT_S``: how long the group waits for a silent worker
    (crashed, paused) before its partitions move to the others; heartbeats go every third
    of it, at most every 3 s. Lower it for faster fail-over (the broker's minimum is 6 s)."""


class RedisSettings(SettingsGroup):
    """Redis: the output store and the credentials to reach it."""

    model_config = _group_config("redis_")

    url: SecretStr | None = None
    """``RISKSTREAM_REDIS_URL``, e.g. ``redis://127.0.0.1:6379/0``. Unset: no Redis."""
    username: str | None = None
    """``RISKSTREAM_REDIS_USERNAME``: ACL user, overrides the URL's."""
    password: SecretStr | None = None
    """``RISKSTREAM_REDIS_PASSWORD``: overrides the URL's password; never logged."""
    ssl_cafile: Path | None = None
    """``RISKSTREAM_REDIS_SSL_CAFILE``: CA bundle that verifies a ``rediss://`` server
    (default: the system CAs)."""

    @property
    def dsn(self) -> str | None:
        """The Redis URL with credentials, for the client only. Never log it."""
        return self.url.get_secret_value() if self.url else None


class TopologySettings(SettingsGroup):
    """Topology: the consumer group, the topics riskstream creates, and start-up."""

    model_config = _group_config()

    app_id: str = "riskstream"
    """``RISKSTREAM_APP_ID``: Kafka consumer group and prefix of state changelog topics."""
    partitions: int = Field(8, ge=1, le=1024)
    """``RISKSTREAM_PARTITIONS``: partitions of the topics riskstream creates."""
    replication_factor: int = Field(1, ge=1, le=16)
    """``RISKSTREAM_REPLICATION_FACTOR``: replication of the topics riskstream creates."""
    group_instance_id: str | None = Field(None, min_length=1, max_length=249)
    """``RISKSTREAM_GROUP_INSTANCE_ID``: static group membership (Kafka KIP-345). A worker
    restarted with the same id, after a crash too, takes its partitions back at once,
    without a rebalance and without waiting for the session timeout. Give every worker of
    a group its own stable id (e.g. a StatefulSet pod name). Unset: dynamic membership."""
    startup_timeout_s: float = Field(60.0, ge=0.0)
    """``RISKSTREAM_STARTUP_TIMEOUT_S``: how long a starting worker waits for Kafka and Redis,
    asking again with backoff and one log line per attempt, before it exits with status 3;
    0 tries once."""


class RiskSettings(SettingsGroup):
    """Risk model: volatility models, VaR methods, levels, windows, refits, champion."""

    model_config = _group_config()

    #: Fields the price book's :class:`~engine.core.spec.RiskSpec` does not hold: read by
    #: the alerting stage, the realised-variance sessions and the fit pool.
    NOT_IN_SPEC: ClassVar[frozenset[str]] = frozenset(
        {
            "alert_levels",
            "rv_calendar",
            "rv_min_returns",
            "fit_workers",
            "fit_timeout_ms",
            "late_fits",
            "bars",
            "var_horizon",
        }
    )

    ewma_lambda: float = DEFAULT_LAMBDA
    """``RISKSTREAM_EWMA_LAMBDA``: RiskMetrics decay, strictly between 0 and 1."""
    warmup: int = Field(DEFAULT_WARMUP, ge=2)
    """``RISKSTREAM_WARMUP``: returns seen before a symbol's first VaR forecast."""
    var_levels: Levels = (0.95, 0.99)
    """``RISKSTREAM_VAR_LEVELS``: VaR confidence levels, e.g. ``0.95,0.99``."""
    es_level: float = 0.975
    """``RISKSTREAM_ES_LEVEL``: expected-shortfall confidence level."""
    alert_levels: Levels = (0.99,)
    """``RISKSTREAM_ALERT_LEVELS``: VaR levels whose breaches raise alerts (subset of var_levels)."""
    vol_models: Names = ("ewma", "garch", "gjr", "har")
    """``RISKSTREAM_VOL_MODELS``: volatility models to run, of ``ewma,garch,gjr,har`` and the
    opt-in ``lstm,transformer`` (ONNX, need realized variance) and ``combo`` (their average)."""
    deep_model_dir: Path | None = None
    """``RISKSTREAM_DEEP_MODEL_DIR``: directory of the deep models (``<dir>/lstm``,
    ``<dir>/transformer``, from ``riskstream deep train``). Unset: the committed ``onnx/deep``."""
    var_method: str = "champion"
    """``RISKSTREAM_VAR_METHOD``: the published VaR method (``<vol>-<normal|t|fhs|cf|mix>``,
    ``hs``, ``avg`` or ``champion``). The default, ``champion``, publishes per symbol the candidate
    (``RISKSTREAM_CHAMPION_METHODS``, ``gjr-mix`` first) its rolling backtests judge best,
    and replaces one in the red zone at once (docs/benchmarks/breadth.md); keep it equal to
    ``engine.core.spec.DEFAULT_METHOD`` (a test checks)."""
    average_methods: Names = ("gjr-mix", "ewma-fhs")
    """``RISKSTREAM_AVERAGE_METHODS``: the methods the ``avg`` method averages (its VaR and
    ES are the equal-weight means of theirs; comma-separated, two or more; equal to
    ``engine.core.var.average.AVERAGE_METHODS``, a test checks)."""
    champion_methods: Names = ("gjr-mix", "gjr-fhs", "gjr-t")
    """``RISKSTREAM_CHAMPION_METHODS``: the candidates of the ``champion`` method, the first
    live until another is judged better (comma-separated; equal to
    ``engine.core.spec.CHAMPION_METHODS``, a test checks)."""
    champion_loss: Literal["pinball", "fz0"] = "pinball"
    """``RISKSTREAM_CHAMPION_LOSS``: how candidates are scored: ``pinball`` (quantile loss of
    the 99% VaR) or ``fz0`` (Fissler-Ziegel loss of VaR and ES at the ES level)."""
    champion_window: int = Field(250, ge=20)
    """``RISKSTREAM_CHAMPION_WINDOW``: returns per candidate's scoring and traffic-light window."""
    champion_margin: float = Field(0.05, ge=0.0)
    """``RISKSTREAM_CHAMPION_MARGIN``: how much lower a challenger's mean loss must be (a
    fraction of the live method's for ``pinball``, absolute for ``fz0``)."""
    champion_patience: int = Field(250, ge=1)
    """``RISKSTREAM_CHAMPION_PATIENCE``: consecutive returns a challenger must lead by the
    margin before it goes live (a live method in the red zone is replaced at once)."""
    residual_zeros: Literal["keep", "skip"] = "keep"
    """``RISKSTREAM_RESIDUAL_ZEROS``: zero returns (stale prices) in the standardised-residual
    windows of the ``fhs``, ``cf`` and EWMA/HAR ``t`` methods: ``keep`` or ``skip``."""
    var_window: int = Field(1000, ge=20)
    """``RISKSTREAM_VAR_WINDOW``: historical / filtered-historical window, in returns."""
    var_min_obs: int = Field(250, ge=10)
    """``RISKSTREAM_VAR_MIN_OBS``: returns before empirical quantiles are reported."""
    garch_window: int = Field(1000, ge=100)
    """``RISKSTREAM_GARCH_WINDOW``: GARCH/GJR estimation window, in returns."""
    har_window: int = Field(1000, ge=100)
    """``RISKSTREAM_HAR_WINDOW``: HAR-RV estimation window, in observations."""
    refit_first: int = Field(250, ge=50)
    """``RISKSTREAM_REFIT_FIRST``: returns before a model's first fit."""
    refit_every: int = Field(20, ge=1)
    """``RISKSTREAM_REFIT_EVERY``: sessions (or returns, see ``RISKSTREAM_REFIT_CLOCK``)
    between a symbol's GARCH/GJR refits: a month of trading sessions
    (docs/benchmarks/breadth.md). Each refit costs 10-30 ms of arch CPU per model in the
    fit pool, so on the sessions clock a tick feed costs a fit per symbol and model every
    20 sessions however fast it ticks (docs/operations/scaling.md)."""
    refit_delay: int = Field(5, ge=0)
    """``RISKSTREAM_REFIT_DELAY``: sessions (or returns) between a fit's request and its use:
    a fit requested in session d is used from the first return of session d + delay (0:
    at the request, which makes the stream wait for every fit; fits run off the hot path
    otherwise)."""
    refit_clock: Literal["returns", "sessions"] = "sessions"
    """``RISKSTREAM_REFIT_CLOCK``: what refit_every and refit_delay count for GARCH and GJR:
    ``sessions`` of the symbol's trading calendar (RISKSTREAM_RV_CALENDAR; a daily-close
    feed has one return per session, so both clocks give the same numbers there) or
    ``returns``. HAR-RV counts its realised-variance observations, one per session."""
    rv_calendar: str = "auto"
    """``RISKSTREAM_RV_CALENDAR``: trading sessions the engine computes realised variance over
    when the input carries none (engine/offline/intraday.py): auto (per symbol: XNYS while it ticks
    only in NYSE sessions, else 24/5 with no weekend tick, else 24/7), 24/7, 24/5 (whole UTC
    days) or an exchange-calendars code such as XNYS or XLON."""
    rv_min_returns: int = Field(10, ge=1)
    """``RISKSTREAM_RV_MIN_RETURNS``: fewest intraday returns for a session to have a realised
    variance; sparser sessions have none, and HAR-RV and the deep models skip them."""
    bars: Literal["tick", "session"] = "tick"
    """``RISKSTREAM_BARS``: what one step of the per-symbol models is. ``tick``: every record
    is one return (right for daily-close feeds). ``session``: the models step on session
    close-to-close log returns, sessions from ``RISKSTREAM_RV_CALENDAR``; a session closes at
    the first tick of a later one, or at once on a tick at or after its scheduled close, and
    intraday ticks are judged against the VaR published at the last close
    (docs/models/horizon.md)."""
    var_horizon: int = Field(1, ge=1, le=250)
    """``RISKSTREAM_VAR_HORIZON``: the published VaR and ES are for the log return over the
    next this many steps (sessions with ``RISKSTREAM_BARS=session``): EWMA and HS scale by the
    square root of the horizon, GARCH/GJR by their h-step variance forecasts
    (docs/models/horizon.md). Breach alerts and the stream's backtests stay one-step."""
    backtest_methods: Names = ()
    """``RISKSTREAM_BACKTEST_METHODS``: methods backtested in the stream over rolling windows
    besides the published one, which always is (comma-separated names, or ``all``)."""
    backtest_window: int = Field(250, ge=20)
    """``RISKSTREAM_BACKTEST_WINDOW``: returns per rolling backtest window (250: Basel's year)."""
    backtest_significance: float = Field(0.05, gt=0.0, lt=0.5)
    """``RISKSTREAM_BACKTEST_SIGNIFICANCE``: a rolling test rejects, and alerts, below this p-value."""
    fit_workers: int = Field(1, ge=1, le=64)
    """``RISKSTREAM_FIT_WORKERS``: processes fitting models in the worker."""
    fit_timeout_ms: int = Field(2000, ge=1)
    """``RISKSTREAM_FIT_TIMEOUT_MS``: with ``RISKSTREAM_LATE_FITS=wait``, longest the worker
    waits for a fit that is due (from its submission): a fit not done by then is rejected with reason
    ``fit_timeout`` and the model keeps its last good fit (else EWMA-t), so a slow fit or
    a long fit queue never holds the stream up for longer."""
    late_fits: Literal["defer", "wait"] = "defer"
    """``RISKSTREAM_LATE_FITS``: what the worker does when a fit is due (its switch point
    has come) and not done. ``defer`` (the default): nothing waits; the model keeps its
    parameters (a model awaiting its first fit runs on EWMA-t) and the fit takes effect at
    its first switch point after it is done (the symbol's next return for a first fit,
    the first return of a later session for a refit), so the stream never blocks on the
    fit pool. On a live feed a refit has a session to finish; first fits have
    ``refit_delay`` returns, so symbols that start together have theirs deferred by the
    seconds the pool needs. A replay of a backlog asks for fits faster than a pool can
    give them. Deferred fits make the numbers depend on timing (the offline run installs
    every fit on time).
    ``wait``: the stream waits for a due fit up to ``RISKSTREAM_FIT_TIMEOUT_MS``, so that
    a replay equals the offline run whenever no fit times out."""

    @field_validator("var_levels", "alert_levels", mode="before")
    @classmethod
    def _parse_levels(cls, value: object) -> object:
        return _split_levels(value)

    @field_validator(
        "vol_models", "backtest_methods", "average_methods", "champion_methods", mode="before"
    )
    @classmethod
    def _parse_names(cls, value: object) -> object:
        return _split_names(value)

    @field_validator("ewma_lambda")
    @classmethod
    def _check_lambda(cls, value: float) -> float:
        if not 0.0 < value < 1.0:
            raise ValueError("ewma_lambda must be strictly between 0 and 1")
        return value

    @field_validator("var_levels", "alert_levels")
    @classmethod
    def _check_levels(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        for level in value:
            if not 0.5 < level < 1.0:
                raise ValueError(f"confidence level {level} must be strictly between 0.5 and 1")
        return tuple(sorted(set(value)))

    @field_validator("es_level")
    @classmethod
    def _check_es_level(cls, value: float) -> float:
        if not 0.5 < value < 1.0:
            raise ValueError(f"es_level {value} must be strictly between 0.5 and 1")
        return value

    @model_validator(mode="after")
    def _risk_spec_is_valid(self) -> RiskSettings:
        if self.refit_delay > self.refit_every:
            raise ValueError(
                f"refit_delay {self.refit_delay} must not exceed refit_every {self.refit_every}"
            )
        self.spec()  # the spec validates models, method and windows (ValueError)
        return self

    @model_validator(mode="after")
    def _alert_levels_are_var_levels(self) -> RiskSettings:
        missing = set(self.alert_levels) - set(self.var_levels)
        if missing:
            raise ValueError(
                f"alert_levels {sorted(missing)} are not among var_levels {list(self.var_levels)}"
            )
        return self

    def spec(self) -> RiskSpec:
        """The price book's :class:`~engine.core.spec.RiskSpec` from these settings."""
        from engine.core.spec import RiskSpec

        return RiskSpec.from_mapping(self.model_dump(exclude=set(self.NOT_IN_SPEC)))


class DriftSettings(SettingsGroup):
    """Model drift: Page-Hinkley watch on volatility forecast losses (engine/deep/drift.py)."""

    model_config = _group_config("drift_")

    models: Names = ()
    """``RISKSTREAM_DRIFT_MODELS``: volatility models whose forecast losses (QLIKE against
    realized variance) are watched for drift per symbol (Page-Hinkley); a detection raises a
    ``drift`` alert and marks the model for refit. Empty: no drift detection."""
    threshold: float = Field(25.0, gt=0.0)
    """``RISKSTREAM_DRIFT_THRESHOLD``: Page-Hinkley threshold on the cumulative QLIKE excess."""
    delta: float = Field(0.05, ge=0.0)
    """``RISKSTREAM_DRIFT_DELTA``: Page-Hinkley tolerance (QLIKE units per observation)."""
    min_obs: int = Field(30, ge=1)
    """``RISKSTREAM_DRIFT_MIN_OBS``: observations before the detector may fire."""

    @field_validator("models", mode="before")
    @classmethod
    def _parse_names(cls, value: object) -> object:
        return _split_names(value)


class ValidationSettings(SettingsGroup):
    """Validation: the limits past which input records are rejected (dead-lettered)."""

    model_config = _group_config()

    max_future_skew_s: float = Field(300.0, ge=0)
    """``RISKSTREAM_MAX_FUTURE_SKEW_S``: events stamped further ahead of now are rejected."""
    max_record_bytes: int = Field(65_536, ge=1_024, le=16 * 1024 * 1024)
    """``RISKSTREAM_MAX_RECORD_BYTES``: longer record values are dead-lettered as
    ``too_large`` without being parsed."""


class StreamSettings(SettingsGroup):
    """Stream processing: micro-batches, fetches, checkpoints and the alert stream."""

    model_config = _group_config()

    batch_max: int = Field(20_000, ge=1)
    """``RISKSTREAM_BATCH_MAX``: most records in one micro-batch."""
    batch_within_ms: float = Field(5.0, gt=0)
    """``RISKSTREAM_BATCH_WITHIN_MS``: longest wait for more records once a micro-batch has
    started and nothing more is queued. Under load batches fill without waiting; this
    only bounds the latency added when traffic is light."""
    fetch_max_wait_ms: int = Field(1500, ge=1, le=1500)
    """``RISKSTREAM_FETCH_MAX_WAIT_MS``: longest time the broker holds a fetch for partitions
    that have nothing new (Kafka's ``fetch.max.wait.ms``; faust fixes it at 1,500), while
    no fetched record waits to be processed: a quiet worker sends a fetch this often. The
    consumer has one fetch in flight per broker, and partitions whose fetched records are
    still being processed are left out of it; while such records wait, a fetch waits at
    most 20 ms (:class:`engine.worker.batching.BusyAwareFetcher`), or the busy partitions,
    drained meanwhile, could not be fetched until the quiet ones' long poll returned
    (measured at 1,500 ms before that fetcher: a worker catching up on a backlog sat idle
    for 0.45-0.94 s every ~1.7 s)."""
    checkpoint_ms: float = Field(1000.0, ge=0)
    """``RISKSTREAM_CHECKPOINT_MS``: how often a worker checkpoints: the state rows changed
    since the last checkpoint go to the table's changelog and the input offsets they cover
    become committable (0: after every micro-batch). Outputs (Redis, ``risk.updates``) are
    written per micro-batch regardless; a crash replays at most this much input, which the
    idempotent outputs absorb. Longer intervals write each busy key's row once per interval
    instead of once per micro-batch."""
    alert_id_ttl_s: int = Field(7 * 86400, ge=60)
    """``RISKSTREAM_ALERT_ID_TTL_S``: how long Redis remembers an alert id to drop replays."""
    alerts_maxlen: int = Field(1_000_000, ge=1000)
    """``RISKSTREAM_ALERTS_MAXLEN``: approximate cap of the ``riskstream:alerts`` stream."""


class PortfolioSettings(SettingsGroup):
    """Portfolios: the reporting currency (engine/portfolio/positions.py, engine/core/portfolio.py)."""

    model_config = _group_config()

    base_currency: str = Field("USD", pattern=r"^[A-Z][A-Z0-9]{2,4}$")
    """``RISKSTREAM_BASE_CURRENCY``: the currency portfolio values, VaR and ES are reported in
    when the portfolio commands have instruments reference data (``--instruments``): every
    price is converted from its instrument's currency through the FX pair symbols'
    latest prices (direct, inverse, or crossed through USD), and the pairs are risk
    factors of the VaR. A currency without a rate is reported (``fx_missing``), never
    taken at 1. ISO 4217 code (``USD``, ``EUR``, ``GBP``...)."""


class CreditSettings(SettingsGroup):
    """Credit risk: the PD model and its alerts (engine/credit)."""

    model_config = _group_config("credit_")

    enabled: bool = True
    """``RISKSTREAM_CREDIT_ENABLED``: score ``credit_review`` transactions with the credit model."""
    model_dir: Path | None = None
    """``RISKSTREAM_CREDIT_MODEL_DIR``: a ``riskstream credit train --out`` directory. Unset: the
    committed ``onnx/credit`` model when present (else credit scoring is off, with a warning)."""
    lgd: float = Field(0.45, gt=0.0, le=1.0)
    """``RISKSTREAM_CREDIT_LGD``: loss given default, a fraction of the exposure (expected loss
    = PD x LGD x exposure). Default 0.45, the Basel foundation-IRB value for senior unsecured claims."""
    pd_limit: float = Field(0.5, gt=0.0, lt=1.0)
    """``RISKSTREAM_CREDIT_PD_LIMIT``: a ``credit_pd`` alert fires when a customer's PD rises
    above this probability."""
    el_limit: float = Field(50_000.0, gt=0.0)
    """``RISKSTREAM_CREDIT_EL_LIMIT``: a ``credit_el`` alert fires when a customer's expected
    loss rises above this amount (the exposure's currency units)."""
    exposure_field: str = "exposure"
    """``RISKSTREAM_CREDIT_EXPOSURE_FIELD``: the transaction field holding the exposure at
    default (the credit line); a review without it uses its ``amount``."""


class ShapSettings(SettingsGroup):
    """Explanations: SHAP attributions of alerts (engine/explain)."""

    model_config = _group_config("shap_")

    workers: int = Field(1, ge=1, le=16)
    """``RISKSTREAM_SHAP_WORKERS``: threads computing SHAP explanations for alerts."""
    max_pending: int = Field(10_000, ge=1)
    """``RISKSTREAM_SHAP_MAX_PENDING``: alerts that may wait for explanations before the
    worker slows consumption (backpressure; nothing is dropped)."""
    top_k: int = Field(5, ge=1, le=100)
    """``RISKSTREAM_SHAP_TOP_K``: attributions carried by an alert (largest |SHAP| first)."""
    cache_ttl_s: int = Field(7 * 86400, ge=60)
    """``RISKSTREAM_SHAP_CACHE_TTL_S``: lifetime of cached explanations in Redis."""


class AnomalySettings(SettingsGroup):
    """Anomaly detection: price and transaction detectors (engine/anomaly)."""

    model_config = _group_config("anomaly_")

    enabled: bool = True
    """``RISKSTREAM_ANOMALY_ENABLED``: score prices and transactions for anomalies in the stream."""
    price_detector: str = "robust"
    """``RISKSTREAM_ANOMALY_PRICE_DETECTOR``: robust (default, the evaluation's choice),
    iforest, lof, autoencoder, hst or ensemble."""
    tx_detector: str = "gbm"
    """``RISKSTREAM_ANOMALY_TX_DETECTOR``: gbm (default: gradient-boosted trees on delayed
    labels, the evaluation's choice), robust, iforest, lof, autoencoder or ensemble."""
    price_threshold: float = Field(0.9999, ge=0.5, lt=1.0)
    """``RISKSTREAM_ANOMALY_PRICE_THRESHOLD``: alert when a tick's calibrated score reaches
    this (0.9999: one calm tick in 10,000); one alert per episode."""
    tx_threshold: float = Field(0.99, ge=0.5, lt=1.0)
    """``RISKSTREAM_ANOMALY_TX_THRESHOLD``: alert when a transaction's calibrated score
    reaches this (0.99: the top 1% of the training week's traffic, about 100 a day on the
    fraud-handbook data)."""
    model_dir: Path | None = None
    """``RISKSTREAM_ANOMALY_MODEL_DIR``: root of ``riskstream anomaly train`` model
    directories. Unset: the committed ``onnx/anomaly`` (without it, detectors that need a
    model are off, with a warning)."""
    calendar: str = "auto"
    """``RISKSTREAM_ANOMALY_CALENDAR``: trading calendar the price anomaly features measure
    gaps on (engine/anomaly/sessions.py): auto (per symbol: XNYS while it ticks only in its
    sessions, then 24/5 after a weekday tick outside them, then 24/7 after a weekend
    tick), 24/5, 24/7, or an exchange-calendars code such as XNYS or XLON."""
    label_delay_days: int = Field(7, ge=1, le=90)
    """``RISKSTREAM_ANOMALY_LABEL_DELAY_DAYS``: days before a transaction's fraud label
    (field ``tx_fraud``) may feed terminal risk."""


class OperationsSettings(SettingsGroup):
    """Operations: metrics endpoint, logging and local state."""

    model_config = _group_config()

    metrics_host: str = "127.0.0.1"
    """``RISKSTREAM_METRICS_HOST``: Prometheus endpoint interface (loopback by default)."""
    metrics_port: int = Field(9308, ge=0, le=65535)
    """``RISKSTREAM_METRICS_PORT``: Prometheus endpoint port; 0 disables it."""
    metrics_max_symbols: int = Field(100, ge=0)
    """``RISKSTREAM_METRICS_MAX_SYMBOLS``: symbols (the first seen) that get per-symbol
    volatility, VaR and ES gauges; 0 exports none (bounds the series count)."""
    log_format: Literal["text", "json"] = "text"
    """``RISKSTREAM_LOG_FORMAT``."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """``RISKSTREAM_LOG_LEVEL``."""
    data_dir: Path = Path(".run/worker")
    """``RISKSTREAM_DATA_DIR``: the Faust worker's local data directory."""


#: The groups of :class:`Settings`, by attribute name (``settings.kafka`` ...).
GROUPS: dict[str, type[SettingsGroup]] = {
    "kafka": KafkaSettings,
    "redis": RedisSettings,
    "topology": TopologySettings,
    "risk": RiskSettings,
    "drift": DriftSettings,
    "validation": ValidationSettings,
    "stream": StreamSettings,
    "portfolio": PortfolioSettings,
    "credit": CreditSettings,
    "shap": ShapSettings,
    "anomaly": AnomalySettings,
    "operations": OperationsSettings,
}


def _flat_name(field: FieldInfo, name: str) -> str:
    alias = field.validation_alias
    return alias if isinstance(alias, str) else name


#: Every setting's flat name (``RISKSTREAM_<FLAT_NAME>`` in upper case) -> (group, field).
FLAT_NAMES: dict[str, tuple[str, str]] = {
    _flat_name(field, name): (group, name)
    for group, model in GROUPS.items()
    for name, field in model.model_fields.items()
}
if len(FLAT_NAMES) != sum(len(model.model_fields) for model in GROUPS.values()):
    raise TypeError("two settings share a flat name (and so an environment variable)")


def env_variable(loc: tuple[int | str, ...]) -> str | None:
    """The environment variable a validation error's location names, if it names a setting.

    >>> env_variable(("risk", "ewma_lambda")), env_variable(("kafka", "bootstrap"))
    ('RISKSTREAM_EWMA_LAMBDA', 'RISKSTREAM_KAFKA_BOOTSTRAP')
    >>> env_variable(("kafka", "kafka_bootstrap")), env_variable(("risk", "var_levels", 0))
    ('RISKSTREAM_KAFKA_BOOTSTRAP', 'RISKSTREAM_VAR_LEVELS')
    >>> env_variable(("risk",)) is None
    True
    """
    if len(loc) >= 2 and loc[0] in GROUPS:
        group, name = str(loc[0]), str(loc[1])
        field = GROUPS[group].model_fields.get(name)
        flat = _flat_name(field, name) if field is not None else name  # given by flat name
        if FLAT_NAMES.get(flat, ("",))[0] == group:
            return f"{ENV_PREFIX}{flat.upper()}"
    return None


class _FlatEnvironment(PydanticBaseSettingsSource):
    """Reads ``RISKSTREAM_<FLAT_NAME>`` (any case) into ``{group: {field: text}}``.

    Only the settings' own variables are read; the text is parsed by the groups' fields
    and validators (lists are comma-separated).
    """

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads every group at once

    def __call__(self) -> dict[str, Any]:
        environ = {key.upper(): value for key, value in os.environ.items()}
        out: dict[str, dict[str, str]] = {}
        for flat, (group, name) in FLAT_NAMES.items():
            value = environ.get(f"{ENV_PREFIX}{flat.upper()}")
            if value is not None:
                out.setdefault(group, {})[name] = value
        return out


class Settings(BaseSettings):
    """riskstream configuration, by concern; each field's docstring names its variable."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    kafka: KafkaSettings = Field(default_factory=_defaults(KafkaSettings))
    redis: RedisSettings = Field(default_factory=_defaults(RedisSettings))
    topology: TopologySettings = Field(default_factory=_defaults(TopologySettings))
    risk: RiskSettings = Field(default_factory=_defaults(RiskSettings))
    drift: DriftSettings = Field(default_factory=_defaults(DriftSettings))
    validation: ValidationSettings = Field(default_factory=_defaults(ValidationSettings))
    stream: StreamSettings = Field(default_factory=_defaults(StreamSettings))
    portfolio: PortfolioSettings = Field(default_factory=_defaults(PortfolioSettings))
    credit: CreditSettings = Field(default_factory=_defaults(CreditSettings))
    shap: ShapSettings = Field(default_factory=_defaults(ShapSettings))
    anomaly: AnomalySettings = Field(default_factory=_defaults(AnomalySettings))
    operations: OperationsSettings = Field(default_factory=_defaults(OperationsSettings))

    if TYPE_CHECKING:  # keywords are flat names as well as groups (_route_flat_names)

        def __init__(self, **values: Any) -> None: ...

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments first, then the flat environment variables."""
        return init_settings, _FlatEnvironment(settings_cls)

    @model_validator(mode="before")
    @classmethod
    def _route_flat_names(cls, data: object) -> object:
        """Move each flat name (``kafka_bootstrap=...``) into its group, by field name.

        A flat keyword wins over the same setting in its group's values: keywords arrive
        flat, the environment's variables grouped, and pydantic-settings merges the
        environment beneath the keywords before this runs.
        """
        if not isinstance(data, Mapping):
            return data
        out: dict[str, Any] = {}
        routed: dict[str, dict[str, Any]] = {}
        for key, value in data.items():
            if key in FLAT_NAMES:
                group, name = FLAT_NAMES[key]
                routed.setdefault(group, {})[name] = value
            else:
                out[key] = value
        for group, values in routed.items():
            given = out.get(group, {})
            if isinstance(given, BaseModel):
                given = given.model_dump(exclude_unset=True)
            out[group] = {**given, **values}
        return out

    # --- Derived views ----------------------------------------------------------------------
    def risk_spec(self) -> RiskSpec:
        """The price book's :class:`~engine.core.spec.RiskSpec` from these settings."""
        return self.risk.spec()

    def flat(self) -> dict[str, object]:
        """Every setting by its flat name (``RISKSTREAM_<NAME>`` in lower case), in order."""
        return {
            flat: getattr(getattr(self, group), name) for flat, (group, name) in FLAT_NAMES.items()
        }

    def describe(self) -> dict[str, object]:
        """Settings by flat name, safe to log: secrets and URL credentials redacted."""
        out: dict[str, object] = {}
        for name, value in self.flat().items():
            if isinstance(value, SecretStr):
                out[name] = (
                    redact_url(value.get_secret_value()) if name == "redis_url" else "**********"
                )
            else:
                out[name] = value
        return out


def redact_url(url: str) -> str:
    """Replace the password in a URL with ``*****``.

    >>> redact_url("redis://user:s3cret@127.0.0.1:6379/0")
    'redis://user:*****@127.0.0.1:6379/0'
    >>> redact_url("redis://127.0.0.1:6379/0")
    'redis://127.0.0.1:6379/0'
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:*****@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
