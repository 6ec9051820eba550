"""Kafka client settings derived from :class:`~engine.config.Settings`, for each client library.

riskstream talks to Kafka through three libraries: kafka-python (producers, admin),
aiokafka (benchmarks) and faust (the worker, on aiokafka). The security settings
(``RISKSTREAM_KAFKA_SECURITY_PROTOCOL``, SASL mechanism, username, password, CA file)
are translated here once for each of them. Passwords are only unwrapped here, into the
client configuration, and never logged.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from engine.config import Settings
from engine.errors import ConfigError


def bootstrap_servers(settings: Settings) -> list[str]:
    if not settings.kafka.bootstrap:
        raise ConfigError("RISKSTREAM_KAFKA_BOOTSTRAP is not set (e.g. 127.0.0.1:9092)")
    return [part.strip() for part in settings.kafka.bootstrap.split(",") if part.strip()]


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """A verifying TLS context for SSL/SASL_SSL, trusting ``RISKSTREAM_KAFKA_SSL_CAFILE`` if set."""
    if "SSL" not in settings.kafka.security_protocol:
        return None
    cafile = str(settings.kafka.ssl_cafile) if settings.kafka.ssl_cafile else None
    return ssl.create_default_context(cafile=cafile)


def _sasl(settings: Settings) -> dict[str, Any]:
    if "SASL" not in settings.kafka.security_protocol:
        return {}
    if not (
        settings.kafka.sasl_mechanism
        and settings.kafka.sasl_username
        and settings.kafka.sasl_password
    ):
        raise ConfigError(
            "SASL needs RISKSTREAM_KAFKA_SASL_MECHANISM, RISKSTREAM_KAFKA_SASL_USERNAME "
            "and RISKSTREAM_KAFKA_SASL_PASSWORD"
        )
    return {
        "sasl_mechanism": settings.kafka.sasl_mechanism,
        "sasl_plain_username": settings.kafka.sasl_username,
        "sasl_plain_password": settings.kafka.sasl_password.get_secret_value(),
    }


def kafka_python_config(settings: Settings) -> dict[str, Any]:
    """Keyword arguments common to kafka-python 3.x clients (producer, consumer, admin)."""
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers(settings),
        "security_protocol": settings.kafka.security_protocol,
        "bootstrap_timeout_ms": 10_000,
        **_sasl(settings),
    }
    context = ssl_context(settings)
    if context is not None:
        config["ssl_context"] = context
    return config


def aiokafka_config(settings: Settings) -> dict[str, Any]:
    """Keyword arguments common to aiokafka clients."""
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers(settings),
        "security_protocol": settings.kafka.security_protocol,
        **_sasl(settings),
    }
    context = ssl_context(settings)
    if context is not None:
        config["ssl_context"] = context
    return config


def faust_broker_options(settings: Settings) -> dict[str, Any]:
    """``broker`` and ``broker_credentials`` arguments for :class:`faust.App`."""
    import faust

    brokers = ";".join(f"kafka://{server}" for server in bootstrap_servers(settings))
    options: dict[str, Any] = {"broker": brokers}
    protocol = settings.kafka.security_protocol
    if "SASL" in protocol:
        sasl = _sasl(settings)
        mechanism = sasl["sasl_mechanism"]
        options["broker_credentials"] = faust.SASLCredentials(
            username=sasl["sasl_plain_username"],
            password=sasl["sasl_plain_password"],
            mechanism=mechanism,
            ssl_context=ssl_context(settings),
        )
    elif protocol == "SSL":
        options["broker_credentials"] = faust.SSLCredentials(ssl_context(settings))
    return options


class _AuthFailures(logging.Filter):
    """Watches kafka-python's connection log for refused SASL credentials.

    kafka-python only logs a refusal and retries until its bootstrap times out. It logs
    ``SaslAuthenticationFailedError`` when it reads the broker's answer; often it reads
    the broker closing the connection first and logs ``socket disconnected``. Either
    way: connections were made, none authenticated. Installed as a filter on the
    connection loggers (at INFO while watching), it sees their records and lets through
    only those at or above ``floor``, the level the user asked for.
    """

    LOGGERS = ("kafka.net.transport", "kafka.net.connection", "kafka.net.manager")

    def __init__(self, floor: int) -> None:
        super().__init__()
        self.floor = floor
        self.refusal: str | None = None
        self.connected = False
        self.authenticated = False

    def filter(self, record: logging.LogRecord) -> bool:
        self.emit(record)
        return record.levelno >= self.floor

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "SaslAuthenticationFailedError: " in message and self.refusal is None:
            self.refusal = message.rsplit("SaslAuthenticationFailedError: ", 1)[-1].rstrip(")")
        elif ": connected to <" in message:
            self.connected = True
        elif "Authenticated as " in message:
            self.authenticated = True

    def diagnosis(self) -> str | None:
        if self.refusal is not None:
            return self.refusal
        if self.connected and not self.authenticated:
            return (
                "the broker accepted connections and closed each one during SASL "
                "authentication (wrong username or password, or a mechanism the listener "
                "does not enable)"
            )
        return None


@contextmanager
def refused_credentials_are_config_errors(settings: Settings) -> Iterator[None]:
    """Turn a failure to reach Kafka that was caused by refused credentials into a clear
    :class:`ConfigError` (``Kafka refused the credentials of user ...``).

    Without this, kafka-python reports wrong SASL credentials as a bootstrap timeout.
    Does nothing unless SASL is configured.
    """
    if "SASL" not in settings.kafka.security_protocol:
        yield
        return
    floor = logging.getLogger("kafka").getEffectiveLevel()
    handler = _AuthFailures(floor)
    loggers = [logging.getLogger(name) for name in _AuthFailures.LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addFilter(handler)
        logger.setLevel(min(floor, logging.INFO))
    try:
        yield
    except Exception:
        reason = handler.diagnosis()
        if reason is not None:
            raise ConfigError(
                f"Kafka refused the credentials of user {settings.kafka.sasl_username!r} "
                f"({settings.kafka.sasl_mechanism}): {reason}"
            ) from None
        raise
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeFilter(handler)
            logger.setLevel(level)
