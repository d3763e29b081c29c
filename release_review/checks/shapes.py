"""Is a submitted table an aggregate (one row per group) or row-level (one row per person or
record)? The aggregate checks judge the first kind, the re-identification check the second.

A table is an *aggregate* when one of the author's ledgered aggregate queries reproduces it
(``provenance``), or, failing that, when it has a numeric column named like a count (人数,
``n``, ``count``…) and its other columns never repeat a combination (one row per group). Such an
*unexplained* aggregate is still checked, from the analyst's own numbers, and flagged for review
because those numbers cannot be verified. Everything else is *row-level*.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl
import pyarrow as pa

from release_review.checks.base import Artifact, CheckContext
from release_review.checks.provenance import Match, looks_like_count, match_table, numeric
from release_review.checks.tables import TableError, load_table

AGGREGATE, ROW_LEVEL = "aggregate", "row_level"


@dataclass
class TableView:
    artifact: Artifact
    table: pa.Table
    kind: str
    match: Match | None = None
    keys: list[str] = field(default_factory=list)  # dimension columns
    counts: list[str] = field(default_factory=list)  # count columns
    sums: list[str] = field(default_factory=list)  # other aggregate columns (sums, means…)


def table_views(ctx: CheckContext) -> list[TableView]:
    """Every readable table of the request, classified (cached for the run)."""
    if "views" not in ctx.cache:
        views = []
        for artifact in ctx.artifacts:
            try:
                table = load_table(ctx, artifact)
            except TableError:
                continue  # the type gate reports unreadable tables
            if table is not None and table.num_columns:
                views.append(classify(ctx, artifact, table))
        ctx.cache["views"] = views
    return ctx.cache["views"]


def classify(ctx: CheckContext, artifact: Artifact, table: pa.Table) -> TableView:
    match = match_table(ctx, artifact, table)
    if match is not None:
        return TableView(
            artifact, table, AGGREGATE, match, [t for t, _ in match.key_columns],
            [t for t, _, k in match.value_columns if k == "count"],
            [t for t, _, k in match.value_columns if k != "count"])
    numeric_cols = [n for n, c in zip(table.column_names, table.columns)
                    if numeric(c) is not None]
    counts = [n for n in numeric_cols if looks_like_count(n)]
    keys = [n for n in table.column_names if n not in numeric_cols]
    if counts and _unique_rows(table, keys):
        sums = [n for n in numeric_cols if n not in counts]
        return TableView(artifact, table, AGGREGATE, None, keys, counts, sums)
    return TableView(artifact, table, ROW_LEVEL)


def _unique_rows(table: pa.Table, keys: list[str]) -> bool:
    if not keys:
        return table.num_rows <= 1
    frame = pl.from_arrow(table.select(keys))
    if isinstance(frame, pl.Series):
        frame = frame.to_frame()
    return frame.n_unique() == table.num_rows
