"""Check "min_cell_count": every cell of an aggregate table stands for enough people.

The count that matters is the number of distinct contributors (people or entities, by the
catalog's identifier columns) behind each cell, recomputed on the server from the query that
produced the table (``provenance``, ``contributions``), never the analyst's own numbers. A mean
or a sum over 3 people discloses as much as a count of 3.

- FAIL: a cell with fewer than ``thresholds.min_cell_count`` (default 10) contributors; with
  ``zeros_are_disclosive``, a zero cell in a table of two or more dimensions (it says that nobody
  in one group has some attribute: group attribute disclosure).
- REVIEW: zero cells of a one-dimensional table (often structural, a reviewer decides), rows the
  query does not reproduce, and aggregate-looking tables no ledgered query explains (checked
  from their own counts, which fail if they already show small cells).
- PASS: every cell has enough contributors.
"""

from __future__ import annotations

import numpy as np

from release_review.checks.base import CheckContext, CheckResult, Verdict
from release_review.checks.contributions import cell_stats
from release_review.checks.masking import show_key
from release_review.checks.provenance import numeric
from release_review.checks.shapes import AGGREGATE, TableView, table_views

CHECK = "min_cell_count"
SHOWN = 20


def run(ctx: CheckContext) -> list[CheckResult]:
    results = [_judge(ctx, v) for v in table_views(ctx) if v.kind == AGGREGATE]
    return results or [CheckResult(CHECK, Verdict.PASS, "No aggregate tables in this request.")]


def cells(view: TableView, rows: np.ndarray) -> list[dict]:
    return [{k: show_key(view.table[k][int(i)].as_py()) for k in view.keys}
            for i in rows[:SHOWN]]


def _suggestion(ctx: CheckContext, n: int) -> str:
    t = ctx.thresholds
    return (f"Suppress the {n} cell(s) below {t.min_cell_count} and at least one more cell in "
            "each row and column they share (so totals do not give them away), or merge small "
            f"categories, or round counts to base {t.round_base}; the differential-privacy "
            "lane releases such tables safely.")


def _judge(ctx: CheckContext, view: TableView) -> CheckResult:
    if view.match is None:
        return _judge_unexplained(ctx, view)
    t = ctx.thresholds.min_cell_count
    match = view.match
    stats = cell_stats(ctx, match)
    row_of = match.row_of
    matched = row_of >= 0
    n = np.full(view.table.num_rows, -1, np.int64)
    n[matched] = stats.contributors[row_of[matched]]
    if (n[matched] < 0).any():  # no dataset with an identifier: the query's own counts
        n = _own_counts(view, n)
    zero = _zeros(view, matched)
    small = np.flatnonzero(matched & (n >= 0) & (n < t) & ~np.isin(np.arange(len(n)), zero))
    unmatched = np.flatnonzero(~matched & ~np.isin(np.arange(len(n)), zero))
    order = small[np.argsort(n[small], kind="stable")]
    evidence = {
        "threshold": t, "cells": view.table.num_rows, "dimensions": view.keys,
        "contributors_counted_by": sorted(stats.by_entity),
        "cells_below_threshold": [{"cell": c, "contributors": int(n[i])}
                                  for c, i in zip(cells(view, order), order)],
        "zero_cells": cells(view, zero), "unexplained_rows": int(unmatched.size),
        "smallest_cell": int(n[matched].min()) if matched.any() else None,
        "provenance": match.evidence(),
    }
    zeros_fail = zero.size and ctx.thresholds.zeros_are_disclosive and len(view.keys) >= 2
    if small.size or zeros_fail:
        parts = []
        if small.size:
            parts.append(f"{small.size} of {len(n)} cells have fewer than {t} contributors "
                         f"(smallest: {int(n[order[0]])})")
        if zeros_fail:
            parts.append(f"{zero.size} zero cell(s) reveal that nobody in a group has an "
                         "attribute")
        return CheckResult(CHECK, Verdict.FAIL,
                           "; ".join(parts) + f", counted on the server from query "
                           f"#{match.shape.query.ledger_index}.", view.artifact.name, evidence,
                           _suggestion(ctx, int(small.size + (zero.size if zeros_fail else 0))))
    if zero.size or unmatched.size:
        parts = []
        if zero.size:
            parts.append(f"{zero.size} zero cell(s): confirm they are structural (impossible "
                         "by definition), otherwise suppress them")
        if unmatched.size:
            parts.append(f"{unmatched.size} row(s) are not produced by query "
                         f"#{match.shape.query.ledger_index}")
        return CheckResult(CHECK, Verdict.REVIEW, "; ".join(parts) + ".", view.artifact.name,
                           evidence)
    return CheckResult(CHECK, Verdict.PASS,
                       f"All {len(n)} cells have at least {t} contributors (smallest: "
                       f"{evidence['smallest_cell']}), counted on the server from query "
                       f"#{match.shape.query.ledger_index}.", view.artifact.name, evidence)


def _own_counts(view: TableView, n: np.ndarray) -> np.ndarray:
    """Contributors from the result's own COUNT output when no dataset has an identifier."""
    match = view.match
    for _, rc, kind in match.value_columns:
        if kind == "count":
            values = numeric(match.result[rc])
            ok = match.row_of >= 0
            out = n.copy()
            out[ok] = values[match.row_of[ok]].astype(np.int64)
            return out
    return n


def _zeros(view: TableView, matched: np.ndarray) -> np.ndarray:
    """Rows whose count columns are 0 (or, with no count column, the all-zero rows the
    provenance match set aside)."""
    if view.counts:
        zero = np.zeros(view.table.num_rows, bool)
        for c in view.counts:
            zero |= numeric(view.table[c]) == 0
        return np.flatnonzero(zero)
    return view.match.zero_rows if view.match is not None else np.zeros(0, np.int64)


def _judge_unexplained(ctx: CheckContext, view: TableView) -> CheckResult:
    t = ctx.thresholds.min_cell_count
    small = np.zeros(view.table.num_rows, bool)
    for c in view.counts:
        v = numeric(view.table[c])
        small |= (v > 0) & (v < t)
    zero = _zeros(view, np.zeros(0, bool))
    rows = np.flatnonzero(small)
    evidence = {"threshold": t, "cells": view.table.num_rows, "dimensions": view.keys,
                "count_columns": view.counts, "cells_below_threshold": cells(view, rows),
                "zero_cells": cells(view, zero), "provenance": None}
    if rows.size:
        return CheckResult(
            CHECK, Verdict.FAIL,
            f"The table's own counts show {rows.size} cells below {t} (no ledgered query "
            "reproduces it, so nothing larger can be assumed).", view.artifact.name, evidence,
            _suggestion(ctx, int(rows.size)))
    return CheckResult(
        CHECK, Verdict.REVIEW,
        "None of the author's ledgered queries reproduces this aggregate table, so its counts "
        "could not be verified on the server; ask for the query or a reproducible derivation.",
        view.artifact.name, evidence)
