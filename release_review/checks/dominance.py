"""Check "dominance": no cell total is dominated by one or two contributors.

Computed from the per-entity contributions on the server (``contributions``), for every SUM or
AVG output of the query that produced an aggregate table (ACRO's defaults, ESSNet SDC handbook):

- (n, k) rule, n = ``thresholds.dominance_n`` (2), k = ``dominance_k`` (90%): a cell fails when
  its largest n contributions make up at least k of its total (a firm that is 95% of a
  district's registered capital can read off its competitor's capital);
- p-ratio rule, p = ``p_ratio`` (10%): a cell fails when (total − largest − second largest)
  / largest < p, i.e. the second largest contributor can estimate the largest within p%.

A cell with a negative contribution makes both rules unreliable and is sent for review.
Tables that hold only counts pass (dominance is about magnitudes); aggregate tables that no
ledgered query reproduces are sent for review when they have sums or means, since their
contributions are unknown.
"""

from __future__ import annotations

import numpy as np

from release_review.checks.base import CheckContext, CheckResult, Verdict
from release_review.checks.contributions import ValueStats, cell_stats
from release_review.checks.min_cell_count import cells
from release_review.checks.shapes import AGGREGATE, TableView, table_views

CHECK = "dominance"


def run(ctx: CheckContext) -> list[CheckResult]:
    results = [_judge(ctx, v) for v in table_views(ctx) if v.kind == AGGREGATE]
    return results or [CheckResult(CHECK, Verdict.PASS, "No aggregate tables in this request.")]


def dominated(stats: ValueStats, n: int, k: float, p: float) -> tuple[np.ndarray, np.ndarray,
                                                                       np.ndarray, np.ndarray]:
    """Per cell: (n,k) share, p-ratio, fails (n,k), fails p-ratio (NaN-safe)."""
    total, top1, top2 = stats.total, stats.top1, np.nan_to_num(stats.top2)
    top = top1 + (top2 if n >= 2 else 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(total > 0, top / total, np.nan)
        ratio = np.where(top1 > 0, (total - top1 - top2) / top1, np.nan)
    return share, ratio, np.nan_to_num(share) >= k, (ratio < p) & (top1 > 0)


def _judge(ctx: CheckContext, view: TableView) -> CheckResult:
    th = ctx.thresholds
    if view.match is None:
        if view.sums:
            return CheckResult(
                CHECK, Verdict.REVIEW,
                f"Columns {', '.join(view.sums)} look like sums or means, but no ledgered query "
                "reproduces this table, so their contributions could not be checked.",
                view.artifact.name, {"columns": view.sums})
        return CheckResult(CHECK, Verdict.PASS, "Counts only: dominance does not apply.",
                           view.artifact.name, {"columns": view.counts})
    match = view.match
    stats = cell_stats(ctx, match)
    row_of = match.row_of
    rows = np.flatnonzero(row_of >= 0)
    findings, negatives, checked = [], [], []
    for tc, rc, kind in match.value_columns:
        vs = stats.values.get(rc)
        if vs is None:
            continue
        checked.append(tc)
        share, ratio, nk_fail, p_fail = dominated(vs, th.dominance_n, th.dominance_k, th.p_ratio)
        r = row_of[rows]
        bad = rows[(nk_fail | p_fail)[r]]
        neg = rows[(vs.minimum < 0)[r]]
        for c, i in zip(cells(view, bad), bad):
            findings.append({"column": tc, "cell": c, "contributors_by": vs.entity,
                             "top_share": round(float(share[row_of[i]]), 4),
                             "p_ratio": _round(ratio[row_of[i]])})
        negatives += [{"column": tc, "cell": c} for c in cells(view, neg)]
    evidence = {"n": th.dominance_n, "k": th.dominance_k, "p": th.p_ratio, "columns": checked,
                "dominated_cells": findings[:50], "dominated_count": len(findings),
                "negative_contributions": negatives[:20], "provenance": match.evidence()}
    if findings:
        return CheckResult(
            CHECK, Verdict.FAIL,
            f"{len(findings)} cell(s) are dominated by one or two contributors "
            f"(top {th.dominance_n} ≥ {th.dominance_k:.0%} of the total, or p-ratio "
            f"< {th.p_ratio:.0%}), computed from the raw contributions.",
            view.artifact.name, evidence,
            "Suppress these cells (and a complementary cell per row and column), merge "
            "categories so that no one contributor dominates, or publish counts instead of sums.")
    if negatives:
        return CheckResult(CHECK, Verdict.REVIEW,
                           f"{len(negatives)} cell(s) have negative contributions, where "
                           "dominance rules are unreliable.", view.artifact.name, evidence)
    if not checked:
        return CheckResult(CHECK, Verdict.PASS, "Counts only: dominance does not apply.",
                           view.artifact.name, evidence)
    return CheckResult(CHECK, Verdict.PASS,
                       f"No cell of {', '.join(checked)} is dominated by its largest "
                       "contributors.", view.artifact.name, evidence)


def _round(x: float) -> float | None:
    return None if x != x else round(float(x), 4) + 0.0
