"""CSV: one file per table, UTF-8 with a byte-order mark so that Excel opens the Chinese text
intact, Excel's own dialect (comma, CRLF), Chinese headers, the same figures as the HTML.

A text cell that Excel would take for a formula (it starts with ``=``, ``+``, ``-``, ``@`` or a
control character; operators' notes are free text) is written with a leading ``'``."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

from ..files import PRIVATE, write_file
from .model import TABLES, Report, TableSpec

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(column, row) -> str:
    text = column.text(row)
    if column.kind == "text" and text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def table_csv(spec: TableSpec, rows: list) -> bytes:
    """Rows of a table as the bytes of a CSV file."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, dialect="excel")
    writer.writerow([column.label for column in spec.columns])
    for row in rows:
        writer.writerow([_cell(column, row) for column in spec.columns])
    return out.getvalue().encode("utf-8-sig")


def render_csv(report: Report, table: str) -> bytes:
    """One table as the bytes of a CSV file (for a download, or ``write_csv``)."""
    return table_csv(TABLES[table], report.rows(table))


def write_tables(
    tables: dict[str, TableSpec], rows: Callable[[str], list], out_dir: str | Path, *, stem: str, mode: int
) -> list[Path]:
    """Write ``{stem}{table}.csv`` for every table into ``out_dir`` (created if needed), each
    with ``mode`` and never through a symlink at its name (``files.write_file``); returns the
    paths written, in the tables' order."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, spec in tables.items():
        path = out / f"{stem}{name}.csv"
        write_file(path, table_csv(spec, rows(name)), mode=mode)
        paths.append(path)
    return paths


def write_csv(report: Report, out_dir: str | Path, *, stem: str = "", mode: int = PRIVATE) -> list[Path]:
    """Every table of the site report (``write_tables``)."""
    return write_tables(TABLES, report.rows, out_dir, stem=stem, mode=mode)
