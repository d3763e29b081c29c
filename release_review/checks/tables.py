"""Artifacts as the checks see them: tables (Arrow) and text.

Formats are named by the file extension (``format_of``); the type gate checks separately that
the content agrees. Tabular formats:

- CSV: UTF-8 (a BOM is allowed) or GB 18030 (what Excel writes on Chinese Windows), header row
  first, types inferred (an 18-digit ID column stays a number if every value is digits; the
  identifier scan reads integer columns too);
- Parquet (what ``shuyu.release.submit`` writes for a DataFrame);
- JSON: records (``[{col: value}, …]``, also one record per line), columns
  (``{col: [values]}``), and the pandas layouts ``split`` (``{"columns", "data"}``), ``table``
  (``{"schema", "data"}``), ``columns`` (``{col: {index: value}}``, pandas' default) and
  ``index`` (``{index: {col: value}}``). Other JSON is text only.

Text (``load_text``) is the whole of a TXT or Markdown file, the text, attributes and scripts of
an HTML file (``htmltext``), and every key and scalar of a JSON document, one per line.

Loaded tables and texts are cached in ``ctx.cache`` by the artifact's sha256, so every check of
one run reads a file once.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from release_review.checks.base import Artifact, CheckContext
from release_review.checks.htmltext import parse_html

EXTENSIONS = {
    ".csv": "csv", ".parquet": "parquet", ".png": "png", ".json": "json", ".txt": "txt",
    ".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html",
}
TABULAR = frozenset({"csv", "parquet", "json"})
TEXTUAL = frozenset({"txt", "markdown", "html", "json"})
MAX_JSON_DEPTH = 64


class TableError(ValueError):
    """An artifact that claims to be a table cannot be read as one; the message says why."""


def format_of(artifact: Artifact) -> str | None:
    """The format named by the artifact's extension, or None if it is not an allowed one."""
    return EXTENSIONS.get(Path(artifact.name).suffix.lower())


def decode_text(data: bytes) -> str:
    """UTF-8 (BOM stripped) or GB 18030; raises TableError for anything else."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as e:
        raise TableError(f"not UTF-8 or GB 18030 text (byte {e.start})") from None


def load_table(ctx: CheckContext, artifact: Artifact) -> pa.Table | None:
    """The artifact as an Arrow table, None if its format is not tabular (or JSON that is not
    a table); raises TableError if it should be a table and cannot be read."""
    key = f"table:{artifact.sha256}:{artifact.name}"
    if key not in ctx.cache:
        try:
            ctx.cache[key] = _load_table(artifact)
        except TableError as e:
            ctx.cache[key] = e
    found = ctx.cache[key]
    if isinstance(found, TableError):
        raise found
    return found


def load_text(ctx: CheckContext, artifact: Artifact) -> str | None:
    """The artifact's text for the identifier scan, None for tables and images."""
    fmt = format_of(artifact)
    if fmt not in TEXTUAL:
        return None
    key = f"text:{artifact.sha256}:{artifact.name}"
    if key not in ctx.cache:
        ctx.cache[key] = _load_text(artifact, fmt)
    return ctx.cache[key]


def read_bytes(artifact: Artifact) -> bytes:
    try:
        return Path(artifact.path).read_bytes()
    except OSError as e:
        raise TableError(f"cannot read {artifact.name}: {e.strerror or e}") from None


# --- tables ----------------------------------------------------------------------------


def _load_table(artifact: Artifact) -> pa.Table | None:
    fmt = format_of(artifact)
    if fmt == "csv":
        return _normalize(_read_csv(artifact))
    if fmt == "parquet":
        try:
            with pq.ParquetFile(artifact.path) as f:  # (pq.read_table imports pandas)
                return _normalize(f.read())
        except (pa.ArrowException, OSError) as e:
            raise TableError(f"{artifact.name} is not a readable Parquet file: {e}") from None
    if fmt == "json":
        table = _read_json_table(read_bytes(artifact), artifact.name)
        return None if table is None else _normalize(table)
    return None


