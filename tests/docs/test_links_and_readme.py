"""The README is a front door under 15 KB, and no link in README, CHANGELOG or docs/ is dead."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import pytest

from .helpers import CHANGELOG, DOCS, README, ROOT, anchors, is_external, links, markdown_files

README_LIMIT_BYTES = 15 * 1024


def test_readme_is_a_front_door_under_15_kb() -> None:
    size = README.stat().st_size
    assert size < README_LIMIT_BYTES, (
        f"README.md is {size:,} bytes (limit {README_LIMIT_BYTES:,}): move detail into docs/"
    )


def test_readme_says_the_two_commands_and_how_to_get_riskstream_on_the_path() -> None:
    text = README.read_text(encoding="utf-8")
    assert "./deploy/demo.sh" in text
    assert "./deploy/test.sh" in text
    assert "`.ci/run` calls `./deploy/test.sh`" in text
    assert "source .venv/bin/activate" in text


def test_the_history_of_runs_stays_out_of_the_reader_pages() -> None:
    """Commit hashes and run logs belong in the benchmarks history and the changelog."""
    import re

    history = DOCS / "benchmarks" / "history.md"
    allowed = {history, CHANGELOG, DOCS / "changelog.md"}
    offenders = []
    for path in markdown_files():
        if path in allowed:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"\bcommits? [0-9a-f]{7}\b", line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path) -> None:
    broken = []
    for target in links(path):
        if is_external(target):
            continue
        file_part, _, fragment = target.partition("#")
        resolved = (path.parent / unquote(file_part)).resolve() if file_part else path
        if not resolved.exists():
            broken.append(f"{target}: no such file")
            continue
        if fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            broken.append(f"{target}: no heading with id #{fragment} in {resolved.name}")
    assert broken == [], f"{path.relative_to(ROOT)}: {broken}"


def test_the_link_checker_sees_links() -> None:
    """Guard against a regex that silently matches nothing."""
    assert "docs/getting-started.md" in set(links(README))
    assert "../contracts.md#offline-cli" in set(links(DOCS / "concepts" / "architecture.md"))
