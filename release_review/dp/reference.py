"""The same DP query through OpenDP's default Context path (polars), for comparison only.

The lane itself never uses this module to release anything. Tests use it to show that the
lane's noise scales and thresholds are exactly what OpenDP's Context computes for the same
query and that both paths give statistically consistent values; ``bench/bench_dp.py`` uses it
to time the default path against the lane in the same run.

The Context path gets the same bounded data as the engine (filters applied, at most ``k`` rows
per unit, values rounded to the measure's unit) as a polars LazyFrame, with privacy unit
``dp.unit_of(contributions=k)``, the public bound ``max_length=MAX_ROWS``, public keys joined
with ``with_keys`` (and ``max_groups`` = their number), and the spec's ε / ρ / δ.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import opendp.prelude as dp
import polars as pl

from release_review.dp import calibration as cal
from release_review.dp.columns import MAX_ROWS, json_value
from release_review.dp.engine import DpEngine, Plan, _value_sql, plan, quote
from release_review.dp.spec import CheckedQuery

dp.enable_features("contrib")


@dataclass(frozen=True)
class ContextResult:
    scales: list[float]  # per primitive, in the engine's order (len, sums, quantiles)
    distributions: list[str]
    threshold: int | None
    rows: dict[tuple, dict[str, Any]]  # key (JSON values) -> {"len", "sum0", "q0", ...}
    seconds_summarize: float  # summarize(alpha=0.05): calibration + accuracy
    seconds_release: float  # release().collect(): calibration again + computation


def bounded_frame(engine: DpEngine, query: CheckedQuery, p: Plan) -> pl.DataFrame:
    """The engine's bounded rows (before aggregation) as a polars DataFrame."""
    table, unit = f"main.{quote(query.dataset.name)}", quote(query.unit_column)
    cols = [f"CAST({quote(c)} AS VARCHAR) AS {quote(c)}" for c in query.group_by]
    cols += [f"{_value_sql(m, False) if m.op == 'quantile' else _unrounded(m)} AS __v{i}"
             for i, m in enumerate(p.sum_columns + p.quantiles)]
    from release_review.dp.engine import build_sql  # the engine's WHERE clause and truncation
    with engine.reader.snapshot() as snap:  # one state of the store, as the engine uses
        truncate = engine.max_rows_per_unit(query, snap) > query.contributions
        sql, params = build_sql(query, p, truncate)
        where = sql.split(" FROM " + table + " WHERE ", 1)[1].split(")", 1)[0]
        inner = f"SELECT {', '.join(cols + [unit + ' AS __unit'])} FROM {table} WHERE {where}"
        if truncate:
            inner = (f"SELECT * FROM (SELECT *, random() AS __r FROM ({inner})) QUALIFY "
                     f"row_number() OVER (PARTITION BY __unit ORDER BY __r) <= "
                     f"{query.contributions}")
        cur = snap.cursor()
        try:
            frame = pl.from_arrow(cur.sql(inner, params=params).to_arrow_table())
        finally:
            cur.close()
    keep = list(query.group_by) + [f"__v{i}" for i in range(len(p.sum_columns + p.quantiles))]
    return frame.select(keep) if keep else frame.select(pl.lit(0).alias("__dummy"))


def _unrounded(m) -> str:
    """Values in units, rounded but not clamped (OpenDP's sum clamps them itself)."""
    clamped = _value_sql(m, True)
    return clamped.replace("least(greatest(", "(( ").replace(
        f", {m.bounds.lower_units}), {m.bounds.upper_units})", "))")


def run_context(engine: DpEngine, query: CheckedQuery, frame: pl.DataFrame | None = None,
                summarize: bool = True) -> ContextResult:
    """Summarize and release `query` with ``dp.Context`` (timed; see module doc)."""
    p = plan(query)
    frame = bounded_frame(engine, query, p) if frame is None else frame
    spec = query.spec
    if query.zcdp:
        loss = dp.loss_of(rho=spec.rho, delta=spec.delta) if spec.delta else dp.loss_of(rho=spec.rho)
    else:
        loss = (dp.loss_of(epsilon=spec.epsilon, delta=spec.delta) if spec.delta
                else dp.loss_of(epsilon=spec.epsilon))
    margins = [dp.polars.Margin(by=[], max_length=MAX_ROWS)]
    if query.keys is not None and query.group_by:
        margins.append(dp.polars.Margin(by=list(query.group_by), max_length=MAX_ROWS,
                                        max_groups=len(query.keys.values)))
    ctx = dp.Context.compositor(data=frame.lazy(), privacy_unit=dp.unit_of(contributions=query.contributions),
                                privacy_loss=loss, split_evenly_over=1, margins=margins)
    aggs = []
    for i, prim in enumerate(p.shape.primitives):
        if prim.kind == cal.LEN:
            aggs.append(pl.len().dp.noise().alias("len"))
    for i, m in enumerate(p.sum_columns):
        b = m.bounds
        aggs.append(pl.col(f"__v{i}").fill_null(0).dp.sum((b.lower_units, b.upper_units)).alias(f"sum{i}"))
    for j, m in enumerate(p.quantiles):
        col = f"__v{len(p.sum_columns) + j}"
        aggs.append(pl.col(col).dp.quantile(m.alpha, [float(c) for c in m.candidates]).alias(f"q{j}"))
    q = ctx.query()
    if query.group_by:
        q = q.group_by(list(query.group_by)).agg(*aggs)
        if query.keys is not None:
            keys = pl.DataFrame({c: [str(json_value(v[i])) for v in query.keys.values]
                                 for i, c in enumerate(query.group_by)})
            q = q.with_keys(keys)
    else:
        q = q.select(*aggs)
    t0 = time.perf_counter()
    summary = q.summarize(alpha=0.05) if summarize else None
    t1 = time.perf_counter()
    released = q.release().collect()
    t2 = time.perf_counter()
    rows = {}
    for r in released.iter_rows(named=True):
        key = tuple(r[c] for c in query.group_by)
        rows[key] = {k: v for k, v in r.items() if k not in query.group_by}
    scales, dists, threshold = [], [], None
    if summary is not None:
        scales = summary["scale"].to_list()
        dists = summary["distribution"].to_list()
        if "threshold" in summary.columns:
            threshold = next((t for t in summary["threshold"].to_list() if t is not None), None)
    return ContextResult(scales, dists, threshold, rows, t1 - t0, t2 - t1)
