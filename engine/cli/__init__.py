"""``riskstream`` command line.

Exit status: 0 on success; 2 on bad input or configuration, with one clear line on
stderr (``riskstream: error: ...``); 3 when a required service is unreachable.
"""

from __future__ import annotations

import sys

from engine.cli.app import app, settings_error
from engine.errors import ConfigError, InputError, ModelMismatchError, ServiceUnavailableError


def _register_commands() -> None:
    """Import the command modules; each attaches its commands to ``app`` (help lists them in this order)."""
    from engine.cli import (  # noqa: F401
        alerts,
        anomaly,
        bench,
        credit,
        deep,
        embedded,
        explain,
        options,
        portfolio,
        produce,
        risk,
        services,
        stress,
        worker,
    )


_register_commands()


def main() -> None:
    """Entry point of the ``riskstream`` console script."""
    from pydantic import ValidationError

    try:
        try:
            app()
        except ValidationError as exc:  # Settings built inside a command (benchmarks)
            raise settings_error(exc) from None
    except (InputError, ConfigError, ModelMismatchError) as exc:
        print(f"riskstream: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except ServiceUnavailableError as exc:
        print(f"riskstream: error: {exc}", file=sys.stderr)
        sys.exit(3)


__all__ = ["app", "main"]
