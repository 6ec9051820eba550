"""The documentation site builds with ``mkdocs build --strict``: any warning fails it.

Strict mode turns MkDocs' warnings into errors: a link to a page or anchor that does not
exist, a page missing from the nav, a snippet (CHANGELOG.md) that cannot be included.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .helpers import DOCS, ROOT


def test_mkdocs_builds_in_strict_mode_without_warnings(tmp_path: Path) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    warnings = [line for line in output.splitlines() if "WARNING" in line]
    assert warnings == [], "\n".join(warnings)
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "reference" / "configuration" / "index.html").is_file()


def test_every_page_is_in_the_nav() -> None:
    """A page outside the nav is unreachable from the site (MkDocs only logs it at INFO)."""
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert pages, "no pages under docs/"
    missing = [page for page in pages if page not in nav]
    assert missing == [], f"pages missing from the nav of mkdocs.yml: {missing}"
