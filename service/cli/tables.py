"""Tables that stay readable in an 80-column terminal."""

from __future__ import annotations

from rich.table import Table


def fold_long_cells(table: Table) -> Table:
    """Fold long cells onto more lines instead of cutting them with "…" (rich's default), and keep
    headers and numbers whole: in a narrow terminal a file name is worth a second line, not a guess."""
    for column in table.columns:
        column.overflow = "fold"
        if column.justify == "right":  # counts: never fold a number or its header
            column.no_wrap = True
            column.min_width = max(column.min_width or 0, len(str(column.header)))
    return table
