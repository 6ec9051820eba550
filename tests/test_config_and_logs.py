"""Settings come from the environment only at the entry point; secrets never reach logs."""

from __future__ import annotations

import io
import logging

import pytest

from engine.cli.app import load_settings
from engine.config import Settings
from engine.errors import ConfigError
from engine.logs import configure_logging

CANARY = "canary-s3cr3t-7f9a"


def test_levels_from_comma_separated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISKSTREAM_VAR_LEVELS", "0.99, 0.95,0.975")
    assert Settings().risk.var_levels == (0.95, 0.975, 0.99)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("RISKSTREAM_EWMA_LAMBDA", "1.2", "ewma_lambda must be strictly between 0 and 1"),
        ("RISKSTREAM_VAR_LEVELS", "0.4", "strictly between 0.5 and 1"),
        ("RISKSTREAM_ALERT_LEVELS", "0.999", "not among var_levels"),
        ("RISKSTREAM_PARTITIONS", "0", "RISKSTREAM_PARTITIONS"),
    ],
)
def test_bad_settings_become_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message) as info:
        load_settings()
    assert "\n" not in str(info.value)


def test_settings_repr_and_describe_hide_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISKSTREAM_REDIS_URL", f"redis://app:{CANARY}@127.0.0.1:6379/0")
    monkeypatch.setenv("RISKSTREAM_KAFKA_SASL_PASSWORD", CANARY)
    settings = Settings()
    assert CANARY not in repr(settings) and CANARY not in str(settings.describe())
    assert settings.describe()["redis_url"] == "redis://app:*****@127.0.0.1:6379/0"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_canary_secret_never_appears_in_any_log_line(
    monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    monkeypatch.setenv("RISKSTREAM_REDIS_PASSWORD", CANARY)
    monkeypatch.setenv("RISKSTREAM_LOG_FORMAT", fmt)
    stream = io.StringIO()
    old_factory = logging.getLogRecordFactory()
    root = logging.getLogger()
    old_handlers, old_level = list(root.handlers), root.level
    try:
        configure_logging(Settings(), stream=stream)
        log = logging.getLogger("some.library")
        log.warning("connecting with password %s", CANARY)
        log.error(f"inline {CANARY} in an f-string")
        try:
            raise ConnectionError(f"AUTH {CANARY} failed")
        except ConnectionError:
            log.exception("redis said no")
        # a handler installed later (as faust's worker does) sees scrubbed records too
        late = io.StringIO()
        root.addHandler(logging.StreamHandler(late))
        log.warning("late handler %s", CANARY)
        output = stream.getvalue() + late.getvalue()
    finally:
        logging.setLogRecordFactory(old_factory)
        root.handlers[:] = old_handlers
        root.setLevel(old_level)
    assert "redis said no" in output and "AUTH" in output
    assert CANARY not in output
    assert output.count("*****") >= 4
