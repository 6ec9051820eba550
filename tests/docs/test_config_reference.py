"""The configuration reference is generated from Settings and matches it."""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType

import pytest

from engine.config import FLAT_NAMES, Settings

from .helpers import DOCS


@pytest.fixture(scope="module")
def gen_config() -> ModuleType:
    """docs/gen_config.py, loaded from its file (docs/ is not a package)."""
    spec = importlib.util.spec_from_file_location("gen_config", DOCS / "gen_config.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_config", module)
    spec.loader.exec_module(module)
    return module


def test_the_committed_page_is_what_the_generator_writes(gen_config: ModuleType) -> None:
    page = DOCS / "reference" / "configuration.md"
    assert page.read_text(encoding="utf-8") == gen_config.render(Settings), (
        "docs/reference/configuration.md is stale: run python docs/gen_config.py"
    )


def test_every_setting_is_documented_with_its_environment_variable(gen_config: ModuleType) -> None:
    rows = gen_config.rows(Settings)
    page = (DOCS / "reference" / "configuration.md").read_text(encoding="utf-8")
    assert {row.field for row in rows} == set(FLAT_NAMES)
    for row in rows:
        assert row.env.startswith("RISKSTREAM_"), row
        assert f"| `{row.env}` |" in page, row.env
    # the setting the hand-written table had left out
    assert "| `RISKSTREAM_KAFKA_SESSION_TIMEOUT_S` | number, >= 6, <= 300 | `60` |" in page


def test_each_docstring_names_the_variable_pydantic_reads(gen_config: ModuleType) -> None:
    """A field's docstring names its environment variable; a rename must update both."""
    wrong = [
        (row.field, row.doc_env, row.env)
        for row in gen_config.rows(Settings)
        if row.doc_env is not None and row.doc_env != row.env
    ]
    assert wrong == []


def test_the_documented_variable_is_the_one_settings_reads(
    gen_config: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Setting the documented variable changes the setting (checked on a few kinds of field)."""
    for name in [n for n in os.environ if n.startswith("RISKSTREAM_")]:
        monkeypatch.delenv(name)
    env = {row.field: row.env for row in gen_config.rows(Settings)}
    monkeypatch.setenv(env["kafka_session_timeout_s"], "12")
    monkeypatch.setenv(env["var_levels"], "0.9,0.99")
    monkeypatch.setenv(env["credit_enabled"], "false")
    monkeypatch.setenv(env["log_format"], "json")
    settings = Settings()
    assert settings.kafka.session_timeout_s == 12.0
    assert settings.risk.var_levels == (0.9, 0.99)
    assert settings.credit.enabled is False
    assert settings.operations.log_format == "json"


def test_rendering_of_types_defaults_and_descriptions(gen_config: ModuleType) -> None:
    assert gen_config.render_default(None) == "unset"
    assert gen_config.render_default((0.95, 0.99)) == "`0.95,0.99`"
    assert gen_config.render_default(60.0) == "`60`"
    assert gen_config.render_default(True) == "`true`"
    assert gen_config.render_description("``RISKSTREAM_X``: a |b| of ``c|d``.") == (
        "A \\|b\\| of `c|d`."
    )
    assert gen_config.render_description("see docs/models/backtests.md.") == (
        "See [docs/models/backtests.md](../models/backtests.md)."
    )
