"""Check "raw_overlap": rows of a submitted table that reproduce rows of the source datasets.

For each source dataset, the table's columns that are that dataset's columns (by name or label,
``columns.map_columns``, direct identifiers aside: pseudonyms never equal the raw values) form
a projection. If the projection holds *detail*, a sensitive attribute or a column the catalog
does not allow as a group-by dimension (exact dates, amounts, times), each table row is matched
on the server, in DuckDB, with the dataset's rows projected the same way
(``sourcematch.source_counts``), and we count how many source rows share it:

- FAIL: a row reproduces a projection that fewer than ``thresholds.min_k_anonymity`` source rows
  share: the table copies individual records (a "group" of one with its exact amount is the
  record itself);
- REVIEW: at least half of the rows reproduce source rows, each common to many: the table looks
  like an extract of the raw data even though no row stands out;
- PASS: otherwise (an aggregate's means and totals almost never equal a raw row).

Values are compared after casting the table's column to the source column's type (so a CSV's
``70.8`` equals a ``DECIMAL(16,2)`` 70.80); nulls never match.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from release_review.checks.base import CheckContext, CheckResult, Verdict
from release_review.checks.columns import (
    DIRECT, QUASI, SENSITIVE, Mapped, by_dataset, map_columns,
)
from release_review.checks.distinct import first_smallest
from release_review.checks.masking import mask_value
from release_review.checks.shapes import table_views
from release_review.checks.sourcematch import source_counts

CHECK = "raw_overlap"
SHOWN = 5
EXTRACT_SHARE = 0.5


def run(ctx: CheckContext) -> list[CheckResult]:
    results = []
    for v in table_views(ctx):
        if v.match is not None:  # its cells are computed; min_cell_count judges them
            results.append(CheckResult(
                CHECK, Verdict.PASS, f"Aggregate table reproduced by query "
                f"#{v.match.shape.query.ledger_index}: its values are computed, not copied "
                "(cell sizes are judged by min_cell_count).", v.artifact.name))
        else:
            results.append(_judge(ctx, v.artifact.name, v.table))
    return results or [CheckResult(CHECK, Verdict.PASS, "No tables in this request.")]


def detail(m: Mapped) -> bool:
    return m.source.identifier_class == SENSITIVE or (
        not m.source.groupable and m.source.identifier_class != DIRECT)


def projections(ctx: CheckContext, names: list[str]) -> dict[str, list[Mapped]]:
    mapped = [m for m in map_columns(ctx, names) if m.source.identifier_class != DIRECT]
    return {ds: cols for ds, cols in by_dataset(mapped).items() if any(detail(m) for m in cols)}


def overlap(ctx: CheckContext, table: pa.Table, dataset: str, cols: list[Mapped]) -> dict:
    k = ctx.thresholds.min_k_anonymity
    # entity counts too where reidentification will want this very join (see sourcematch)
    shared = all(m.source.identifier_class == QUASI for m in cols)
    per_row = source_counts(ctx, table, dataset, cols, entities=shared).rows
    matched = per_row > 0
    rare = matched & (per_row < k)
    rarest = first_smallest(np.where(matched, per_row, np.iinfo(np.int64).max), SHOWN)
    examples = [int(i) for i in rarest if matched[i]]
    return {
        "dataset": dataset, "columns": [m.column for m in cols],
        "rows": table.num_rows, "matched_rows": int(matched.sum()),
        "rows_rarer_than_k": int(rare.sum()), "k": k,
        "examples": [{"row": i, "source_rows_alike": int(per_row[i]),
                      "values": {m.column: mask_value(table[m.column][i].as_py()) for m in cols}}
                     for i in examples],
    }


def _judge(ctx: CheckContext, name: str, table: pa.Table) -> CheckResult:
    found = [overlap(ctx, table, ds, cols)
             for ds, cols in projections(ctx, table.column_names).items()]
    evidence = {"projections": found}
    if not found:
        return CheckResult(CHECK, Verdict.PASS, "No detail columns of the source datasets "
                                                "(sensitive values, exact dates or amounts).",
                           name, evidence)
    rare = [f for f in found if f["rows_rarer_than_k"]]
    if rare:
        f = max(rare, key=lambda x: x["rows_rarer_than_k"])
        return CheckResult(
            CHECK, Verdict.FAIL,
            f"{f['rows_rarer_than_k']:,} of {f['rows']:,} rows reproduce records of "
            f"{f['dataset']} ({', '.join(f['columns'])}) that fewer than {f['k']} source rows "
            "share.", name, evidence,
            "Release aggregates (counts, means over groups of enough people) instead of records; "
            "drop exact dates and amounts or coarsen them.")
    extract = [f for f in found if f["matched_rows"] >= EXTRACT_SHARE * max(f["rows"], 1)]
    if extract:
        f = extract[0]
        return CheckResult(
            CHECK, Verdict.REVIEW,
            f"{f['matched_rows']:,} of {f['rows']:,} rows equal rows of {f['dataset']} on "
            f"{', '.join(f['columns'])} (each shared by many): the table looks like an extract.",
            name, evidence)
    return CheckResult(CHECK, Verdict.PASS, "No row reproduces a record of the source datasets.",
                       name, evidence)
