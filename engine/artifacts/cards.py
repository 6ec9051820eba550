"""What every model card of riskstream shares: the ``card.json`` file, its schema tag,
and the SHA-256 of the artifacts it names.

A card is a JSON document with a ``schema`` tag (``riskstream.<kind>.card/<n>``); the
credit (:mod:`engine.credit.card`) and deep (:mod:`engine.deep.card`) cards add their
own fields. Reading one fails with :class:`~engine.errors.InputError` when there is no
card at all and :class:`~engine.errors.ModelMismatchError` when there is one that cannot
be used (not JSON, another schema, an artifact missing or changed since it was written).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import orjson

from engine.errors import InputError, ModelMismatchError

CARD_FILE = "card.json"


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_card(doc: Mapping[str, Any], directory: Path) -> Path:
    """Write ``doc`` as ``DIR/card.json`` (indented, numpy values allowed); returns the path."""
    path = Path(directory) / CARD_FILE
    path.write_bytes(
        orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY) + b"\n"
    )
    return path


class Card(Protocol):
    """What every model card object has: its header and the fields it does not interpret."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def extra(self) -> Mapping[str, Any]: ...


def card_json(
    schema: str,
    card: Card,
    *,
    fields: Mapping[str, Any],
    artifacts: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """A card's JSON document: ``schema``, the card's ``name``, ``kind``, ``version``,
    then the kind's own ``fields``, then one section per artifact, then the rest of the
    card's ``extra``.

    Each artifact section (e.g. ``{"onnx": {"file": "model.onnx"}}``) is laid over the
    ``extra`` entry of the same name, so what training recorded there (``sha256``, sizes)
    is kept and the card's own keys win.

    >>> from types import SimpleNamespace
    >>> card = SimpleNamespace(name="m", kind="k", version="1",
    ...                        extra={"onnx": {"sha256": "ab"}, "metrics": {}})
    >>> card_json("riskstream.x.card/1", card, fields={}, artifacts={"onnx": {"file": "m.onnx"}})
    {'schema': 'riskstream.x.card/1', 'name': 'm', 'kind': 'k', 'version': '1', 'onnx': {'sha256': 'ab', 'file': 'm.onnx'}, 'metrics': {}}
    """
    extra = card.extra
    return {
        "schema": schema,
        "name": card.name,
        "kind": card.kind,
        "version": card.version,
        **fields,
        **{key: {**extra.get(key, {}), **own} for key, own in artifacts.items()},
        **{k: v for k, v in extra.items() if k not in artifacts},
    }


def card_fields(
    doc: Mapping[str, Any], schema: str, what: str, own: Iterable[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The inverse of :func:`card_json`: ``(header, extra)`` of a parsed card.

    Checks the ``schema`` tag (:func:`check_schema`; ``what`` names the model kind in the
    error); ``header`` is ``name``, ``kind`` and ``version``; ``extra`` every other key
    but the kind's ``own`` fields (artifact sections stay in it, with what training
    recorded there). A missing header key raises :class:`KeyError`, as a missing field.

    >>> card_fields({"schema": "s/1", "name": "m", "kind": "k", "version": "1", "w": 2,
    ...              "onnx": {"file": "m.onnx"}}, "s/1", "x", ("w",))
    ({'name': 'm', 'kind': 'k', 'version': '1'}, {'onnx': {'file': 'm.onnx'}})
    """
    check_schema(doc, schema, what)
    header = {key: doc[key] for key in ("name", "kind", "version")}
    skip = {"schema", *header, *own}
    return header, {k: v for k, v in doc.items() if k not in skip}


def read_card(directory: Path | str, what: str) -> tuple[Path, Any]:
    """``(path, parsed JSON)`` of ``DIR/card.json``; ``what`` names the model kind in errors."""
    directory = Path(directory)
    path = directory / CARD_FILE
    if not path.is_file():
        raise InputError(f"{directory}: not a {what} model directory (no {CARD_FILE})")
    try:
        return path, orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ModelMismatchError(f"{path}: malformed model card ({exc})") from None


def check_schema(doc: Mapping[str, Any], schema: str, what: str) -> None:
    """:class:`ModelMismatchError` unless ``doc`` carries the ``schema`` tag."""
    if doc.get("schema") != schema:
        raise ModelMismatchError(
            f"not a riskstream {what} model card (schema {doc.get('schema')!r}, "
            f"expected {schema!r})"
        )


def verify_artifact(directory: Path, file: str, sha256: str | None) -> None:
    """The artifact ``DIR/file`` exists and, when the card recorded one, has that SHA-256."""
    path = Path(directory) / file
    if not path.is_file():
        raise ModelMismatchError(f"{directory}: {file} named by the card is missing")
    if sha256 and sha256_file(path) != sha256:
        raise ModelMismatchError(
            f"{path}: content differs from the model card (sha256 mismatch); "
            "retrain or restore the directory as written"
        )