def _read_csv(artifact: Artifact) -> pa.Table:
    data = read_bytes(artifact)
    if not data.strip():
        raise TableError(f"{artifact.name} is empty")
    try:
        data.decode("utf-8")  # pyarrow checks values, not the header row
        encoding = "utf8"
    except UnicodeDecodeError:
        encoding = "gb18030"
    try:
        return pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(encoding=encoding),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as e:
        raise TableError(f"{artifact.name} is not a readable CSV file: {e}") from None


def _read_json_table(data: bytes, name: str) -> pa.Table | None:
    text = decode_text(data)
    try:
        doc = json.loads(text)
    except RecursionError:
        raise TableError(f"{name}: JSON nested deeper than Python can read") from None
    except json.JSONDecodeError as e:
        if e.msg != "Extra data":
            raise TableError(f"{name} is not valid JSON: {e}") from None
        try:  # one record per line
            return pajson.read_json(io.BytesIO(text.encode()))
        except pa.ArrowInvalid as e2:
            raise TableError(f"{name} is neither JSON nor JSON Lines: {e2}") from None
    rows = _json_records(doc)
    if rows is None:
        return None
    return _table_from_records(rows)


def _json_records(doc: Any) -> list[dict] | None:
    """The rows of a tabular JSON document (see module doc), None if it is not tabular."""
    if isinstance(doc, list):
        if doc and all(isinstance(r, dict) for r in doc):
            return doc
        return None
    if not isinstance(doc, dict) or not doc:
        return None
    if isinstance(doc.get("data"), list) and isinstance(doc.get("columns"), list):  # split
        cols = [str(c) for c in doc["columns"]]
        if all(isinstance(r, list) and len(r) == len(cols) for r in doc["data"]):
            return [dict(zip(cols, r)) for r in doc["data"]]
    if isinstance(doc.get("schema"), dict) and isinstance(doc.get("data"), list):  # table
        return _json_records(doc["data"])
    values = list(doc.values())
    if all(isinstance(v, list) for v in values):  # {col: [values]}
        n = len(values[0])
        if all(len(v) == n for v in values):
            return [dict(zip(doc.keys(), r)) for r in zip(*values)]
        return None
    if all(isinstance(v, dict) for v in values):
        keys = [str(k) for k in doc]
        if all(k.lstrip("-").isascii() and k.lstrip("-").isdigit() for k in keys):  # index orient: {row: {col: v}}
            return values
        index = list(dict.fromkeys(i for v in values for i in v))  # columns orient
        return [{c: doc[c].get(i) for c in doc} for i in index]
    return None


def _table_from_records(rows: list[dict]) -> pa.Table:
    try:
        return pa.Table.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # mixed types in a column: keep every value as text
        names = list(dict.fromkeys(k for r in rows for k in r))
        cols = {str(n): [None if r.get(n) is None else _as_text(r.get(n)) for r in rows]
                for n in names}
        return pa.table(cols)


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _normalize(table: pa.Table) -> pa.Table:
    """Flatten structs; nested lists and maps become their JSON text; names become strings."""
    if any(pa.types.is_struct(f.type) for f in table.schema):
        table = table.flatten()
    columns, names = [], []
    for f, col in zip(table.schema, table.columns):
        if pa.types.is_list(f.type) or pa.types.is_large_list(f.type) or pa.types.is_map(f.type):
            col = pa.array([None if v is None else _as_text(v) for v in col.to_pylist()],
                           pa.string())
        columns.append(col)
        names.append(str(f.name))
    return pa.table(columns, names=names)


# --- text ------------------------------------------------------------------------------


def _load_text(artifact: Artifact, fmt: str) -> str:
    text = decode_text(read_bytes(artifact))
    if fmt == "html":
        return parse_html(text).text
    if fmt == "json":
        try:
            doc = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            return text  # JSON Lines or broken JSON: scan the raw text
        parts: list[str] = []
        _json_leaves(doc, parts, 0)
        return "\n".join(parts)
    return text


def _json_leaves(node: Any, out: list[str], depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        out.append(json.dumps(node, ensure_ascii=False)[:10_000])
        return
    if isinstance(node, dict):
        for k, v in node.items():
            out.append(str(k))
            _json_leaves(v, out, depth + 1)
    elif isinstance(node, list):
        for v in node:
            _json_leaves(v, out, depth + 1)
    elif node is not None:
        out.append(str(node))
