"""Which of the author's ledgered queries produced a submitted aggregate table.

The analyst's numbers are never trusted: an aggregate table is traced back to one of the
author's ledgered queries (``ctx.queries``) by re-running each candidate on the trusted side and
matching its result to the table. Terms:

- *candidate*: a query that parses (sqlglot, DuckDB dialect) as one plain ``SELECT`` over
  source datasets only (no subqueries, CTEs or table functions) with at least one aggregate
  (COUNT, SUM, AVG, …) among its outputs. What runs is the re-rendered, checked tree, on the
  hardened read-only connection, never the ledger's text as is.
- *keys*: the candidate's non-aggregate outputs (its dimensions); *values*: its aggregate
  outputs, each of kind ``count``, ``sum``, ``avg`` or ``other`` (the outermost aggregate).
- *match*: every key output is a table column (by name, else by values: at least 90% of the
  column's distinct values occur among the key's), at least 90% of the table's rows (rows
  whose counts are all 0 aside: a GROUP BY never returns empty groups) find their keys in the
  result, and at least one numeric table column agrees with a value output on 90% of those rows
  (within rounding: the larger of the rounding base and 1%).

The best match (coverage, then agreement, then the newest query) is cached per artifact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from release_review.checks.base import Artifact, AuthoredQuery, CheckContext
from release_review.checks.trusted import connection, fetch_arrow

DIALECT = "duckdb"
MAX_CANDIDATES = 25
MIN_COVERAGE = 0.9
MIN_AGREEMENT = 0.9
NULL_KEY = "\x00null"
COUNT_NAMES = ("count", "cnt", "num", "人数", "数量", "户数", "个数", "频数", "频次", "次数", "n")


@dataclass
class Shape:
    """A candidate query taken apart."""

    query: AuthoredQuery
    tree: exp.Select
    keys: list[tuple[int, exp.Expression]]  # (output position, expression)
    values: list[tuple[int, exp.Expression, str]]  # (output position, expression, kind)
    tables: dict[str, str]  # alias -> dataset

    @property
    def sql(self) -> str:
        return self.tree.sql(dialect=DIALECT)


@dataclass
class Match:
    shape: Shape
    result: pa.Table
    key_columns: list[tuple[str, str]]  # (table column, result column)
    value_columns: list[tuple[str, str, str]]  # (table column, result column, kind)
    row_of: np.ndarray  # per table row: the result row it matches, -1 if none
    coverage: float
    agreement: float
    zero_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def evidence(self) -> dict:
        sql = self.shape.query.sql
        return {
            "query_ledger_index": self.shape.query.ledger_index,
            "query_sql": sql if len(sql) <= 2000 else sql[:2000] + " …",
            "keys": [t for t, _ in self.key_columns],
            "values": [{"column": t, "aggregate": k} for t, _, k in self.value_columns],
            "coverage": round(self.coverage, 4), "agreement": round(self.agreement, 4),
        }


# --- candidates --------------------------------------------------------------------------


def shape_of(query: AuthoredQuery, datasets: set[str]) -> Shape | None:
    """The query taken apart if it is a candidate (see module doc), else None."""
    try:
        trees = sqlglot.parse(query.sql, read=DIALECT)
    except SqlglotError:
        return None
    if len(trees) != 1 or not isinstance(trees[0], exp.Select):
        return None
    tree = trees[0]
    if tree.args.get("with") or any(
            isinstance(n, (exp.Subquery, exp.Union, exp.Lateral, exp.Values))
            or (isinstance(n, exp.Select) and n is not tree) for n in tree.walk()):
        return None
    if any(isinstance(i, exp.Star) or isinstance(i, exp.Column) and isinstance(i.this, exp.Star)
           for i in tree.expressions):
        return None
    tables = {}
    for t in tree.find_all(exp.Table):
        if t.args.get("db") and t.db.lower() != "main" or t.args.get("catalog"):
            return None
        if not isinstance(t.this, exp.Identifier) or t.name not in datasets:
            return None
        tables[t.alias_or_name] = t.name
    if not tables:
        return None
    keys, values = [], []
    for i, item in enumerate(tree.expressions):
        value = item.this if isinstance(item, exp.Alias) else item
        if any(isinstance(n, exp.AggFunc) for n in value.walk()):
            values.append((i, value, _aggregate_kind(value)))
        else:
            keys.append((i, value))
    if not values:
        return None
    return Shape(query, tree, keys, values, tables)


def _aggregate_kind(node: exp.Expression) -> str:
    inner = node
    while isinstance(inner, (exp.Cast, exp.TryCast, exp.Round, exp.Paren)):
        inner = inner.this
    if isinstance(inner, exp.Count):
        return "count"
    if isinstance(inner, exp.Sum):
        return "sum"
    if isinstance(inner, exp.Avg):
        return "avg"
    return "other"


def candidates(ctx: CheckContext) -> list[Shape]:
    datasets = {s.name for s in ctx.sources}
    shapes = [s for q in sorted(ctx.queries, key=lambda q: -q.ledger_index)
              if (s := shape_of(q, datasets)) is not None]
    seen, out = set(), []
    for s in shapes:  # the same SQL run twice is one candidate (the newest)
        if s.sql not in seen:
            seen.add(s.sql)
            out.append(s)
    return out[:MAX_CANDIDATES]


def run_shape(ctx: CheckContext, shape: Shape, limit: int) -> pa.Table | None:
    """The candidate's result on the raw data, or None if it has more than `limit` rows."""
    key = f"result:{shape.sql}"
    if key not in ctx.cache:
        with connection(ctx) as con:
            table = fetch_arrow(con, f"SELECT * FROM ({shape.sql}) LIMIT {int(limit) + 1}")
        ctx.cache[key] = table
    table = ctx.cache[key]
    return None if table.num_rows > limit else table


