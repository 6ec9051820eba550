"""Settings are grouped by concern; the environment variables and flat keywords stay as they were."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from engine.cli.app import load_settings
from engine.config import FLAT_NAMES, Settings
from engine.core.spec import RiskSpec
from engine.core.volatility.fitting import RefitSchedule
from engine.errors import ConfigError

#: The settings' environment variables (``RISKSTREAM_<NAME>``), a contract of deployments:
#: the names the flat ``Settings`` had, in its order.
VARIABLES = [
    "kafka_bootstrap",
    "kafka_security_protocol",
    "kafka_sasl_mechanism",
    "kafka_sasl_username",
    "kafka_sasl_password",
    "kafka_ssl_cafile",
    "redis_url",
    "redis_username",
    "redis_password",
    "redis_ssl_cafile",
    "app_id",
    "partitions",
    "replication_factor",
    "group_instance_id",
    "startup_timeout_s",
    "kafka_session_timeout_s",
    "ewma_lambda",
    "warmup",
    "var_levels",
    "es_level",
    "alert_levels",
    "vol_models",
    "deep_model_dir",
    "var_method",
    "average_methods",
    "champion_methods",
    "champion_loss",
    "champion_window",
    "champion_margin",
    "champion_patience",
    "residual_zeros",
    "var_window",
    "var_min_obs",
    "garch_window",
    "har_window",
    "refit_first",
    "refit_every",
    "refit_delay",
    "refit_clock",
    "rv_calendar",
    "rv_min_returns",
    "bars",
    "var_horizon",
    "backtest_methods",
    "backtest_window",
    "backtest_significance",
    "fit_workers",
    "fit_timeout_ms",
    "late_fits",
    "drift_models",
    "drift_threshold",
    "drift_delta",
    "drift_min_obs",
    "max_future_skew_s",
    "max_record_bytes",
    "batch_max",
    "batch_within_ms",
    "fetch_max_wait_ms",
    "checkpoint_ms",
    "alert_id_ttl_s",
    "alerts_maxlen",
    "base_currency",
    "credit_enabled",
    "credit_model_dir",
    "credit_lgd",
    "credit_pd_limit",
    "credit_el_limit",
    "credit_exposure_field",
    "shap_workers",
    "shap_max_pending",
    "shap_top_k",
    "shap_cache_ttl_s",
    "anomaly_enabled",
    "anomaly_price_detector",
    "anomaly_tx_detector",
    "anomaly_price_threshold",
    "anomaly_tx_threshold",
    "anomaly_model_dir",
    "anomaly_calendar",
    "anomaly_label_delay_days",
    "metrics_host",
    "metrics_port",
    "metrics_max_symbols",
    "log_format",
    "log_level",
    "data_dir",
]


@pytest.fixture(autouse=True)
def _no_riskstream_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.upper().startswith("RISKSTREAM_")]:
        monkeypatch.delenv(name)


def test_the_flat_names_are_exactly_the_variables_deployments_set() -> None:
    assert sorted(FLAT_NAMES) == sorted(VARIABLES)
    assert list(Settings().describe()) == list(FLAT_NAMES)


@pytest.mark.parametrize(
    ("variable", "text", "group", "field", "value"),
    [
        ("RISKSTREAM_KAFKA_BOOTSTRAP", "127.0.0.1:9092", "kafka", "bootstrap", "127.0.0.1:9092"),
        ("RISKSTREAM_KAFKA_SESSION_TIMEOUT_S", "12", "kafka", "session_timeout_s", 12.0),
        ("RISKSTREAM_PARTITIONS", "3", "topology", "partitions", 3),
        ("RISKSTREAM_VAR_LEVELS", "0.99,0.9", "risk", "var_levels", (0.9, 0.99)),
        ("RISKSTREAM_DRIFT_MODELS", "ewma, har", "drift", "models", ("ewma", "har")),
        ("RISKSTREAM_SHAP_TOP_K", "7", "shap", "top_k", 7),
        ("RISKSTREAM_CREDIT_ENABLED", "false", "credit", "enabled", False),
        ("RISKSTREAM_ANOMALY_MODEL_DIR", "/m", "anomaly", "model_dir", Path("/m")),
        ("riskstream_log_level", "DEBUG", "operations", "log_level", "DEBUG"),
    ],
)
def test_each_variable_sets_its_grouped_field(
    monkeypatch: pytest.MonkeyPatch, variable: str, text: str, group: str, field: str, value: object
) -> None:
    monkeypatch.setenv(variable, text)
    assert getattr(getattr(Settings(), group), field) == value


def test_flat_keywords_land_in_their_group_and_win_over_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RISKSTREAM_PARTITIONS", "5")
    monkeypatch.setenv("RISKSTREAM_APP_ID", "from-env")
    settings = Settings(partitions=3, kafka_bootstrap="127.0.0.1:9", anomaly_enabled=False)
    assert settings.topology.partitions == 3 and settings.topology.app_id == "from-env"
    assert settings.kafka.bootstrap == "127.0.0.1:9" and settings.anomaly.enabled is False
    nested = Settings(kafka={"bootstrap": "nested:1", "sasl_username": "u"}, kafka_bootstrap="b:1")
    assert (nested.kafka.bootstrap, nested.kafka.sasl_username) == ("b:1", "u")


def test_unknown_names_are_ignored_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISKSTREAM_NO_SUCH_SETTING", "1")
    assert Settings(no_such_setting=1) == Settings()


def test_a_misnamed_field_inside_a_group_is_rejected() -> None:
    with pytest.raises(ValidationError, match="bootstrapp"):
        Settings(kafka={"bootstrapp": "127.0.0.1:9"})


def test_settings_and_their_groups_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValidationError, match="frozen"):
        settings.topology.partitions = 2  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        settings.risk = settings.risk  # type: ignore[misc]


@pytest.mark.parametrize(
    ("variable", "text"),
    [("RISKSTREAM_KAFKA_SESSION_TIMEOUT_S", "3"), ("RISKSTREAM_SHAP_TOP_K", "0")],
)
def test_a_bad_grouped_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, text: str
) -> None:
    monkeypatch.setenv(variable, text)
    with pytest.raises(ConfigError, match=f"invalid settings: {variable}: "):
        load_settings()


def test_the_default_risk_settings_are_the_default_spec() -> None:
    """The offline commands' RiskSpec() and the stream's settings agree by default."""
    assert Settings().risk_spec() == RiskSpec()


def test_the_risk_group_reaches_the_spec_under_the_spec_names(tmp_path: Path) -> None:
    settings = Settings(
        var_window=500,
        var_min_obs=100,
        var_method="hs",
        refit_first=100,
        refit_every=50,
        refit_delay=3,
        deep_model_dir=tmp_path,
        champion_patience=10,
    )
    spec = settings.risk_spec()
    assert (spec.window, spec.min_obs, spec.method) == (500, 100, "hs")
    assert spec.garch_refit == spec.har_refit == RefitSchedule(first=100, every=50, delay=3)
    assert spec.deep_model_dir == str(tmp_path) and spec.champion_patience == 10


def test_a_risk_setting_the_spec_does_not_know_is_an_error() -> None:
    with pytest.raises(TypeError, match="var_windw"):
        RiskSpec.from_mapping({"var_windw": 500})


def test_a_copy_with_one_group_updated_keeps_the_others() -> None:
    """The worker's warm-up copies the settings with the risk group's refits pushed back."""
    settings = Settings(partitions=3)
    copy = settings.model_copy(
        update={"risk": settings.risk.model_copy(update={"refit_first": 10_000})}
    )
    assert copy.risk_spec().garch_refit.first == 10_000
    assert copy.topology == settings.topology and settings.risk.refit_first == 250
