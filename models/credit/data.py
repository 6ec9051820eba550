"""Reading a tabular CSV with a binary target into model inputs, with clear errors.

Rules (also recorded in the model card's ``preprocessing``):

* an ``ID`` or ``id`` column identifies rows; it is never a feature;
* the target must have exactly two distinct values (rows where it is missing are dropped
  and counted). The positive class (what ``pd`` is the probability of) is ``--positive``
  when given, else 1 for numbers (or the larger of two numbers), ``True`` for booleans, or
  a text meaning yes/default/bad; otherwise training asks for ``--positive``;
* a column whose non-missing values all read as numbers is numeric; any other column is
  categorical, its levels the text values, the ``max_categories`` most frequent kept
  (ties by text) and the rest mapped to one "other" code;
* columns that are entirely empty carry nothing and are dropped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.credit.card import FeatureSpec, category_text
from engine.errors import InputError

ID_COLUMNS = ("ID", "id")
POSITIVE_TEXT = {"1", "yes", "y", "true", "t", "default", "defaulted", "bad", "positive"}
MIN_PER_CLASS = 10


@dataclass
class Dataset:
    """Features (raw frame), 0/1 target, and what was inferred about the file."""

    frame: pd.DataFrame
    y: np.ndarray
    inputs: tuple[FeatureSpec, ...]
    target: str
    positive: str
    id_column: str | None
    sha256: str
    rows_read: int
    notes: list[str] = field(default_factory=list)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_csv(path: Path | str) -> pd.DataFrame:
    """A CSV as a frame (numbers parsed, other values text); :class:`InputError` if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"file not found: {path}")
    try:
        frame = pd.read_csv(path, low_memory=False)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable CSV file ({exc})".replace("\n", " ")) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise InputError(f"{path}: no data rows")
    return frame


def _positive_label(values: list[Any], positive: str | None, target: str) -> Any:
    if positive is not None:
        for v in values:
            if category_text(v) == positive:
                return v
        shown = ", ".join(category_text(v) for v in values)
        raise InputError(f"--positive {positive!r} is not a value of {target!r} ({shown})")
    if all(isinstance(v, bool | np.bool_) for v in values):
        return True
    if all(isinstance(v, int | float | np.integer | np.floating) for v in values):
        return max(values)
    for v in values:
        if category_text(v).strip().lower() in POSITIVE_TEXT:
            return v
    shown = ", ".join(repr(category_text(v)) for v in values)
    raise InputError(
        f"cannot tell which value of {target!r} is the positive class ({shown}); give --positive"
    )


def load(
    path: Path | str,
    target: str,
    *,
    positive: str | None = None,
    max_categories: int = 50,
) -> Dataset:
    """Read ``path`` and prepare it for training (module docstring); :class:`InputError` on bad input."""
    path = Path(path)
    frame = read_csv(path)
    if target not in frame.columns:
        raise InputError(
            f"{path}: target column {target!r} not found (columns: {', '.join(frame.columns)})"
        )
    notes: list[str] = []
    rows_read = len(frame)
    labels = frame[target]
    known = labels.notna()
    if not known.all():
        notes.append(f"{int((~known).sum())} row(s) without a target value dropped")
        frame = frame[known].reset_index(drop=True)
        labels = frame[target]
    values = sorted(pd.unique(labels).tolist(), key=category_text)
    if len(values) != 2:
        shown = ", ".join(repr(category_text(v)) for v in values[:5]) + (
            " ..." if len(values) > 5 else ""
        )
        raise InputError(
            f"{path}: target {target!r} must be binary (two distinct values), "
            f"found {len(values)}: {shown}"
        )
    positive_value = _positive_label(values, positive, target)
    y = (labels == positive_value).to_numpy(dtype=np.int64)
    counts = np.bincount(y, minlength=2)
    if counts.min() < MIN_PER_CLASS:
        raise InputError(
            f"{path}: too few rows of one class to train and validate "
            f"({counts[1]} positive, {counts[0]} negative; at least {MIN_PER_CLASS} each)"
        )
    id_column = next((c for c in ID_COLUMNS if c in frame.columns and c != target), None)
    features = frame.drop(columns=[c for c in (target, id_column) if c is not None])
    inputs: list[FeatureSpec] = []
    for name in features.columns:
        column = features[name]
        present = column.dropna()
        if present.empty:
            notes.append(f"column {name!r} is empty: dropped")
            continue
        if column.dtype == bool or pd.api.types.is_numeric_dtype(column):
            inputs.append(FeatureSpec(name, "numeric"))
            continue
        text = present.astype(str).str.strip()
        if pd.to_numeric(text, errors="coerce").notna().all():
            inputs.append(FeatureSpec(name, "numeric"))
            continue
        levels = pd.Series([category_text(v) for v in present.tolist()]).value_counts()
        ordered = sorted(levels.items(), key=lambda item: (-item[1], item[0]))
        kept = tuple(level for level, _ in ordered[:max_categories])
        if len(ordered) > max_categories:
            notes.append(
                f"column {name!r}: {len(ordered)} levels, the {max_categories} most frequent kept"
            )
        inputs.append(FeatureSpec(name, "categorical", kept))
    if not inputs:
        raise InputError(f"{path}: no feature columns besides the target and id")
    return Dataset(
        frame=features[[f.name for f in inputs]],
        y=y,
        inputs=tuple(inputs),
        target=target,
        positive=category_text(positive_value),
        id_column=id_column,
        sha256=file_sha256(path),
        rows_read=rows_read,
        notes=notes,
    )