# --- matching ----------------------------------------------------------------------------


def normalized(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Values as comparable text: integral floats and decimals as integers, nulls marked."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    typ = arr.type
    if pa.types.is_dictionary(typ):
        arr = arr.cast(typ.value_type)
        typ = arr.type
    if pa.types.is_decimal(typ):
        arr = arr.cast(pa.float64())
        typ = arr.type
    if pa.types.is_floating(typ):
        f = np.asarray(arr.fill_null(np.nan).to_numpy(zero_copy_only=False), np.float64)
        integral = np.isfinite(f) & (np.floor(f) == f) & (np.abs(f) < 2**62)
        as_int = pa.array(np.where(integral, f, 0).astype(np.int64)).cast(pa.string())
        out = pc.if_else(pa.array(integral), as_int, arr.cast(pa.string()))
    elif pa.types.is_string(typ) or pa.types.is_large_string(typ):
        out = pc.utf8_trim_whitespace(arr.cast(pa.string()))
    else:
        try:
            out = arr.cast(pa.string())
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
            out = pa.array([None if v is None else str(v) for v in arr.to_pylist()], pa.string())
    return out.fill_null(NULL_KEY)


def numeric(col: pa.Array | pa.ChunkedArray) -> np.ndarray | None:
    """A numeric column as float64 (NaN for null), None if it is not numeric."""
    typ = col.type
    if not (pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ)):
        return None
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return np.asarray(arr.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False))


def match_table(ctx: CheckContext, artifact: Artifact, table: pa.Table) -> Match | None:
    """The ledgered query that produced `table`, matched on the trusted side (cached)."""
    key = f"match:{artifact.sha256}:{artifact.name}"
    if key not in ctx.cache:
        ctx.cache[key] = _best_match(ctx, table)
    return ctx.cache[key]


def _best_match(ctx: CheckContext, table: pa.Table) -> Match | None:
    if table.num_rows == 0 or not any(numeric(c) is not None for c in table.columns):
        return None
    best = None
    limit = max(table.num_rows * 4, 10_000)
    for shape in candidates(ctx):
        result = run_shape(ctx, shape, min(limit, ctx.thresholds.max_rows))
        if result is None or result.num_rows == 0:
            continue
        found = match_result(table, shape, result, ctx.thresholds.round_base)
        if found and (best is None or (found.coverage, found.agreement)
                      > (best.coverage, best.agreement)):
            best = found
            if found.coverage >= 0.999 and found.agreement >= 0.999:
                break
    return best


