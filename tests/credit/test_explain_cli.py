"""``riskstream explain``: waterfall (PNG) and force (HTML) plots from the cached explanation."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from engine.credit.model import CreditModel

from .conftest import COMMITTED
from .helpers import alert_for, run_cli, service_on

pytestmark = pytest.mark.integration


@pytest.fixture
def explained(redis_url: str, taiwan: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """An alert explained by the service into Redis; returns its id."""
    model = CreditModel(COMMITTED)
    X = model.card.encode_frame(taiwan.head(1))

    async def run() -> None:
        service = service_on(redis_url, model)
        try:
            await service.enrich([alert_for(model, X[0], 7)])
        finally:
            await service.close()

    asyncio.run(run())
    monkeypatch.setenv("RISKSTREAM_REDIS_URL", redis_url)
    return "credit_pd-7"


@pytest.mark.parametrize(
    ("plot", "suffix", "magic"), [("waterfall", "png", b"\x89PNG"), ("force", "html", b"<html>")]
)
def test_plots(
    explained: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    plot: str,
    suffix: str,
    magic: bytes,
) -> None:
    out = tmp_path / f"alert.{suffix}"
    code, _, err = run_cli(
        monkeypatch, capsys, "explain", explained, "--plot", plot, "--out", str(out)
    )
    assert code == 0, err
    content = out.read_bytes()
    assert content.startswith(magic) or magic in content[:200]
    if plot == "force":
        assert b"PAY_0" in content


def test_table_without_out(
    explained: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(monkeypatch, capsys, "explain", explained)
    assert code == 0
    for text in ("PAY_0", "LIMIT_BAL", "base value", "model output", "log-odds"):
        assert text in out


def test_unknown_alert_exits_2(
    explained: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(monkeypatch, capsys, "explain", "credit_pd-nope")
    assert (
        code == 2
        and "no explanation stored for alert 'credit_pd-nope'" in err
        and err.count("\n") == 1
    )


def test_global_summary(
    tmp_path: Path, taiwan: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(
        monkeypatch,
        capsys,
        "explain",
        "--summary",
        "--model",
        str(COMMITTED),
        "--out",
        str(tmp_path / "bar.png"),
    )
    assert code == 0, err
    assert (tmp_path / "bar.png").read_bytes().startswith(b"\x89PNG")
    data = tmp_path / "rows.csv"
    taiwan.head(300).to_csv(data, index=False)
    code, _, err = run_cli(
        monkeypatch,
        capsys,
        "explain",
        "--summary",
        "--model",
        str(COMMITTED),
        "--data",
        str(data),
        "--out",
        str(tmp_path / "swarm.png"),
    )
    assert code == 0, err
    assert (tmp_path / "swarm.png").read_bytes().startswith(b"\x89PNG")
