"""``riskstream credit score``: a CSV in, one probability of default per row out.

The output has one row per input row, in input order: the input's ``ID`` or ``id`` column
when present (or the card's id column), then ``pd``, the calibrated probability of the
positive class. The target column may be present or absent; it is not read. The file is
read in chunks, so any size scores in bounded memory.
"""

from __future__ import annotations

import csv
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.credit.model import CreditModel
from engine.errors import InputError, ModelMismatchError

ID_COLUMNS = ("ID", "id")


def score_file(
    model: CreditModel,
    data: Path,
    out: Path,
    *,
    chunk_rows: int = 100_000,
    explain: Path | None = None,
) -> int:
    """Score ``data`` into ``out``; returns the number of rows (at least one).

    With ``explain``, also write each row's SHAP attributions there (:data:`EXPLAIN_HELP`),
    the attributions the streaming explanation service attaches to an alert
    (:meth:`CreditModel.explainer <engine.credit.model.CreditModel.explainer>`).

    :class:`InputError` on bad input, a file without rows included; ``out`` and
    ``explain`` are then removed.
    """
    data = Path(data)
    if not data.is_file():
        raise InputError(f"file not found: {data}")
    card = model.card
    # Categorical features are read as text, so "01" stays a level and is not read as 1.
    text_columns = {f.name: str for f in card.inputs if f.kind == "categorical"}
    try:
        reader = pd.read_csv(data, chunksize=chunk_rows, dtype=text_columns, low_memory=False)
    except pd.errors.EmptyDataError:
        raise InputError(f"{data}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{data}: not a readable CSV file ({exc})".replace("\n", " ")) from None
    written = [out] if explain is None else [out, explain]
    for path in written:
        path.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    header_written = False
    try:
        with reader, ExitStack() as files:
            writer = csv.writer(files.enter_context(out.open("w", newline="", encoding="utf-8")))
            why = None
            if explain is not None:
                why = csv.writer(
                    files.enter_context(explain.open("w", newline="", encoding="utf-8"))
                )
            for chunk in reader:
                chunk.columns = [str(c).strip() for c in chunk.columns]
                id_column = next(
                    (c for c in (*ID_COLUMNS, card.id_column) if c and c in chunk.columns), None
                )
                head = [id_column] if id_column else []
                if not header_written:
                    writer.writerow([*head, "pd"])
                    if why is not None:
                        why.writerow(
                            [*head, *EXPLAIN_COLUMNS, *(f"shap_{n}" for n in card.feature_names)]
                        )
                    header_written = True
                where = f"{data} (rows {rows + 1}-{rows + len(chunk)})" if len(chunk) else data
                X = card.encode_frame(chunk, str(where))
                pd_values = model.predict(X)
                ids = [[i] for i in chunk[id_column].tolist()] if id_column else [[]] * len(chunk)
                writer.writerows([*i, p] for i, p in zip(ids, pd_values.tolist(), strict=True))
                if why is not None and len(chunk):
                    why.writerows(_explained(model, X, pd_values, ids, str(where)))
                rows += len(chunk)
            if rows == 0:  # a header and no rows (pandas may or may not yield an empty chunk)
                header = pd.read_csv(data, nrows=0).columns
                missing = [f.name for f in card.inputs if f.name not in header]
                if missing:
                    raise InputError(f"{data}: missing feature column(s) {', '.join(missing)}")
                raise InputError(f"{data}: no rows to score (the file has a header only)")
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        for path in written:
            path.unlink(missing_ok=True)
        raise InputError(f"{data}: not a readable CSV file ({exc})".replace("\n", " ")) from None
    except (InputError, ModelMismatchError):
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return rows


#: Columns of the explanation file after the id column (then one ``shap_<feature>`` each).
EXPLAIN_COLUMNS = ("pd", "base_pd", "base", "output")

EXPLAIN_HELP = (
    "one row per input row, in order: the id column if any, pd (as in the scores), base_pd "
    "(the PD at the base value), base and output (the model's raw score, log-odds for "
    "LightGBM) and shap_<feature> for every feature, in the model's input order; "
    "base + the sum of the shap_ columns = output, and output calibrated is pd"
)


def _explained(
    model: CreditModel, X: np.ndarray, pd_values: np.ndarray, ids: list[list[Any]], where: str
) -> list[list[Any]]:
    """Rows of the explanation file for one chunk (see :data:`EXPLAIN_HELP`)."""
    from engine.explain.tree import ADDITIVITY_TOLERANCE

    found = model.explainer().explain(X)
    worst = float(found.additivity_error.max())
    if worst > ADDITIVITY_TOLERANCE:
        raise ModelMismatchError(
            f"{where}: SHAP attributions miss the native model's output by {worst:.3g} "
            f"(tolerance {ADDITIVITY_TOLERANCE:g}); the native model does not match"
        )
    base_pd = model.calibrate(found.base)
    return [
        [*i, p, b_pd, b, o, *v]
        for i, p, b_pd, b, o, v in zip(
            ids,
            pd_values.tolist(),
            base_pd.tolist(),
            found.base.tolist(),
            found.output.tolist(),
            found.values.tolist(),
            strict=True,
        )
    ]