def match_result(table: pa.Table, shape: Shape, result: pa.Table,
                 round_base: int) -> Match | None:
    names = result.column_names
    key_columns = _map_keys(table, result, [names[i] for i, _ in shape.keys])
    if key_columns is None:
        return None
    row_of = _join_rows(table, result, key_columns)
    zero = _zero_rows(table, [t for t, _ in key_columns])
    counted = np.ones(table.num_rows, bool)
    counted[zero] = False
    denominator = max(int(counted.sum()), 1)
    matched = row_of >= 0
    coverage = float((matched & counted).sum()) / denominator
    if coverage < MIN_COVERAGE:
        return None
    value_columns, agreement = _map_values(table, result, shape, row_of, key_columns, round_base)
    if not value_columns or agreement < MIN_AGREEMENT:
        return None
    return Match(shape, result, key_columns, value_columns, row_of, coverage, agreement, zero)


def _map_keys(table: pa.Table, result: pa.Table,
              result_keys: list[str]) -> list[tuple[str, str]] | None:
    by_name = {c.casefold(): c for c in table.column_names}
    used: set[str] = set()
    out = []
    for rk in result_keys:
        tc = by_name.get(rk.casefold())
        if tc is None or tc in used:
            tc = _key_by_values(table, result[rk], used)
        if tc is None:
            return None
        used.add(tc)
        out.append((tc, rk))
    return out


def _key_by_values(table: pa.Table, key: pa.ChunkedArray, used: set[str]) -> str | None:
    wanted = set(normalized(key).unique().to_pylist())
    for name in table.column_names:
        if name in used or numeric(table[name]) is not None and len(wanted) > 50:
            continue
        have = normalized(table[name]).unique().to_pylist()
        if have and sum(v in wanted for v in have) >= 0.9 * len(have):
            return name
    return None


def _join_rows(table: pa.Table, result: pa.Table, keys: list[tuple[str, str]]) -> np.ndarray:
    if not keys:  # one global row
        return np.zeros(table.num_rows, np.int64) if result.num_rows == 1 else \
            np.full(table.num_rows, -1, np.int64)
    t = pl.DataFrame({f"k{i}": normalized(table[tc]) for i, (tc, _) in enumerate(keys)})
    r = pl.DataFrame({f"k{i}": normalized(result[rc]) for i, (_, rc) in enumerate(keys)})
    t = t.with_row_index("__t")
    r = r.with_row_index("__r").unique(subset=[f"k{i}" for i in range(len(keys))], keep="first")
    joined = t.join(r, on=[f"k{i}" for i in range(len(keys))], how="left").sort("__t")
    return joined["__r"].fill_null(-1).cast(pl.Int64).to_numpy()


def _zero_rows(table: pa.Table, key_names: list[str]) -> np.ndarray:
    """Rows whose numeric non-key columns are all 0 (empty groups a GROUP BY never returns)."""
    cols = [v for n in table.column_names if n not in key_names
            and (v := numeric(table[n])) is not None]
    if not cols:
        return np.zeros(0, np.int64)
    zero = np.ones(table.num_rows, bool)
    for v in cols:
        zero &= v == 0
    return np.flatnonzero(zero)


def agree(t: np.ndarray, r: np.ndarray, round_base: int) -> np.ndarray:
    tolerance = np.maximum(max(round_base, 0.5), 0.01 * np.abs(r))
    return np.abs(t - r) <= tolerance


def _map_values(table, result, shape, row_of, key_columns, round_base):
    rows = np.flatnonzero(row_of >= 0)
    taken = {t for t, _ in key_columns}
    out, agreements = [], []
    for pos, _, kind in shape.values:
        rc = result.column_names[pos]
        r = numeric(result[rc])
        if r is None:
            continue
        r = r[row_of[rows]]
        named = [n for n in table.column_names if n.casefold() == rc.casefold() and n not in taken]
        others = [n for n in table.column_names if n not in taken and n not in named]
        for tc in named + others:
            t = numeric(table[tc])
            if t is None:
                continue
            ok = agree(t[rows], r, round_base)
            rate = float(ok.mean()) if rows.size else 0.0
            if rate >= MIN_AGREEMENT:
                out.append((tc, rc, kind))
                agreements.append(rate)
                taken.add(tc)
                break
    return out, (min(agreements) if agreements else 0.0)


def looks_like_count(name: str) -> bool:
    """A column named like a count (人数, n, count_…), for tables no query explains."""
    low = name.strip().casefold()
    return any(low == c or low.startswith(c + "_") or low.endswith("_" + c) or
               (len(c) > 1 and not c.isascii() and c in low) or (len(c) > 2 and c in low)
               for c in COUNT_NAMES)
