"""Per-cell contributors of a matched aggregate query, recomputed from the raw data.

For the query that produced a table (``provenance.Match``) this rebuilds, on the trusted side,
what each output cell is made of:

- *contributors*: the distinct entities in the cell, for every dataset of the query that has a
  direct identifier (its first one, as the gateway counts group sizes: ``resident_id`` for
  residents, ``credit_code`` for enterprises); the cell's count is the smallest of these;
- for every SUM or AVG output, the per-entity contributions: each entity's own sum of the
  summed expression within the cell, then the cell total, the largest and second-largest
  contribution and the smallest (negative contributions make dominance rules unreliable).

The rebuilt query keeps the original FROM, JOINs and WHERE and groups by the original key
expressions plus the entity; HAVING, ORDER BY and LIMIT only drop or order whole cells and are
left out. Results are aligned with the rows of the matched result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
from sqlglot import exp

from release_review.checks.base import CheckContext
from release_review.checks.columns import entity_column, source
from release_review.checks.provenance import DIALECT, Match, normalized, numeric
from release_review.checks.trusted import connection, fetch_arrow


@dataclass
class ValueStats:
    entity: str  # "dataset.column" whose contributions these are
    total: np.ndarray
    top1: np.ndarray
    top2: np.ndarray
    minimum: np.ndarray


@dataclass
class CellStats:
    contributors: np.ndarray  # per result row: smallest distinct-entity count (-1 unknown)
    by_entity: dict[str, np.ndarray] = field(default_factory=dict)  # "dataset.col" -> counts
    values: dict[str, ValueStats] = field(default_factory=dict)  # result column -> stats


def cell_stats(ctx: CheckContext, match: Match) -> CellStats:
    key = f"cells:{match.shape.sql}"
    if key not in ctx.cache:
        ctx.cache[key] = _compute(ctx, match)
    return ctx.cache[key]


def _compute(ctx: CheckContext, match: Match) -> CellStats:
    shape = match.shape
    n = match.result.num_rows
    stats = CellStats(np.full(n, -1, np.int64))
    aliases = _entity_aliases(ctx, shape.tables)
    counts = []
    for alias, (dataset, entity) in aliases.items():
        sums = [(pos, arg) for pos, node, kind in shape.values
                if kind in ("sum", "avg", "other") and (arg := _summed(node)) is not None
                and _alias_of(ctx, arg, shape.tables) == alias]
        table = _contributions(ctx, match, alias, entity, sums)
        rows = _align(match, table)
        got = table["__n"].to_numpy().astype(np.int64)
        per_row = np.full(n, 0, np.int64)
        per_row[rows[rows >= 0]] = got[rows >= 0]
        name = f"{dataset}.{entity}"
        stats.by_entity[name] = per_row
        counts.append(per_row)
        for j, (pos, _) in enumerate(sums):
            col = match.result.column_names[pos]
            stats.values[col] = ValueStats(
                name, *(_aligned(table[f"__{p}{j}"], rows, n) for p in ("t", "a", "b", "m")))
    if counts:
        stats.contributors = np.min(np.vstack(counts), axis=0)
    return stats


def _entity_aliases(ctx: CheckContext, tables: dict[str, str]) -> dict[str, tuple[str, str]]:
    out = {}
    for alias, dataset in tables.items():
        ds = source(ctx, dataset)
        entity = entity_column(ds) if ds else None
        if entity:
            out[alias] = (dataset, entity)
    return out


def _summed(node: exp.Expression) -> exp.Expression | None:
    """The argument of the first SUM or AVG in an output (None for counts, SUM(DISTINCT …))."""
    for agg in node.find_all(exp.Sum, exp.Avg):
        arg = agg.this
        if arg is None or isinstance(arg, exp.Distinct):
            return None
        return arg
    return None


def _alias_of(ctx: CheckContext, node: exp.Expression, tables: dict[str, str]) -> str | None:
    """The alias of the dataset whose column the expression sums (first column decides)."""
    col = next(node.find_all(exp.Column), None)
    if col is None:
        return None
    if col.table:
        return col.table if col.table in tables else None
    if len(tables) == 1:
        return next(iter(tables))
    owners = [a for a, d in tables.items()
              if (ds := source(ctx, d)) and any(c.name == col.name for c in ds.columns)]
    return owners[0] if len(owners) == 1 else None


def _contributions(ctx, match: Match, alias: str, entity: str, sums) -> pl.DataFrame:
    shape = match.shape
    inner = shape.tree.copy()
    keys = [k.copy() for _, k in shape.keys]
    items = [exp.alias_(k, f"__k{i}") for i, k in enumerate(keys)]
    ent = exp.column(entity, table=alias, quoted=True)
    items.append(exp.alias_(ent, "__e"))
    items += [exp.alias_(exp.Sum(this=arg.copy()), f"__v{j}") for j, (_, arg) in enumerate(sums)]
    inner.set("expressions", items)
    for part in ("having", "order", "limit", "offset", "distinct", "qualify"):
        inner.set(part, None)
    inner.set("group", exp.Group(expressions=[k.copy() for k in keys] + [ent.copy()]))
    k = [f"__k{i}" for i in range(len(keys))]
    # max(x, 2): the two largest non-null values per cell, ties kept (no window, no sort)
    outs = "".join(f", sum(__v{j}) AS __t{j}, max(__v{j}, 2) AS __top{j}, min(__v{j}) AS __m{j}"
                   for j in range(len(sums)))
    tops = "".join(f", __top{j}[1] AS __a{j}, __top{j}[2] AS __b{j}" for j in range(len(sums)))
    group = f" GROUP BY {', '.join(k)}" if k else ""
    sql = (f"WITH c AS ({inner.sql(dialect=DIALECT)}), "
           f"g AS (SELECT {', '.join(k + ['count(__e) AS __n']) + outs} FROM c{group}) "
           f"SELECT *{tops} FROM g")
    with connection(ctx) as con:
        return pl.from_arrow(fetch_arrow(con, sql))


def _align(match: Match, table: pl.DataFrame) -> np.ndarray:
    """For each row of `table`, the matched result row with the same keys (-1 if none)."""
    names = match.result.column_names
    keys = [names[pos] for pos, _ in match.shape.keys]
    if not keys:
        return np.zeros(table.height, np.int64) if match.result.num_rows == 1 else \
            np.full(table.height, -1, np.int64)
    left = pl.DataFrame({f"k{i}": normalized(table[f"__k{i}"].to_arrow())
                         for i in range(len(keys))}).with_row_index("__c")
    right = pl.DataFrame({f"k{i}": normalized(match.result[c]) for i, c in enumerate(keys)})
    right = right.with_row_index("__r").unique(subset=[f"k{i}" for i in range(len(keys))],
                                               keep="first")
    joined = left.join(right, on=[f"k{i}" for i in range(len(keys))], how="left").sort("__c")
    return joined["__r"].fill_null(-1).cast(pl.Int64).to_numpy()


def _aligned(col: pl.Series, rows: np.ndarray, n: int) -> np.ndarray:
    values = numeric(col.to_arrow())
    if values is None:
        values = np.full(len(col), np.nan)
    out = np.full(n, np.nan)
    ok = rows >= 0
    out[rows[ok]] = values[ok]
    return out

