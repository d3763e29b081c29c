"""Check "differencing": small groups recovered by subtracting one released table from another.

Two count tables over the same population that differ only a little give away the small group
in between: "residents by district" released last month and "residents aged 18+ by district"
now tell, by subtraction, how many minors live in each district, and a table whose small cells
the gateway suppressed gives them back when subtracted from an unsuppressed margin.

Every aggregate table of the request is compared with the request's other aggregate tables and
with the tables of earlier approved releases (``ctx.prior_releases``: the author's and the
authorization's; each ``{"id", "artifacts": [{"name", "path", "media_type"}]}``). Two tables are
comparable when they share dimension columns (by name); both are summed over the dimensions
they do not share, then aligned on the shared ones; count columns are compared with count
columns. A cell (or the grand total) whose difference is positive but below
``thresholds.differencing_min_difference`` fails. Identical cells disclose nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa

from release_review.checks.base import Artifact, CheckContext, CheckResult, Verdict
from release_review.checks.masking import show_key
from release_review.checks.provenance import looks_like_count, normalized, numeric
from release_review.checks.shapes import AGGREGATE, table_views
from release_review.checks.tables import TableError, format_of, load_table

CHECK = "differencing"
SHOWN = 20


@dataclass
class Counted:
    label: str  # how the reviewer knows the table
    table: pa.Table
    keys: list[str]
    counts: list[str]


def run(ctx: CheckContext) -> list[CheckResult]:
    mine = [Counted(v.artifact.name, v.table, v.keys, v.counts)
            for v in table_views(ctx) if v.kind == AGGREGATE and v.counts]
    if not mine:
        return [CheckResult(CHECK, Verdict.PASS, "No count tables in this request to compare.")]
    earlier, unreadable = prior_tables(ctx)
    results = []
    for t in mine:
        others = [o for o in mine if o is not t] + earlier
        findings = [f for o in others for f in compare(t, o, ctx.thresholds.differencing_min_difference)]
        results.append(_result(ctx, t, others, findings, unreadable))
    return results


def prior_tables(ctx: CheckContext) -> tuple[list[Counted], list[str]]:
    out, unreadable = [], []
    for release in ctx.prior_releases:
        for i, a in enumerate(release.get("artifacts") or []):
            art = Artifact(str(a.get("name") or Path(a["path"]).name), str(a.get("media_type", "")),
                           Path(a["path"]), f"prior:{release.get('id')}:{i}:{a['path']}", 0)
            if format_of(art) not in ("csv", "parquet", "json"):
                continue
            label = f"release {release.get('id')}: {art.name}"
            try:
                table = load_table(ctx, art)
            except TableError as e:
                unreadable.append(f"{label} ({e})")
                continue
            if table is None:
                continue
            numeric_cols = [n for n in table.column_names if numeric(table[n]) is not None]
            counts = [n for n in numeric_cols if looks_like_count(n)]
            if counts:
                keys = [n for n in table.column_names if n not in numeric_cols]
                out.append(Counted(label, table, keys, counts))
    return out, unreadable


def _pair(a: Counted, b: Counted) -> tuple[str, str] | None:
    names = {c.casefold(): c for c in b.counts}
    for c in a.counts:
        if c.casefold() in names:
            return c, names[c.casefold()]
    return a.counts[0], b.counts[0]


def _summed(t: Counted, keys: list[str], count: str) -> pl.DataFrame:
    columns = {f"k{i}": pl.Series(normalized(t.table[k])) for i, k in enumerate(keys)}
    columns["v"] = pl.Series(numeric(t.table[count])).fill_nan(None)
    frame = pl.DataFrame(columns)
    if not keys:
        return frame.select(pl.col("v").sum())
    return frame.group_by([f"k{i}" for i in range(len(keys))]).agg(pl.col("v").sum())


def compare(t: Counted, o: Counted, threshold: int) -> list[dict]:
    """Cells (and the total) where `t` and `o` differ by more than 0 and less than the
    threshold, over their shared dimensions."""
    other_keys = {k.casefold(): k for k in o.keys}
    shared = [k for k in t.keys if k.casefold() in other_keys]
    if (t.keys or o.keys) and not shared:
        return []
    counts = _pair(t, o)
    a = _summed(t, shared, counts[0])
    b = _summed(o, [other_keys[k.casefold()] for k in shared], counts[1])
    out = []
    total = abs(float(a["v"].sum() or 0) - float(b["v"].sum() or 0))
    if 0 < total < threshold:
        out.append({"against": o.label, "dimensions": [], "cell": None,
                    "difference": round(total, 4), "column": counts[0]})
    if shared:
        k = [f"k{i}" for i in range(len(shared))]
        joined = a.join(b, on=k, how="inner", suffix="_o").with_columns(
            (pl.col("v") - pl.col("v_o")).abs().alias("d"))
        small = joined.filter((pl.col("d") > 0) & (pl.col("d") < threshold)).sort("d")
        for row in small.head(SHOWN).iter_rows(named=True):
            out.append({"against": o.label, "dimensions": shared, "column": counts[0],
                        "cell": {s: show_key(row[f"k{i}"]) for i, s in enumerate(shared)},
                        "difference": round(float(row["d"]), 4)})
    return out


def _result(ctx, t: Counted, others, findings, unreadable) -> CheckResult:
    th = ctx.thresholds.differencing_min_difference
    evidence = {"threshold": th, "compared_with": [o.label for o in others],
                "small_differences": findings[:50], "unreadable_prior_tables": unreadable}
    if findings:
        against = sorted({f["against"] for f in findings})
        return CheckResult(
            CHECK, Verdict.FAIL,
            f"Subtracting {', '.join(against[:3])} from this table recovers {len(findings)} "
            f"group(s) of fewer than {th}.", t.label, evidence,
            "Release tables with the same dimensions and population only, suppress or merge the "
            "cells that differ, or round both tables consistently.")
    if unreadable:
        return CheckResult(CHECK, Verdict.REVIEW,
                           f"{len(unreadable)} earlier released table(s) could not be read for "
                           "comparison.", t.label, evidence)
    return CheckResult(CHECK, Verdict.PASS,
                       f"No small differences against {len(others)} other table(s).",
                       t.label, evidence)
