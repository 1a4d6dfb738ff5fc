"""Reading the CSV/TSV tables datasets ship, with a check of the columns a script needs."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from .layout import PrepError


def read_table(
    path: Path, columns: Sequence[str], *, delimiter: str = ",", quoting: int = csv.QUOTE_MINIMAL
) -> list[dict[str, str]]:
    """The rows of a table with a header line, as dicts; :class:`PrepError` if a needed column is missing.

    ``quoting=csv.QUOTE_NONE`` reads tables written without quoting (CoVoST's TSVs, whose
    sentences contain bare quotes); a backslash then escapes a delimiter.
    """
    options = {"escapechar": "\\"} if quoting == csv.QUOTE_NONE else {}
    try:
        with open(path, encoding="utf-8", newline="") as stream:
            reader = csv.DictReader(stream, delimiter=delimiter, quoting=quoting, **options)
            header = reader.fieldnames or []
            missing = [name for name in columns if name not in header]
            if missing:
                raise PrepError(
                    f"{path}: missing column(s) {', '.join(missing)}; the header has {', '.join(header) or 'nothing'}"
                )
            return [dict(row) for row in reader]
    except UnicodeDecodeError as exc:
        raise PrepError(f"{path}: not a UTF-8 text table ({exc.reason})") from None
    except csv.Error as exc:
        raise PrepError(f"{path}: malformed table: {exc}") from None
