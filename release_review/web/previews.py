"""Previews of a request's files for the reviewer's page, rendered on the server.

- tables (CSV, Parquet, JSON records or columns): the first rows, the row count, and per numeric
  column the minimum, the smallest value above zero, the maximum and the sum (what Airlock's CSV
  summary gives checkers: small or unrounded counts stand out);
- images: shown from the file route (the re-encoded PNG, without metadata);
- text (TXT, Markdown, JSON that is not a table, HTML): the beginning as plain text. HTML is
  never rendered: the reviewer reads its source, so active content cannot run in their browser.

Nothing here is trusted: every value is escaped by the templates, and a file that cannot be read
says so instead of breaking the page.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from release_review.checks.tables import TableError, decode_text

ROWS = 20
TEXT_CHARS = 20_000
MAX_PREVIEW_BYTES = 20 << 20


@dataclass
class Preview:
    kind: str  # table | image | text | none
    note: str = ""
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    total_rows: int = 0
    summary: list[dict[str, Any]] = field(default_factory=list)
    text: str = ""


def preview(name: str, data: bytes | None, size: int) -> Preview:
    suffix = Path(name).suffix.lower()
    if suffix == ".png":
        return Preview("image")
    if data is None or size > MAX_PREVIEW_BYTES:
        return Preview("none", f"{size:,} bytes: too large to preview here")
    try:
        if suffix == ".csv":
            return _table(_read_csv(data))
        if suffix == ".parquet":
            return _table(pq.read_table(io.BytesIO(data)))
        if suffix == ".json":
            table = _json_table(data)
            return _table(table) if table is not None else _text(data)
        if suffix in (".txt", ".md", ".markdown", ".html", ".htm"):
            return _text(data, "HTML source, not rendered" if suffix.startswith(".htm") else "")
    except (pa.ArrowException, TableError, ValueError, OSError) as e:
        return Preview("none", f"cannot be previewed: {str(e)[:300]}")
    return Preview("none", "no preview for this type")


def _read_csv(data: bytes) -> pa.Table:
    text = decode_text(data)
    return pacsv.read_csv(io.BytesIO(text.encode("utf-8")))


def _json_table(data: bytes) -> pa.Table | None:
    doc = json.loads(decode_text(data))
    if isinstance(doc, list) and doc and all(isinstance(r, dict) for r in doc):
        return pa.Table.from_pylist(doc)
    if isinstance(doc, dict) and doc and all(isinstance(v, list) for v in doc.values()) and \
            len({len(v) for v in doc.values()}) == 1:
        return pa.table(doc)
    return None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value)


def _table(table: pa.Table) -> Preview:
    head = table.slice(0, ROWS).to_pylist()
    rows = [[_cell(r[c]) for c in table.column_names] for r in head]
    summary = []
    for name in table.column_names:
        col = table[name]
        if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
            continue
        positive = pc.filter(col, pc.greater(col, 0))
        summary.append({"column": name, "min": _cell(pc.min(col).as_py()),
                        "min_above_zero": _cell(pc.min(positive).as_py())
                        if len(positive) else "",
                        "max": _cell(pc.max(col).as_py()), "sum": _cell(pc.sum(col).as_py())})
    return Preview("table", columns=list(table.column_names), rows=rows,
                   total_rows=table.num_rows, summary=summary)


def _text(data: bytes, note: str = "") -> Preview:
    text = decode_text(data)
    cut = len(text) > TEXT_CHARS
    return Preview("text", note + ("; " if note and cut else "") +
                   (f"first {TEXT_CHARS:,} characters" if cut else ""), text=text[:TEXT_CHARS])
