"""Generate docs/reference/configuration.md from ``engine.config.Settings``.

    python docs/gen_config.py            # rewrite the page
    python docs/gen_config.py --check    # exit 1 if the page differs from Settings

Every setting of :class:`engine.config.Settings` becomes a row: its environment variable,
type and bounds, default, and the field's docstring. Settings are grouped by concern, one
section per group model (``settings.kafka``, ``settings.risk`` ...), titled and introduced
by the first line of the group's docstring (``Title: what it holds.``); fields declared on
``Settings`` itself, if any, go by the ``# --- Section ---`` comments above them.
``tests/docs/test_config_reference.py`` fails when the committed page is stale, so the
reference cannot drift from the code.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import re
import sys
import textwrap
import types
import typing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, SecretStr

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "reference" / "configuration.md"
if str(ROOT) not in sys.path:  # run as a script from anywhere: import this checkout's engine
    sys.path.insert(0, str(ROOT))

_SECTION = re.compile(r"^\s*#\s*---\s*(.+?)\s*-*\s*$")
_LEADING_ENV = re.compile(r"^``(RISKSTREAM_[A-Z0-9_]+)``[.:,]?\s*")


@dataclass(frozen=True, slots=True)
class Row:
    """One documented setting."""

    section: str
    field: str  # the flat name: the variable without its prefix, a keyword of Settings(...)
    path: str  # the attribute: ``kafka.bootstrap``
    env: str
    doc_env: str | None  # the variable the docstring names, if it names one
    type: str
    default: str
    description: str


def attribute_docstrings(cls: type) -> tuple[dict[str, str], dict[str, str]]:
    """``(docstrings, sections)`` of the fields a class body declares, base classes first.

    A field's docstring is the string literal right after its annotated assignment; its
    section is the last ``# --- Name ---`` comment above it.
    """
    docs: dict[str, str] = {}
    sections: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or klass.__module__.split(".")[0] in ("pydantic", "pydantic_settings"):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = ast.parse(source).body[0]
        assert isinstance(body, ast.ClassDef)
        lines = source.splitlines()
        section_at = {
            number: match.group(1)
            for number, line in enumerate(lines, start=1)
            if (match := _SECTION.match(line))
        }
        statements = body.body
        for stmt, after in zip(statements, [*statements[1:], None], strict=True):
            if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
                continue
            name = stmt.target.id
            if (
                isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[name] = inspect.cleandoc(after.value.value)
            above = [n for n in section_at if n < stmt.lineno]
            if above:
                sections[name] = section_at[max(above)]
    return docs, sections


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The annotation without ``| None`` and ``Annotated``, and whether None was allowed."""
    optional = False
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        if len(args) == 1:
            inner, _ = _unwrap(args[0])
            return inner, optional
    return annotation, optional


def render_type(annotation: Any, metadata: list[Any]) -> str:
    """A reader's type: ``int, 1 to 1024``, ``one of text, json``, ``comma-separated numbers``."""
    inner, _ = _unwrap(annotation)
    origin = typing.get_origin(inner)
    if origin is Literal:
        text = "one of " + ", ".join(f"`{value}`" for value in typing.get_args(inner))
    elif origin is tuple:
        (item, *_rest) = typing.get_args(inner)
        text = "comma-separated " + ("numbers" if item is float else "names")
    elif inner is SecretStr:
        text = "secret string (never logged)"
    elif inner is Path:
        text = "path"
    elif isinstance(inner, type):
        text = {bool: "boolean", int: "integer", float: "number", str: "string"}.get(
            inner, inner.__name__
        )
    else:
        text = str(inner)
    bounds = []
    for item in metadata:
        for attr, symbol in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            value = getattr(item, attr, None)
            if value is not None:
                bounds.append(f"{symbol} {_number(value)}")
    return text + (f", {', '.join(bounds)}" if bounds else "")


def _number(value: object) -> str:
    if isinstance(value, float):
        return format(value, "g") if abs(value) < 1e15 else repr(value)
    return str(value)


def render_default(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, tuple):
        return f"`{','.join(_number(v) for v in value)}`" if value else "empty"
    if isinstance(value, SecretStr):
        return "unset" if not value.get_secret_value() else "(set)"
    return f"`{_number(value)}`"


def render_description(doc: str) -> str:
    """Docstring (reST) to one Markdown table cell."""
    text = _LEADING_ENV.sub("", doc)
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"``\1``", text)  # :class:`x` -> ``x``
    text = text.replace("``", "`")
    # repository paths of documentation pages become links (this page is docs/reference/)
    text = re.sub(r"(?<![\w/`])docs/([\w./-]+\.md)", r"[docs/\1](../\1)", text)
    text = " ".join(text.split())
    text = text[:1].upper() + text[1:]
    # pipes outside code spans would split the table cell
    parts = text.split("`")
    parts[::2] = [part.replace("|", "\\|") for part in parts[::2]]
    return "`".join(parts)


def group_title(model: type[BaseModel]) -> tuple[str, str]:
    """``(title, introduction)`` of a group of settings from its docstring's first line.

    >>> class Kafka(BaseModel):
    ...     'Kafka: brokers and security.'
    >>> group_title(Kafka)
    ('Kafka', 'Brokers and security.')
    """
    line = inspect.cleandoc(model.__doc__ or "").split("\n")[0]
    title, _, intro = line.partition(": ")
    return title, intro[:1].upper() + intro[1:]


