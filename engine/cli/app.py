"""The root Typer application; command modules attach themselves to it.

Heavy imports (numba kernels, faust, torch) happen inside commands, so ``--help``
stays fast.
"""

from __future__ import annotations

import typer

from engine.config import Settings, env_variable
from engine.errors import ConfigError

app = typer.Typer(
    name="riskstream",
    help="Streaming risk engine: online volatility, VaR/ES and backtests, anomalies and credit risk "
    "over Kafka, Faust and Redis, or embedded with no services at all.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def command_group(name: str, help: str) -> typer.Typer:
    """A ``riskstream <name> ...`` group of commands, attached to :data:`app`.

    It shows its help when called without a command, like the root.
    """
    group = typer.Typer(help=help, no_args_is_help=True)
    app.add_typer(group, name=name)
    return group


def load_settings(**overrides: object) -> Settings:
    """Read :class:`Settings` from the environment; a bad value becomes one clear line.

    ``overrides`` are CLI options that take precedence over the environment.
    """
    from pydantic import ValidationError

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise settings_error(exc) from None


def settings_error(exc: Exception) -> ConfigError:
    """One line naming each rejected setting by its environment variable."""
    errors = exc.errors() if hasattr(exc, "errors") else []
    problems = "; ".join(
        (f"{variable}: " if (variable := env_variable(tuple(err["loc"]))) else "")
        + err["msg"].removeprefix("Value error, ")
        for err in errors
    )
    return ConfigError(f"invalid settings: {problems or exc}")
