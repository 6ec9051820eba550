"""Kafka client settings derived from :class:`~engine.config.Settings`, for each client library.

riskstream talks to Kafka through three libraries: kafka-python (producers, admin),
aiokafka (benchmarks) and faust (the worker, on aiokafka). The security settings
(``RISKSTREAM_KAFKA_SECURITY_PROTOCOL``, SASL mechanism, username, password, CA file)
are translated here once for each of them. Passwords are only unwrapped here, into the
client configuration, and never logged.
"""

from __future__ import annotations

import ssl
from typing import Any

from engine.config import Settings
from engine.errors import ConfigError


def bootstrap_servers(settings: Settings) -> list[str]:
    if not settings.kafka_bootstrap:
        raise ConfigError("RISKSTREAM_KAFKA_BOOTSTRAP is not set (e.g. 127.0.0.1:9092)")
    return [part.strip() for part in settings.kafka_bootstrap.split(",") if part.strip()]


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """A verifying TLS context for SSL/SASL_SSL, trusting ``RISKSTREAM_KAFKA_SSL_CAFILE`` if set."""
    if "SSL" not in settings.kafka_security_protocol:
        return None
    cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
    return ssl.create_default_context(cafile=cafile)


def _sasl(settings: Settings) -> dict[str, Any]:
    if "SASL" not in settings.kafka_security_protocol:
        return {}
    if not (
        settings.kafka_sasl_mechanism
        and settings.kafka_sasl_username
        and settings.kafka_sasl_password
    ):
        raise ConfigError(
            "SASL needs RISKSTREAM_KAFKA_SASL_MECHANISM, RISKSTREAM_KAFKA_SASL_USERNAME "
            "and RISKSTREAM_KAFKA_SASL_PASSWORD"
        )
    return {
        "sasl_mechanism": settings.kafka_sasl_mechanism,
        "sasl_plain_username": settings.kafka_sasl_username,
        "sasl_plain_password": settings.kafka_sasl_password.get_secret_value(),
    }


def kafka_python_config(settings: Settings) -> dict[str, Any]:
    """Keyword arguments common to kafka-python 3.x clients (producer, consumer, admin)."""
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers(settings),
        "security_protocol": settings.kafka_security_protocol,
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
        "security_protocol": settings.kafka_security_protocol,
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
    protocol = settings.kafka_security_protocol
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
