"""``riskstream credit score``: a CSV in, one probability of default per row out.

The output has one row per input row, in input order: the input's ``ID`` or ``id`` column
when present (or the card's id column), then ``pd``, the calibrated probability of the
positive class. The target column may be present or absent; it is not read. The file is
read in chunks, so any size scores in bounded memory.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from engine.credit.model import CreditModel
from engine.errors import InputError

ID_COLUMNS = ("ID", "id")


def score_file(model: CreditModel, data: Path, out: Path, *, chunk_rows: int = 100_000) -> int:
    """Score ``data`` into ``out``; returns the number of rows. :class:`InputError` on bad input."""
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
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    header_written = False
    try:
        with reader, out.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            for chunk in reader:
                chunk.columns = [str(c).strip() for c in chunk.columns]
                id_column = next(
                    (c for c in (*ID_COLUMNS, card.id_column) if c and c in chunk.columns), None
                )
                if not header_written:
                    writer.writerow([id_column, "pd"] if id_column else ["pd"])
                    header_written = True
                X = card.encode_frame(chunk, f"{data} (rows {rows + 1}-{rows + len(chunk)})")
                pd_values = model.predict(X).tolist()
                if id_column:
                    writer.writerows(zip(chunk[id_column].tolist(), pd_values, strict=True))
                else:
                    writer.writerows([p] for p in pd_values)
                rows += len(chunk)
            if not header_written:  # a header and no rows
                header = pd.read_csv(data, nrows=0).columns
                id_column = next((c for c in ID_COLUMNS if c in header), None)
                missing = [f.name for f in card.inputs if f.name not in header]
                if missing:
                    raise InputError(f"{data}: missing feature column(s) {', '.join(missing)}")
                writer.writerow([id_column, "pd"] if id_column else ["pd"])
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        out.unlink(missing_ok=True)
        raise InputError(f"{data}: not a readable CSV file ({exc})".replace("\n", " ")) from None
    except InputError:
        out.unlink(missing_ok=True)
        raise
    return rows