def rows(settings: type[BaseModel], prefix: str | None = None) -> list[Row]:
    """Every leaf setting of a settings model grouped by concern, in declaration order.

    A leaf's environment variable is the prefix (``RISKSTREAM_``) and its flat name: its
    validation alias when it has one (a group's fields are aliased ``kafka_bootstrap``
    ...), else its name.
    """
    env_prefix = prefix if prefix is not None else str(settings.model_config.get("env_prefix", ""))
    docs, sections = attribute_docstrings(settings)
    out: list[Row] = []
    for name, field in settings.model_fields.items():
        inner, _ = _unwrap(field.annotation)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            title, _ = group_title(inner)
            out.extend(
                replace(row, section=title, path=f"{name}.{row.path}")
                for row in rows(inner, prefix=env_prefix)
            )
            continue
        alias = field.validation_alias if isinstance(field.validation_alias, str) else None
        flat = alias or name
        doc = docs.get(name, "")
        match = _LEADING_ENV.match(doc)
        out.append(
            Row(
                section=sections.get(name, ""),
                field=flat,
                path=name,
                env=f"{env_prefix}{flat}".upper(),
                doc_env=match.group(1) if match else None,
                type=render_type(field.annotation, list(field.metadata)),
                default=render_default(field.get_default(call_default_factory=True)),
                description=render_description(doc),
            )
        )
    return out


HEADER = """\
# Configuration reference

<!-- Generated by docs/gen_config.py from engine/config.py: edit the setting's
docstring there and run `python docs/gen_config.py`; tests/docs/test_config_reference.py
fails while this page is stale. -->

Every setting is an environment variable, read once when a command starts
(`engine/config.py`, class `Settings`; frozen after that, and nothing below the entry point
reads the environment). Lists are comma-separated (`RISKSTREAM_VAR_LEVELS=0.95,0.99`);
booleans are `true` or `false`. Secrets print as `**********` and are never logged.

In Python, settings are grouped by concern as the sections below are: each section names
its group (`settings.kafka`), and a field's name is its variable's without the prefix and
the group's name, so `RISKSTREAM_KAFKA_BOOTSTRAP` is `settings.kafka.bootstrap` and
`RISKSTREAM_VAR_LEVELS` is `settings.risk.var_levels`. `Settings(...)` takes the flat names
as keywords (`Settings(kafka_bootstrap="127.0.0.1:9092", partitions=3)`).

A bad value stops the command with one line and exit status 2, for example:

```
riskstream: error: invalid settings: RISKSTREAM_EWMA_LAMBDA: Value error, ewma_lambda must be strictly between 0 and 1
```

"""

FOOTER = """\
## Other environment variables

Not settings of the engine, but read by the tools around it:

| variable | read by | meaning |
|---|---|---|
| `RISKSTREAM_SHARED_DATA` | data sets, tests, benchmarks | the real data sets' directory (default `../shared/data`) |
| `RISKSTREAM_CACHE` | `riskstream services install` | download cache for the Kafka jars (default `~/.cache/riskstream`) |
| `RISKSTREAM_SERVICES_DIR` | `riskstream services` | the local services' data, logs and pid files (default `.run/services`) |
| `RISKSTREAM_PORTFOLIO_POSITIONS`, `_INTERVAL`, `_LAMBDA`, `_LEVELS`, `_MIN_OBS`, `_NU` | `riskstream portfolio serve` | the command's `--positions`, `--interval`, `--lambda`, `--levels`, `--min-obs`, `--nu` options |
| `RISKSTREAM_PROMETHEUS_URL` | Grafana provisioning (compose) | the Prometheus datasource URL |
| `RISKSTREAM_TEST_SERVICES` | the test suite | `native`, `docker` or `auto` (default): how tests run Kafka and Redis |
| `RISKSTREAM_FAULT_*` | the fault suite | run sizes and seeds ([Fault suite](../operations/fault-suite.md)) |
"""


def render(settings: type[BaseModel]) -> str:
    parts = [HEADER]
    intros = {
        title: (name, intro)
        for name, field in settings.model_fields.items()
        if isinstance(model := _unwrap(field.annotation)[0], type) and issubclass(model, BaseModel)
        for title, intro in [group_title(model)]
    }
    current: str | None = None
    for row in rows(settings):
        if row.section != current:
            current = row.section
            parts.append(f"## {current or 'Settings'}\n\n")
            if current in intros:
                name, intro = intros[current]
                parts.append(f"{render_description(intro)} In Python: `settings.{name}`.\n\n")
            parts.append("| variable | type | default | meaning |\n|---|---|---|---|\n")
        parts.append(f"| `{row.env}` | {row.type} | {row.default} | {row.description} |\n")
    text = "".join(parts)
    # blank line after each table before the next heading
    text = text.replace("|\n## ", "|\n\n## ")
    return text + "\n" + FOOTER


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if the page is stale")
    args = parser.parse_args(argv)
    from engine.config import Settings

    text = render(Settings)
    if args.check:
        if not PAGE.exists() or PAGE.read_text(encoding="utf-8") != text:
            print(
                f"{PAGE.relative_to(ROOT)} is stale: run python docs/gen_config.py", file=sys.stderr
            )
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
