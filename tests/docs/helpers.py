"""What the documentation tests share: where things are, and how to read Markdown links."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
CHANGELOG = ROOT / "CHANGELOG.md"

#: ``[text](target)`` and ``![alt](target)``, not inside code (code is stripped first).
_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.S | re.M)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.M)


def markdown_files() -> list[Path]:
    """README, CHANGELOG and every page of the site."""
    return [README, CHANGELOG, *sorted(DOCS.rglob("*.md"))]


def strip_code(text: str) -> str:
    """The Markdown without fenced blocks and code spans, where brackets are not links."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def links(path: Path) -> Iterator[str]:
    """Every link target written in a Markdown file."""
    for match in _LINK.finditer(strip_code(path.read_text(encoding="utf-8"))):
        yield match.group(1)


def is_external(target: str) -> bool:
    return bool(re.match(r"^[a-z][a-z0-9+.-]*:", target)) or target.startswith("//")


def anchors(path: Path) -> set[str]:
    """The ids MkDocs gives the headings of a page (the ``toc`` extension's slugify)."""
    from markdown.extensions.toc import slugify

    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    ids: set[str] = set()
    for match in _HEADING.finditer(text):
        base = slugify(_CODE_SPAN.sub(lambda m: m.group(0).strip("`"), match.group(2)), "-")
        slug, n = base, 0
        while slug in ids:  # repeated headings get _1, _2, ... as in Python-Markdown
            n += 1
            slug = f"{base}_{n}"
        ids.add(slug)
    return ids
