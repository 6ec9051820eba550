"""Helpers shared by the credit tests (fixtures are in conftest.py)."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest
import redis.asyncio as aioredis

from engine.alerts import Alert
from engine.credit.model import CreditModel
from engine.explain import ExplainableModel, ExplainInput, ExplanationService


def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """Run ``riskstream ARGS`` in-process through the console entry point: (status, out, err)."""
    from engine.cli import main

    monkeypatch.setattr(sys, "argv", ["riskstream", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def explainable(model: CreditModel) -> ExplainableModel:
    return ExplainableModel(
        model.name,
        model.version,
        tuple(model.card.feature_names),
        model.explainer(),
        display=model.card.display,
    )


def alert_for(model: CreditModel, vector: np.ndarray, n: int, kind: str = "credit_pd") -> Alert:
    """A credit alert asking for the explanation of ``vector``."""
    return Alert(
        f"{kind}-{n}",
        kind,
        f"c{n}",
        1_700_000_000_000,
        "warning",
        0.7,
        0.5,
        model.name,
        model.version,
        explain_input=ExplainInput(vector),
    )


def service_on(url: str | None, model: CreditModel, **options: Any) -> ExplanationService:
    """An explanation service for ``model`` caching in the Redis at ``url`` (None: no cache)."""
    client = aioredis.from_url(url, socket_timeout=2, socket_connect_timeout=2) if url else None
    service = ExplanationService(client, **options)
    service.register(explainable(model))
    return service
