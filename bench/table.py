"""Plain-text tables: what `python -m bench` prints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def fmt(value: Any, digits: int = 2) -> str:
    """Numbers with a fixed number of decimals (integers as they are), None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value.is_integer() and abs(value) >= 1000:
            return f"{int(value):,}"
        return f"{value:,.{digits}f}"
    return str(value)


def render(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]], *, digits: int = 2,
           note: str | None = None, right: Sequence[int] = ()) -> str:
    """A titled table; the first column is left-aligned, numeric cells (and the columns listed in
    `right`) right-aligned."""
    cells = [[fmt(c, digits) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(values: Sequence[str], numeric: Sequence[bool]) -> str:
        parts = []
        for i, value in enumerate(values):
            to_right = i > 0 and (numeric[i] or i in right)
            parts.append(value.rjust(widths[i]) if to_right else value.ljust(widths[i]))
        return "  ".join(parts).rstrip()

    numeric_columns = [
        all(isinstance(row[i], (int, float)) or row[i] is None for row in rows) if rows else True
        for i in range(len(headers))
    ]
    out = [title, "=" * len(title), line(list(headers), numeric_columns),
           "  ".join("-" * w for w in widths)]
    for row_cells, raw in zip(cells, rows, strict=True):
        numeric = [isinstance(v, (int, float)) or v is None for v in raw]
        out.append(line(row_cells, numeric))
    if note:
        out.append("")
        out.extend(note.splitlines())
    return "\n".join(out)
