"""Reading an uploaded dataset file (CSV or Parquet) into Arrow, with careful column types.

CSV: UTF-8 (a BOM is allowed) or GB 18030 (what Excel writes on Chinese Windows), header row
first. Every column is read as text, then given a narrower type only when every value fits it
exactly (``refine``):

- integers: optional sign and at most 8 digits without a leading zero, in a column whose name
  does not say it holds identifiers or codes (``…_id``, ``…_code``, ``…号``, ``编码``…); longer
  digit strings (mobile numbers, IDs, cards), codes with leading zeros (``0871…``) and named
  codes (``district_code``) stay text, because they are identifiers, not quantities (an ID
  read as a number loses its ``X`` check character or leading zero, and joins break);
- decimals: digits with a fixed fraction of up to 4 places become ``DECIMAL(18, k)``;
- ISO dates (``2025-03-01``) and date-times (``2025-03-01 08:15:00``) become DATE and TIMESTAMP;
- ``true``/``false`` become BOOLEAN.

Parquet files keep their own types. The table is written as Parquet for the domain store
(``hub.domain.DomainStore.load`` takes Parquet), and DuckDB names the column types the catalog
records.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from hub.console.errors import UploadRefused

INTEGER = r"^-?(0|[1-9][0-9]{0,7})$"
CODE_NAMES = re.compile(r"(^|_)(id|code|no|number|num)$|(^|_)id_|号|编码|代码|编号", re.IGNORECASE)
DECIMAL = r"^-?(0|[1-9][0-9]{0,13})\.[0-9]{1,4}$"
DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
TIMESTAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}(:[0-9]{2})?$"
BOOLEAN = r"^(?i:true|false)$"
MAX_COLUMNS = 500


def detect_encoding(path: Path) -> str:
    """``utf8`` if the whole file decodes as UTF-8, else ``gb18030`` if that decodes it."""
    for name in ("utf-8", "gb18030"):
        decoder = codecs.getincrementaldecoder(name)()
        try:
            with open(path, "rb") as f:
                while chunk := f.read(1 << 22):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return "utf8" if name == "utf-8" else name
    raise UploadRefused("the file is not UTF-8 or GB 18030 text, so it cannot be read as CSV")


def read_csv(path: Path) -> pa.Table:
    encoding = detect_encoding(path)
    read = pacsv.ReadOptions(encoding=encoding, block_size=1 << 24)
    parse = pacsv.ParseOptions(newlines_in_values=True)
    try:
        names = pacsv.open_csv(path, read_options=read, parse_options=parse).schema.names
        if len(names) > MAX_COLUMNS:
            raise UploadRefused(f"the file has {len(names)} columns; at most {MAX_COLUMNS}")
        convert = pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                       strings_can_be_null=True, quoted_strings_can_be_null=True)
        table = pacsv.read_csv(path, read_options=read, parse_options=parse,
                               convert_options=convert)
    except (pa.ArrowInvalid, UnicodeDecodeError) as e:
        raise UploadRefused(f"the file is not a readable CSV table: {_line(e)}") from None
    return pa.table([refine(col, name) for name, col in zip(table.column_names, table.columns)],
                    names=table.column_names)


def _all_match(col: pa.ChunkedArray, pattern: str) -> bool:
    present = col.drop_null()
    if len(present) == 0:
        return False
    return bool(pc.all(pc.match_substring_regex(present, pattern)).as_py())


def _try_cast(col: pa.ChunkedArray, typ: pa.DataType) -> pa.ChunkedArray | None:
    try:
        return pc.cast(col, typ)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def refine(col: pa.ChunkedArray, name: str = "") -> pa.ChunkedArray:
    """A text column as the narrowest type that keeps every value exactly (module doc)."""
    if not pa.types.is_string(col.type) or CODE_NAMES.search(name):
        return col
    present = col.drop_null()
    if _all_match(col, INTEGER):
        return _try_cast(col, pa.int64()) or col
    if _all_match(col, r"^-?[0-9]+(\.[0-9]+)?$") and _all_match(
            col, r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?$"):
        fractions = pc.utf8_length(pc.replace_substring_regex(present, r"^[^.]*\.?", ""))
        places = int(pc.max(fractions).as_py() or 0)
        whole = pc.utf8_length(pc.replace_substring_regex(present, r"\..*$", ""))
        digits = int(pc.max(whole).as_py() or 0) + places
        if 0 < places <= 4 and digits <= 18 and _all_match(col, DECIMAL):
            return _try_cast(col, pa.decimal128(18, places)) or col
        return col
    if _all_match(col, DATE):
        return _try_cast(col, pa.date32()) or col
    if _all_match(col, TIMESTAMP):
        return _try_cast(col, pa.timestamp("s")) or col
    if _all_match(col, BOOLEAN):
        return _try_cast(pc.utf8_lower(col), pa.bool_()) or col
    return col


def read_parquet(path: Path) -> pa.Table:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        raise UploadRefused(f"the file is not a readable Parquet file: {_line(e)}") from None
    if any(pa.types.is_nested(f.type) for f in table.schema):
        nested = [f.name for f in table.schema if pa.types.is_nested(f.type)]
        raise UploadRefused(f"nested columns ({', '.join(nested)}) cannot be registered; "
                            "flatten them first")
    return table


def read_table(path: Path, fmt: str) -> pa.Table:
    table = read_csv(path) if fmt == "csv" else read_parquet(path)
    if table.num_columns == 0:
        raise UploadRefused("the file has no columns")
    if table.num_rows == 0:
        raise UploadRefused("the file has a header but no rows")
    return table


def write_parquet(table: pa.Table, path: Path) -> list[tuple[str, str]]:
    """Write `table` for the domain store; the (name, DuckDB type) of each column."""
    pq.write_table(table, path, compression="zstd")
    con = duckdb.connect()
    try:
        rows = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
    finally:
        con.close()
    return [(r[0], r[1]) for r in rows]


def sniff_format(path: Path, filename: str) -> str:
    """``parquet`` (by magic bytes) or ``csv`` (by the name); anything else is refused."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head == b"PAR1":
        return "parquet"
    if filename.lower().endswith((".csv", ".txt")):
        return "csv"
    raise UploadRefused(f"{filename!r} is neither a Parquet file nor a .csv file")


def _line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__

