"""Check "reidentification": can a row of a row-level table be tied to a person?

Quasi-identifiers (QIs) are the table's columns that the catalog classes as quasi-identifiers
of a source dataset (``columns.map_columns``); sensitive attributes likewise. Terms, for a row:

- *f*: how many rows of the table share its QI combination (its equivalence class in the
  output); *F*: how many distinct people or entities of the source dataset share it (its class
  in the population), counted on the server in DuckDB over the dataset's entity identifier.
  Where the table's QIs come from several datasets, F is the smallest over them (an upper
  bound of the joint class, so the risk shown is a lower bound);
- *prosecutor risk*: 1/F (an attacker who knows the person is in the source picks them with
  this probability), and 1/f in the output alone; k-anonymity is the smallest class;
- *ℓ-diversity*: per output class the number of distinct values of each sensitive attribute;
  ℓ is the smallest.

Verdicts (thresholds ``min_k_anonymity`` 10, ``max_prosecutor_risk`` 0.10, ``min_l_diversity``
2): FAIL when some row's combination is shared by fewer than k people in the population (risk
above the maximum), or, where the population cannot be consulted (QIs absent from the source,
e.g. generalised), by fewer than k rows of the output; REVIEW when the population is large
enough but output classes are small (someone who knows a person is in the table can find
their row), or when ℓ is below the minimum (everyone in a class shares the sensitive value);
PASS otherwise. The riskiest rows are shown with their QI values coarsened.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from release_review.checks.base import CheckContext, CheckResult, Verdict
from release_review.checks.columns import QUASI, SENSITIVE, Mapped, by_dataset, map_columns
from release_review.checks.distinct import first_smallest
from release_review.checks.masking import mask_value
from release_review.checks.shapes import ROW_LEVEL, table_views
from release_review.checks.sourcematch import groups, source_counts

CHECK = "reidentification"
SHOWN = 10


def run(ctx: CheckContext) -> list[CheckResult]:
    results = [_judge(ctx, v.artifact.name, v.table) for v in table_views(ctx)
               if v.kind == ROW_LEVEL]
    return results or [CheckResult(CHECK, Verdict.PASS, "No row-level tables in this request.")]


def output_classes(ctx: CheckContext, table: pa.Table, qis: list[str],
                   sensitive: list[str]) -> tuple[np.ndarray, dict[str, int]]:
    """f per row (its class size in the output) and ℓ per sensitive attribute (the fewest
    distinct values, nulls included, that a class has)."""
    g = groups(ctx, table, qis)
    f = g.size[g.of_row]
    ell = {}
    for s in sensitive:
        frame = pl.DataFrame({"g": g.of_row, "s": pl.from_arrow(table[s])})
        ell[s] = int(frame.group_by("g").agg(pl.col("s").n_unique())["s"].min())
    return f, ell


def population(ctx: CheckContext, table: pa.Table, dataset: str,
               cols: list[Mapped]) -> np.ndarray:
    """Per row: how many distinct entities of `dataset` share the row's values on `cols`
    (0 where none does)."""
    return source_counts(ctx, table, dataset, cols).entities


def _judge(ctx: CheckContext, name: str, table: pa.Table) -> CheckResult:
    th = ctx.thresholds
    mapped = map_columns(ctx, table.column_names)
    qis = list(dict.fromkeys(m.column for m in mapped if m.source.identifier_class == QUASI))
    sensitive = list(dict.fromkeys(m.column for m in mapped
                                   if m.source.identifier_class == SENSITIVE and m.column not in qis))
    if not qis or table.num_rows == 0:
        return CheckResult(CHECK, Verdict.PASS, "No quasi-identifiers of the source datasets "
                                                "in this row-level table.", name,
                           {"quasi_identifiers": qis, "rows": table.num_rows})
    f, ell = output_classes(ctx, table, qis, sensitive)
    per_dataset = {ds: [m for m in cols if m.source.identifier_class == QUASI]
                   for ds, cols in by_dataset(mapped).items()}
    widest = max((len(c) for c in per_dataset.values()), default=0)
    pops = {ds: population(ctx, table, ds, cols) for ds, cols in per_dataset.items()
            if cols and len(cols) == widest}  # the datasets that hold most of the QIs
    F = np.min(np.vstack(list(pops.values())), axis=0) if pops else np.zeros(len(f), np.int64)
    known = F > 0
    evidence = _evidence(table, qis, sensitive, f, F, known, ell, pops, th)
    k_pop = int(F[known].min()) if known.any() else None
    k_out = int(f.min())
    risky_pop = known & (F < th.min_k_anonymity) | known & (1 / np.maximum(F, 1)
                                                            > th.max_prosecutor_risk)
    if risky_pop.any():
        return CheckResult(
            CHECK, Verdict.FAIL,
            f"{int(risky_pop.sum()):,} of {len(f):,} rows have a combination of "
            f"{', '.join(qis)} shared by fewer than {th.min_k_anonymity} people in the source "
            f"(k = {k_pop}, highest prosecutor risk {evidence['prosecutor_risk_population']['max']}).",
            name, evidence, _suggestion(qis))
    if not known.all() and k_out < th.min_k_anonymity:
        return CheckResult(
            CHECK, Verdict.FAIL,
            f"k-anonymity in the table is {k_out} on {', '.join(qis)} and "
            f"{int((~known).sum()):,} rows could not be matched to the source population.",
            name, evidence, _suggestion(qis))
    low_l = {s: v for s, v in ell.items() if v < th.min_l_diversity}
    if k_out < th.min_k_anonymity or low_l:
        parts = []
        if k_out < th.min_k_anonymity:
            parts.append(f"output classes as small as {k_out} (anyone who knows a person is in "
                         "the table can find their row)")
        if low_l:
            parts.append("ℓ-diversity " + ", ".join(f"{s}={v}" for s, v in low_l.items())
                         + " (a whole class shares the sensitive value)")
        return CheckResult(CHECK, Verdict.REVIEW, "Population classes are large enough, but "
                           + "; ".join(parts) + ".", name, evidence, _suggestion(qis))
    return CheckResult(
        CHECK, Verdict.PASS,
        f"Every row's combination of {', '.join(qis)} is shared by at least "
        f"{k_pop if k_pop is not None else k_out} people.", name, evidence)


def _suggestion(qis: list[str]) -> str:
    return (f"Generalise {', '.join(qis)} (age bands instead of dates, district instead of "
            "community), drop rare categories into 'other', or release aggregates.")


def _evidence(table, qis, sensitive, f, F, known, ell, pops, th) -> dict:
    risk_pop = np.where(known, 1.0 / np.maximum(F, 1), np.nan)
    risk_out = 1.0 / f
    unknown = int(F.max()) + 1 if len(F) else 1  # rows matched to nobody come last
    order = first_smallest(np.where(known, F, unknown) * (int(f.max()) + 1) + f, SHOWN)
    rows = [{"row": int(i), "population_alike": int(F[i]) if known[i] else None,
             "table_alike": int(f[i]),
             "values": {q: mask_value(table[q][int(i)].as_py()) for q in qis}} for i in order]
    return {
        "rows": len(f), "quasi_identifiers": qis, "sensitive": sensitive,
        "population_datasets": sorted(pops), "rows_matched_to_population": int(known.sum()),
        "k_anonymity_population": int(F[known].min()) if known.any() else None,
        "k_anonymity_table": int(f.min()),
        "sample_uniques": int((f == 1).sum()),
        "population_uniques": int((known & (F == 1)).sum()),
        "prosecutor_risk_population": {
            "max": round(float(np.nanmax(risk_pop)), 4) if known.any() else None,
            "mean": round(float(np.nanmean(risk_pop)), 4) if known.any() else None},
        "prosecutor_risk_table": {"max": round(float(risk_out.max()), 4),
                                  "mean": round(float(risk_out.mean()), 4)},
        "l_diversity": ell, "thresholds": {"k": th.min_k_anonymity,
                                           "max_risk": th.max_prosecutor_risk,
                                           "l": th.min_l_diversity},
        "riskiest_rows": rows,
    }
