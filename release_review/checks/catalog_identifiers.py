"""Check "catalog_identifiers": columns that are, or are named like, the catalog's direct
identifiers, with their values looked up in the raw data on the trusted side.

For each table of the request:

- *values*: the distinct values of every text column (and of integer columns of 9 digits or
  more, where IDs and phone numbers land when a CSV is read) are looked up in every direct
  identifier column of the source datasets (names, addresses, household and card numbers,
  IDs, mobiles …), in DuckDB on the server. A column whose values are found there holds real
  people's or entities' identifiers: FAIL when at least half of its distinct values are found,
  or the found values are long (8 characters or more: numbers, codes, addresses); a stray short
  match (a 2-character name that is also a place) is sent for review.
- *names*: a column named like a direct identifier of the catalog (by name or Chinese label, or a
  common identifier name such as 身份证号, 姓名, 手机号) whose values were not found is sent for
  review: it may hold pseudonyms or transformed identifiers.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from release_review.checks.base import CheckContext, CheckResult, Verdict
from release_review.checks.columns import DIRECT, map_columns
from release_review.checks.distinct import is_text, unique_text
from release_review.checks.masking import mask_identifier
from release_review.checks.shapes import table_views
from release_review.checks.trusted import connection, fetch_arrow, quote, registered

CHECK = "catalog_identifiers"
GENERIC_NAMES = {
    "身份证", "身份证号", "身份证号码", "公民身份号码", "证件号", "证件号码", "姓名", "名字",
    "手机", "手机号", "手机号码", "电话", "电话号码", "联系电话", "地址", "住址", "家庭住址",
    "银行卡号", "车牌号", "护照号", "id_card", "idcard", "id_number", "national_id", "phone",
    "mobile", "telephone", "full_name", "address", "email", "passport",
}
MIN_LENGTH = 2
LONG = 8
SHOWN = 3


def run(ctx: CheckContext) -> list[CheckResult]:
    direct = [(ds.name, c) for ds in ctx.sources for c in ds.columns
              if c.identifier_class == DIRECT]
    results = []
    for view in table_views(ctx):
        results.append(_judge(ctx, view, direct))
    return results or [CheckResult(CHECK, Verdict.PASS, "No tables in this request.")]


def _candidates(table: pa.Table) -> pa.Table:
    """(column, value) for the distinct lookup-worthy values of every column."""
    names, values = [], []
    for name, col in zip(table.column_names, table.columns):
        typ = col.type
        if pa.types.is_dictionary(typ) and not is_text(typ.value_type):
            col, typ = col.cast(typ.value_type), typ.value_type
        if is_text(typ) or pa.types.is_dictionary(typ):
            distinct = pc.unique(pc.utf8_trim_whitespace(unique_text(col)))
        elif pa.types.is_integer(typ):
            distinct = pc.unique(col)
            distinct = distinct.filter(pc.greater_equal(distinct, 10**8)).cast(pa.string())
        else:
            continue
        distinct = distinct.drop_null()
        distinct = distinct.filter(pc.greater_equal(pc.utf8_length(distinct), MIN_LENGTH))
        names.append(pa.array(np.full(len(distinct), name, object), pa.string()))
        values.append(distinct)
    if not values:
        return pa.table({"c": pa.array([], pa.string()), "v": pa.array([], pa.string())})
    return pa.table({"c": pa.concat_arrays(names), "v": pa.concat_arrays(values)})


def lookup(ctx: CheckContext, table: pa.Table, direct) -> list[dict]:
    """Per (table column, source identifier column): how many distinct values are found."""
    cand = _candidates(table)
    if cand.num_rows == 0 or not direct:
        return []
    found = []
    with connection(ctx) as con, registered(con, cand) as view:
        parts = [
            f"SELECT c, '{ds}' AS ds, '{col.name}' AS col, count(*) AS n, "
            f"avg(length(v)) AS len, list(v ORDER BY v)[1:{SHOWN}] AS ex "
            f"FROM {view} WHERE v IN (SELECT CAST({quote(col.name)} AS VARCHAR) "
            f"FROM main.{quote(ds)}) GROUP BY c"
            for ds, col in direct]
        rows = fetch_arrow(con, " UNION ALL ".join(parts)).to_pylist()
    totals = dict(zip(*np.unique(cand["c"].to_numpy(zero_copy_only=False), return_counts=True)))
    for r in rows:
        kind = "name" if r["col"] in ("name",) else ("mobile" if r["col"] == "mobile" else None)
        found.append({
            "column": r["c"], "matches": f"{r['ds']}.{r['col']}", "found": int(r["n"]),
            "distinct": int(totals.get(r["c"], 0)), "mean_length": round(float(r["len"]), 1),
            "examples": [mask_identifier(v, kind) for v in r["ex"]],
        })
    return sorted(found, key=lambda f: (f["column"], -f["found"]))


def _judge(ctx: CheckContext, view, direct) -> CheckResult:
    table = view.table
    found = lookup(ctx, table, direct)
    for f in found:
        share = f["found"] / max(f["distinct"], 1)
        f["verdict"] = str(Verdict.FAIL if share >= 0.5 or f["mean_length"] >= LONG
                           else Verdict.REVIEW)
    hit_columns = {f["column"] for f in found}
    named = sorted({m.column for m in map_columns(ctx, table.column_names)
                    if m.source.identifier_class == DIRECT} |
                   {c for c in table.column_names if c.strip().casefold() in GENERIC_NAMES})
    named_only = [c for c in named if c not in hit_columns]
    evidence = {"found_in_raw_data": found, "named_like_identifiers": named,
                "identifier_columns_searched": [f"{d}.{c.name}" for d, c in direct]}
    fails = [f for f in found if f["verdict"] == "fail"]
    name = view.artifact.name
    if fails:
        listed = "; ".join(f"{f['column']!r} holds {f['found']:,} values of {f['matches']}"
                           for f in fails[:4])
        return CheckResult(CHECK, Verdict.FAIL, f"Direct identifiers from the raw data: {listed}.",
                           name, evidence, "Remove these columns; aggregate instead of listing "
                                           "people or entities.")
    if found or named_only:
        parts = [f"{f['column']!r} has {f['found']} value(s) that occur in {f['matches']}"
                 for f in found[:3]]
        parts += [f"{c!r} is named like a direct identifier" for c in named_only[:3]]
        return CheckResult(CHECK, Verdict.REVIEW, "; ".join(parts) + ".", name, evidence,
                           "Check these columns hold no identifiers, or remove them.")
    return CheckResult(CHECK, Verdict.PASS,
                       f"No values of {len(direct)} direct-identifier columns of the source "
                       "datasets occur in this table.", name, evidence)
