"""The Redis sink: latest risk per symbol, customer profiles, and the alert stream.

Keys (the contract of docs/contracts.md, "Redis"):

``riskstream:risk:<symbol>``, ``riskstream:customer:<customer_id>``, and stages' hashes
    latest-state hashes (:class:`~engine.stages.LatestState`): the symbol's latest
    :class:`~engine.snapshots.RiskSnapshot`, the customer's profile, a stage's state.
``riskstream:alerts``
    stream of alerts, one entry per alert id; a live JSON copy of each new entry is
    published on ``riskstream:alerts:live``.
``riskstream:alert-ids:<alert_id>``
    remembers an appended id for ``alert_id_ttl_s`` so a replay is not appended twice.

What a caller can rely on: :meth:`RedisSink.write` sends one batch in one pipelined
round trip (all latest-state hashes in one script call, whose JSON payload Redis decodes,
so the worker does not pack thousands of commands), and either returns after every command succeeded or keeps retrying with
capped exponential backoff until it does (or :meth:`close` is called). Every command
is idempotent, so a retried or replayed batch changes nothing twice. Wrong credentials
are not retried: they raise :class:`~engine.errors.ConfigError` at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from importlib import resources

import orjson
import redis
import redis.asyncio as aioredis
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    BusyLoadingError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from engine.alerts import Alert
from engine.config import Settings
from engine.errors import ConfigError, ServiceUnavailableError
from engine.metrics import Metrics
from engine.sinks.base import WriteResult
from engine.stages import LatestState

log = logging.getLogger(__name__)

ALERTS_STREAM = "riskstream:alerts"
ALERTS_CHANNEL = "riskstream:alerts:live"
ALERT_ID_KEY = "riskstream:alert-ids:{}"

_RETRYABLE = (RedisConnectionError, RedisTimeoutError, BusyLoadingError, OSError)
_CREDENTIALS = (AuthenticationError, AuthorizationError)


def _lua(name: str) -> str:
    return resources.files("engine.sinks").joinpath("lua", name).read_text(encoding="utf-8")


def client_from_settings(settings: Settings) -> aioredis.Redis:
    """An asyncio Redis client for ``RISKSTREAM_REDIS_URL`` (``rediss://`` for TLS)."""
    if settings.redis.dsn is None:
        raise ConfigError("RISKSTREAM_REDIS_URL is not set")
    return aioredis.from_url(
        settings.redis.dsn,
        username=settings.redis.username,
        password=settings.redis.password.get_secret_value() if settings.redis.password else None,
        socket_timeout=5.0,
        socket_connect_timeout=5.0,
        health_check_interval=30,
        **tls_options(settings),
    )


def sync_client_from_settings(settings: Settings) -> redis.Redis:
    """A blocking Redis client with the same URL, credentials and TLS options (CLI commands)."""
    if settings.redis.dsn is None:
        raise ConfigError("RISKSTREAM_REDIS_URL is not set")
    return redis.Redis.from_url(
        settings.redis.dsn,
        username=settings.redis.username,
        password=settings.redis.password.get_secret_value() if settings.redis.password else None,
        socket_connect_timeout=5.0,
        **tls_options(settings),
    )


def tls_options(settings: Settings) -> dict[str, str]:
    """Client options for ``rediss://``: the CA of ``RISKSTREAM_REDIS_SSL_CAFILE`` (verified)."""
    if settings.redis.dsn is None or not settings.redis.dsn.startswith("rediss://"):
        return {}
    if settings.redis.ssl_cafile is None:
        return {}
    return {"ssl_ca_certs": str(settings.redis.ssl_cafile)}


class RedisSink:
    """Writes pipeline outcomes to Redis (a :class:`~engine.sinks.base.Sink`); see the
    module docstring for guarantees."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        metrics: Metrics | None = None,
        alert_id_ttl_s: int = 7 * 86400,
        alerts_maxlen: int = 1_000_000,
        max_backoff_s: float = 2.0,
    ) -> None:
        self.client = client
        self.metrics = metrics if metrics is not None else Metrics()
        self.alert_id_ttl_s = alert_id_ttl_s
        self.alerts_maxlen = alerts_maxlen
        self.max_backoff_s = max_backoff_s
        self._append_alert = client.register_script(_lua("append_alert.lua"))
        self._write_latest = client.register_script(_lua("write_latest.lua"))
        self._closing = False

    @classmethod
    def from_settings(cls, settings: Settings, metrics: Metrics | None = None) -> RedisSink:
        return cls(
            client_from_settings(settings),
            metrics=metrics,
            alert_id_ttl_s=settings.stream.alert_id_ttl_s,
            alerts_maxlen=settings.stream.alerts_maxlen,
        )

    async def check(self) -> None:
        """Fail fast with a clear error when Redis is unreachable or refuses the credentials."""
        try:
            await self.client.ping()
        except _CREDENTIALS as exc:
            raise ConfigError(f"Redis refused the credentials: {exc}") from None
        except _RETRYABLE as exc:
            raise ServiceUnavailableError(f"Redis is unreachable: {exc}") from None
        durable = await self.durability()
        if durable is False:
            log.warning(
                "Redis does not fsync before it replies (appendonly yes and appendfsync always "
                "are needed): if Redis crashes, alerts it acknowledged can be lost, because the "
                "worker commits Kafka offsets once Redis has acknowledged"
            )

    async def durability(self) -> bool | None:
        """Whether an acknowledged write survives a Redis crash; ``None`` if CONFIG is refused.

        True only with ``appendonly yes`` and ``appendfsync always``: with ``everysec``
        Redis may postpone writing its AOF buffer for up to two seconds while it keeps
        replying, so a crash loses writes it acknowledged.
        """
        try:
            config = await self.client.config_get("append*")
        except (ResponseError, *_CREDENTIALS):  # CONFIG renamed or not permitted
            return None
        return config.get(b"appendonly", config.get("appendonly")) in (b"yes", "yes") and (
            config.get(b"appendfsync", config.get("appendfsync")) in (b"always", "always")
        )

    async def write(
        self, *, latest: Sequence[LatestState] = (), alerts: Sequence[Alert] = ()
    ) -> WriteResult:
        """Write one batch of outputs in one round trip, retrying until it succeeds."""
        if not (latest or alerts):
            return WriteResult(0, 0)
        delay = 0.05
        failed_since: float | None = None
        while True:
            try:
                replies = await self._send(latest, alerts)
                break
            except _CREDENTIALS as exc:
                raise ConfigError(f"Redis refused the credentials: {exc}") from None
            except (*_RETRYABLE, ResponseError) as exc:
                if isinstance(exc, ResponseError) and not _is_transient(exc):
                    raise
                self.metrics.redis_errors.labels("write").inc()
                if self._closing:
                    raise ServiceUnavailableError(
                        f"Redis write abandoned while closing: {exc}"
                    ) from None
                log.warning(
                    "Redis write failed (%s: %s); retrying in %.2fs", type(exc).__name__, exc, delay
                )
                self.metrics.redis_retries.inc()
                self.metrics.service_up.labels("redis").set(0)
                failed_since = failed_since or time.monotonic()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)
        if failed_since is not None:
            self.metrics.service_up.labels("redis").set(1)
            log.info("Redis writes succeed again after %.1f s", time.monotonic() - failed_since)
        alert_replies = replies[len(replies) - len(alerts) :] if alerts else []
        written = sum(1 for reply in alert_replies if reply)
        result = WriteResult(written, len(alerts) - written)
        self.metrics.alerts_written.inc(result.alerts_written)
        self.metrics.alerts_deduplicated.inc(result.alerts_duplicate)
        return result

    async def _send(self, latest: Sequence[LatestState], alerts: Sequence[Alert]) -> list[object]:
        async with self.client.pipeline(transaction=False) as pipe:
            if latest:
                await self._write_latest(
                    keys=[state.key for state in latest],
                    args=[
                        orjson.dumps(
                            [(state.seq_field, state.seq, state.fields) for state in latest]
                        )
                    ],
                    client=pipe,
                )
            for alert in alerts:
                await self._append_alert(
                    keys=[ALERT_ID_KEY.format(alert.alert_id), ALERTS_STREAM],
                    args=[
                        self.alert_id_ttl_s,
                        self.alerts_maxlen,
                        ALERTS_CHANNEL,
                        orjson.dumps(alert.to_json()),
                        *_flatten(alert.fields()),
                    ],
                    client=pipe,
                )
            return await pipe.execute()

    async def close(self) -> None:
        """Stop retrying and close the connection pool."""
        self._closing = True
        await self.client.aclose()


def _flatten(fields: dict[str, str]) -> list[str]:
    out: list[str] = []
    for key, value in fields.items():
        out += (key, value)
    return out


def _is_transient(exc: ResponseError) -> bool:
    """Server replies worth retrying: loading, failover, out of memory under eviction."""
    text = str(exc)
    return text.startswith(("LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "OOM"))
