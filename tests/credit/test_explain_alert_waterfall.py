"""``riskstream explain ALERT_ID --plot waterfall``: in probability when the alert's model is
at hand, in log-odds (and saying so) when it is not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .helpers import run_cli
from .test_explain_cli import explained  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


def test_the_alert_waterfall_reads_in_probability_with_the_committed_model(
    explained: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from matplotlib.figure import Figure

    saved: list[Figure] = []
    original = Figure.savefig

    def capture(self: Figure, *args: Any, **kwargs: Any) -> None:
        saved.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", capture)
    out = tmp_path / "alert.png"
    code, _, err = run_cli(monkeypatch, capsys, "explain", explained, "--out", str(out))
    assert code == 0, err
    assert err == f"riskstream: wrote the waterfall plot of {explained} to {out}\n"
    assert out.read_bytes().startswith(b"\x89PNG")
    (ax,) = saved[0].axes
    assert ax.get_xlabel().startswith("probability of default")
    pd_label = ax.get_yticklabels()[0].get_text()  # the last line: the alert's PD
    assert pd_label.startswith("PD ") and pd_label.endswith("%")


def test_without_the_alert_model_the_waterfall_stays_in_log_odds_and_says_so(
    explained: str,  # noqa: F811
    small_model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "alert.png"
    args = ["explain", explained, "--out", str(out), "--model", str(small_model)]
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0, err
    first, second = err.splitlines()
    assert first.startswith(
        "riskstream: the waterfall is in log-odds, not probability: the model "
        "credit_lightgbm 33d7bf2e0f8d is not at hand ("
    )
    assert first.endswith("; give --model DIR)")
    assert second == f"riskstream: wrote the waterfall plot of {explained} to {out}"
    assert out.read_bytes().startswith(b"\x89PNG")
