"""How many rows and entities of a source dataset share each row's values of a submitted table.

``raw_overlap`` asks how many source *rows* a table row reproduces; ``reidentification`` asks
how many distinct *entities* (people, firms: the dataset's first direct identifier) share its
quasi-identifiers. Both answers come from one join on the server, in DuckDB: the table's
distinct combinations of the projected columns (``distinct.row_groups``) joined with the raw
rows, then grouped by combination, so the work is bounded by the matching raw rows (each raw row
matches at most one combination) and the join runs once per combination, not per table row.

Both are kept in ``ctx.cache`` for the run: when the two checks project a table on the same
columns of the same dataset (a table of quasi-identifiers, one of them exact, like a birth
date), the join runs once, and so does the grouping of the table's rows. Counting entities
costs more than counting rows, so ``raw_overlap`` asks for them only where its projection is
all quasi-identifiers, which is the projection ``reidentification`` then asks for.

Values are compared after casting the table's column to the source column's type (so a CSV's
``70.8`` equals a ``DECIMAL(16,2)`` 70.80); nulls never match.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from release_review.checks.base import CheckContext
from release_review.checks.columns import Mapped, entity_column, source
from release_review.checks.distinct import RowGroups, row_groups
from release_review.checks.trusted import connection, fetch_arrow, quote, registered


@dataclass(frozen=True)
class SourceCounts:
    rows: np.ndarray  # per table row: raw rows with the same values (0: none)
    entities: np.ndarray | None  # per table row: distinct entities among those rows (the rows,
    # where the dataset names no entity column); None where they were not asked for


def groups(ctx: CheckContext, table: pa.Table, columns: list[str]) -> RowGroups:
    """The table's row groups over `columns` (computed once per run; the order of the columns
    changes the numbering of the groups, not the groups, so any order will do)."""
    ordered = sorted(set(columns))
    return _cached(ctx, ("row_groups", tuple(ordered)), table,
                   lambda: row_groups(table, ordered))


def source_counts(ctx: CheckContext, table: pa.Table, dataset: str, cols: list[Mapped],
                  entities: bool = True) -> SourceCounts:
    """Per row of `table`: how many rows and distinct entities of `dataset` have its values on
    `cols` (table column → source column). With ``entities=False`` only the rows are counted
    (``entities`` is then None, unless an earlier call of the run counted them)."""
    signature = ("source_counts", dataset, tuple((m.column, m.source.name, m.source.type)
                                                 for m in cols))
    if not entities:
        rows_only = _peek(ctx, signature, table)
        if rows_only is not None:
            return rows_only
        return _cached(ctx, signature, table, lambda: _count(ctx, table, dataset, cols, False))
    found = _peek(ctx, signature, table)
    if found is not None and found.entities is not None:
        return found
    return _cached(ctx, signature, table, lambda: _count(ctx, table, dataset, cols, True),
                   replace=True)


def _count(ctx: CheckContext, table: pa.Table, dataset: str, cols: list[Mapped],
           entities: bool) -> SourceCounts:
    columns = [m.column for m in cols]
    g = groups(ctx, table, columns)
    combos = table.select(columns).take(pa.array(g.first))
    combos = combos.append_column("__g", pa.array(np.arange(len(g)), pa.int64()))
    ds = source(ctx, dataset)
    entity = entity_column(ds) if ds and entities else None
    on = " AND ".join(f"r.{quote(m.source.name)} = TRY_CAST(t.{quote(m.column)} AS "
                      f"{m.source.type})" for m in cols)
    with connection(ctx) as con, registered(con, combos) as view:
        joined = f"{view} t JOIN main.{quote(dataset)} r ON {on}"
        if entity:  # one row per (combination, entity); counted per combination in numpy
            e = f"r.{quote(entity)}"
            sql = (f"SELECT t.__g, count(*) AS __n, {e} IS NOT NULL AS __k FROM {joined} "
                   f"GROUP BY t.__g, {e}")
        else:
            sql = f"SELECT t.__g, count(*) AS __n FROM {joined} GROUP BY t.__g"
        got = fetch_arrow(con, sql)
    at = got["__g"].to_numpy()
    rows = np.bincount(at, weights=got["__n"].to_numpy(), minlength=len(g)).astype(np.int64)
    if not entities:
        return SourceCounts(rows[g.of_row], None)
    if entity:
        counted = np.bincount(at[got["__k"].to_numpy(zero_copy_only=False)], minlength=len(g))
    else:
        counted = rows  # the dataset names no entity column: rows stand for entities
    return SourceCounts(rows[g.of_row], counted[g.of_row].astype(np.int64))


def _peek(ctx: CheckContext, key: tuple, table: pa.Table):
    found = ctx.cache.get(("sourcematch",) + key + (id(table),))
    return found[1] if found is not None and found[0] is table else None


def _cached(ctx: CheckContext, key: tuple, table: pa.Table, compute, replace: bool = False):
    """ctx.cache[key] for this very table (the run's tables stay loaded, so their ids hold)."""
    full = ("sourcematch",) + key + (id(table),)
    found = ctx.cache.get(full)
    if replace or found is None or found[0] is not table:
        found = (table, compute())
        ctx.cache[full] = found
    return found[1]
