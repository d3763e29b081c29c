"""Computation of a DP release on the trusted side: exact aggregates in DuckDB, noise from OpenDP.

``DpEngine.compute(query)`` runs one SQL statement over the raw table in the domain store
(read through a ``hub.domain.DomainReader``; steps 2 and 3 run on one leased state of the store,
so a dataset loaded meanwhile cannot make step 2 skip a truncation its data needs):

1. *filter*: the spec's typed predicates, as bound parameters (column names come from the catalog);
   rows whose privacy-unit identifier is NULL are left out;
2. *bound contributions*: keep at most ``k`` rows per unit, chosen uniformly at random
   (``row_number() OVER (PARTITION BY unit ORDER BY random()) <= k``). Each unit's kept rows
   depend only on that unit's rows, so neighbouring datasets still differ by at most ``k``
   rows. The engine knows, per state of the store, the largest number of rows any unit has
   (one GROUP BY, cached in ``Snapshot.facts``); when that is at most ``k`` the step is the
   identity and is skipped — the output is the same, only faster;
3. *aggregate* per group: row count, sums of values rounded to the measure's integer unit and
   clamped to its bounds (exact DECIMAL/HUGEINT arithmetic), and for quantiles the counts of
   values below and above each candidate (OpenDP's candidate scores are computed from them).

Noise is then sampled with the OpenDP measurements of ``calibration.calibrate`` (built once
per shape): with public keys every public key gets a value (absent groups count as zero, values
outside the key set are dropped); with private keys the counts go through OpenDP's threshold
measurement and only groups it keeps are released. Every released value comes with its 95%
interval: ± OpenDP's accuracy for counts and sums; for means (noisy sum ÷ noisy count) the box
of the two intervals at 97.5% each; for quantiles the candidates whose rank lies within the
selection error (see ``release.py`` for the JSON shape). The intervals cover the statistic of
the *bounded* data (clamped, at most k rows per unit): clamping and truncation bias are not in
them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import duckdb

from hub.domain import DomainError, DomainReader, Snapshot
from release_review.dp import calibration as cal
from release_review.dp.columns import MAX_ROWS, Kind, kind_of
from release_review.dp.exceptions import ComputationFailed
from release_review.dp.spec import CheckedMeasure, CheckedQuery

ALPHA = 0.05
SQL_OPS = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Plan:
    """The primitives a query needs, which measure reads which primitive, and the shape."""

    shape: cal.Shape
    len_index: int | None  # index of the len primitive
    by_measure: dict[str, int]  # sum/mean/quantile measure name -> primitive index
    sum_columns: tuple[CheckedMeasure, ...]  # one per distinct (column, bounds) summed
    quantiles: tuple[CheckedMeasure, ...]


def plan(query: CheckedQuery) -> Plan:
    k = query.contributions
    private = query.keys is None
    groups = k if private else min(k, len(query.keys.values))  # type: ignore[union-attr]
    prims: list[cal.Primitive] = []
    len_index = None
    if private or any(m.op in ("count", "mean") for m in query.measures):
        len_index = 0
        prims.append(cal.Primitive(cal.LEN, k, label="count"))
    by_measure: dict[str, int] = {}
    sums: dict[tuple, int] = {}
    sum_columns, quantiles = [], []
    for m in query.measures:
        if m.op in ("sum", "mean"):
            key = (m.column, m.bounds)
            if key not in sums:
                sums[key] = len(prims)
                sum_columns.append(m)
                prims.append(cal.Primitive(cal.SUM, k * m.bounds.max_abs_units,  # type: ignore[union-attr]
                                           label=f"sum({m.column})"))
            by_measure[m.name] = sums[key]
        elif m.op == "quantile":
            by_measure[m.name] = len(prims)
            quantiles.append(m)
            prims.append(cal.Primitive(cal.QUANTILE, cal.quantile_sensitivity(m.alpha, k),  # type: ignore[arg-type]
                                       groups, label=f"quantile({m.column}, {m.alpha:g})"))
    spec = query.spec
    shape = cal.Shape(tuple(prims), query.zcdp, spec.rho if query.zcdp else spec.epsilon,  # type: ignore[arg-type]
                      spec.delta, k, private)
    return Plan(shape, len_index, by_measure, tuple(sum_columns), tuple(quantiles))


@dataclass
class Group:
    """One output group: its key and its exact aggregates (before noise)."""

    key: tuple[Any, ...]
    count: int = 0
    sums: list[int] = field(default_factory=list)
    scores: list[list[int]] = field(default_factory=list)  # per quantile, per candidate


@dataclass(frozen=True)
class Computation:
    """Noisy values per group, with intervals, and the mechanisms that made them."""

    query: CheckedQuery
    plan: Plan
    calibration: cal.Calibration
    rows: list[dict[str, Any]]  # {"key": {...}, "values": {...}, "ci95": {...}}
    truncated: bool  # whether step 2 ran (never shown to the analyst: it is data-dependent)


def _value_sql(m: CheckedMeasure, clamp: bool) -> str:
    """The column's values as integers in the measure's unit (clamped for sums)."""
    assert m.bounds is not None and m.type is not None
    unit = m.bounds.unit
    col = quote(m.column)  # type: ignore[arg-type]
    kind = kind_of(m.type)
    exponent = unit.adjusted()  # units are powers of ten
    if exponent <= 0 and kind is not Kind.FLOAT:
        scaled = f"round({col} * {10 ** -exponent})" if exponent < 0 else f"round({col})"
    else:
        scaled = f"round(CAST({col} AS DOUBLE) / {float(unit)!r})"
    if clamp:
        zero = min(max(0, m.bounds.lower_units), m.bounds.upper_units)
        return (f"CAST(least(greatest(coalesce({scaled}, {zero}), {m.bounds.lower_units}), "
                f"{m.bounds.upper_units}) AS BIGINT)")
    assert m.candidates is not None
    middle = Fraction(sorted(m.candidates)[(len(m.candidates) - 1) // 2] +
                      sorted(m.candidates)[len(m.candidates) // 2], 2)
    return f"coalesce(CAST({scaled} AS DOUBLE), {float(middle)!r})"


def build_sql(query: CheckedQuery, p: Plan, truncate: bool) -> tuple[str, list[Any]]:
    """One statement computing every group's exact aggregates (see module doc)."""
    table = f"main.{quote(query.dataset.name)}"
    unit = quote(query.unit_column)
    params: list[Any] = []
    where = [f"{unit} IS NOT NULL"]
    for f in query.filters:
        col = quote(f.column)
        if f.op == "in":
            where.append(f"{col} IN ({', '.join('?' for _ in f.values)})")
        elif f.op == "between":
            where.append(f"{col} BETWEEN ? AND ?")
        else:
            where.append(f"{col} {SQL_OPS[f.op]} ?")
        params.extend(f.values)
    keys = [quote(c) for c in query.group_by]
    inner = keys + [f"{_value_sql(m, True)} AS __s{i}" for i, m in enumerate(p.sum_columns)]
    inner += [f"{_value_sql(m, False)} AS __q{i}" for i, m in enumerate(p.quantiles)]
    inner.append(f"{unit} AS __unit")
    base = f"SELECT {', '.join(inner)} FROM {table} WHERE {' AND '.join(where)}"
    if truncate:
        base = (f"SELECT * FROM (SELECT *, random() AS __r FROM ({base})) "
                f"QUALIFY row_number() OVER (PARTITION BY __unit ORDER BY __r) <= {query.contributions}")
    outer = keys + ["count(*) AS __len"]
    outer += [f"sum(__s{i}) AS __sum{i}" for i in range(len(p.sum_columns))]
    for i, m in enumerate(p.quantiles):
        for j, c in enumerate(m.candidates):  # type: ignore[union-attr, arg-type]
            outer.append(f"count(*) FILTER (WHERE __q{i} < {int(c)}) AS __lt{i}_{j}")
            outer.append(f"count(*) FILTER (WHERE __q{i} > {int(c)}) AS __gt{i}_{j}")
    sql = f"SELECT {', '.join(outer)} FROM ({base})"
    if keys:
        sql += f" GROUP BY {', '.join(keys)}"
    return sql, params


class DpEngine:
    """Computes DP releases over the domain store (through one ``DomainReader``)."""

    def __init__(self, domain_dir: Path, reader: DomainReader | None = None,
                 **readonly_options: Any):
        """`reader`: a reader shared with the process's other trusted-side readers (the
        release checks); otherwise the engine opens its own with `readonly_options`
        (memory_limit, threads) and closes it in ``close``."""
        self.domain_dir = Path(domain_dir)
        self._owns_reader = reader is None
        self.reader = reader or DomainReader(self.domain_dir, **readonly_options)

    def close(self) -> None:
        if self._owns_reader:
            self.reader.close()

    def _acquire(self) -> Snapshot:
        try:
            return self.reader.acquire()
        except DomainError as e:
            raise ComputationFailed(str(e)) from None

    # --- step 2 helper: the largest number of rows of one unit, per state of the store -----

    def max_rows_per_unit(self, query: CheckedQuery, snapshot: Snapshot | None = None) -> int:
        if snapshot is None:
            snap = self._acquire()
            try:
                return self.max_rows_per_unit(query, snap)
            finally:
                self.reader.release(snap)
        key = ("dp_max_rows_per_unit", query.dataset.name, query.unit_column)
        if key not in snapshot.facts:
            cur = snapshot.cursor()
            try:
                snapshot.facts[key] = self._max_rows_per_unit(cur, query)
            finally:
                cur.close()
        return snapshot.facts[key]

    @staticmethod
    def _max_rows_per_unit(cur: duckdb.DuckDBPyConnection, query: CheckedQuery) -> int:
        unit, table = quote(query.unit_column), f"main.{quote(query.dataset.name)}"
        rows = cur.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        if rows > MAX_ROWS:
            raise ComputationFailed(f"dataset {query.dataset.name} holds {rows:,} rows, more than "
                                    f"the DP lane's public bound of {MAX_ROWS:,}")
        most = cur.execute(f"SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM {table} "
                           f"WHERE {unit} IS NOT NULL GROUP BY {unit})").fetchone()[0]
        return int(most)

    # --- the computation -----------------------------------------------------------------

    def exact_groups(self, query: CheckedQuery, p: Plan) -> tuple[list[Group], bool]:
        """Every group present in the bounded data with its exact aggregates (one state of
        the store for both steps)."""
        snap = self._acquire()
        try:
            truncate = self.max_rows_per_unit(query, snap) > query.contributions
            sql, params = build_sql(query, p, truncate)
            cur = snap.cursor()
            try:
                result = cur.execute(sql, params).fetchall()
            except duckdb.Error as e:
                raise ComputationFailed(f"the domain store could not compute the release: "
                                        f"{type(e).__name__}") from None
            finally:
                cur.close()
        finally:
            self.reader.release(snap)
        groups = []
        width = len(query.group_by)
        for row in result:
            g = Group(tuple(row[:width]), int(row[width]))
            at = width + 1
            g.sums = [int(v or 0) for v in row[at:at + len(p.sum_columns)]]
            at += len(p.sum_columns)
            for m in p.quantiles:
                n = len(m.candidates)  # type: ignore[arg-type]
                pairs = row[at:at + 2 * n]
                g.scores.append(_scores(m.alpha, pairs[0::2], pairs[1::2]))  # type: ignore[arg-type]
                at += 2 * n
            groups.append(g)
        return groups, truncate

    def compute(self, query: CheckedQuery) -> Computation:
        p = plan(query)
        try:
            calibration = cal.calibrate(p.shape)
        except ValueError as e:
            raise ComputationFailed(f"noise calibration failed: {e}") from None
        groups, truncated = self.exact_groups(query, p)
        rows = release_groups(query, p, calibration, groups)
        return Computation(query, p, calibration, rows, truncated)


def _scores(alpha: float, lt: tuple[int, ...], gt: tuple[int, ...]) -> list[int]:
    """OpenDP's discrete quantile scores: |(den − num)·min(#<c, L) − num·min(#>c, L)|."""
    num, den, limit = cal.quantile_constants(alpha)
    return [abs((den - num) * min(int(a), limit) - num * min(int(b), limit))
            for a, b in zip(lt, gt)]


def _empty(query: CheckedQuery, p: Plan, key: tuple[Any, ...]) -> Group:
    g = Group(key, 0, [0] * len(p.sum_columns))
    g.scores = [_scores(m.alpha, (0,) * len(m.candidates), (0,) * len(m.candidates))  # type: ignore[arg-type]
                for m in p.quantiles]
    return g


def _key_id(key: tuple[Any, ...]) -> str:
    from release_review.dp.columns import json_value
    return json.dumps([json_value(v) for v in key], ensure_ascii=False)


def release_groups(query: CheckedQuery, p: Plan, c: cal.Calibration,
                   groups: list[Group]) -> list[dict[str, Any]]:
    """Sample the noise and assemble the released rows (see module doc)."""
    if query.keys is not None:
        present = {g.key: g for g in groups}
        chosen = [present.get(key) or _empty(query, p, key) for key in query.keys.values]
        noisy_len = None
        if p.len_index is not None:
            noisy_len = c.noises[p.len_index].measurement([g.count for g in chosen])
    else:
        by_id = {_key_id(g.key): g for g in groups}
        kept = c.threshold_measurement({k: g.count for k, g in by_id.items()})
        chosen = [by_id[k] for k in sorted(kept)]
        noisy_len = [kept[k] for k in sorted(kept)]
    noisy_sums = []
    for i, _m in enumerate(p.sum_columns):
        index = p.by_measure[_m.name]
        noisy_sums.append(c.noises[index].measurement([g.sums[i] for g in chosen]) if chosen else [])
    noisy_q = []
    for i, m in enumerate(p.quantiles):
        noise = c.noises[p.by_measure[m.name]]
        noisy_q.append([m.candidates[noise.measurement(g.scores[i])] for g in chosen])  # type: ignore[index]
    return [_row(query, p, c, g, j, noisy_len, noisy_sums, noisy_q) for j, g in enumerate(chosen)]


def _row(query, p, c, g, j, noisy_len, noisy_sums, noisy_q) -> dict[str, Any]:
    from release_review.dp.columns import json_value
    values: dict[str, Any] = {}
    ci: dict[str, Any] = {}
    count = noisy_len[j] if noisy_len is not None else None
    for m in query.measures:
        if m.op == "count":
            acc = cal.accuracy(c.noises[p.len_index], ALPHA)
            values[m.name], ci[m.name] = count, [count - acc, count + acc]
        elif m.op == "sum":
            i = _sum_index(p, m)
            units = noisy_sums[i][j]
            acc = cal.accuracy(c.noises[p.by_measure[m.name]], ALPHA)
            values[m.name] = _scaled(units, m.unit)
            ci[m.name] = [_scaled(units - acc, m.unit), _scaled(units + acc, m.unit)]
        elif m.op == "mean":
            i = _sum_index(p, m)
            values[m.name], ci[m.name] = _mean(noisy_sums[i][j], count, m, c, p)
        else:
            i = p.quantiles.index(m)
            values[m.name] = _scaled(noisy_q[i][j], m.unit)
            ci[m.name] = _quantile_interval(m, c.noises[p.by_measure[m.name]], count)
    key = {col: json_value(v) for col, v in zip(query.group_by, g.key)}
    return {"key": key, "values": values, "ci95": ci}


def _sum_index(p: Plan, m: CheckedMeasure) -> int:
    for i, s in enumerate(p.sum_columns):
        if s.column == m.column and s.bounds == m.bounds:
            return i
    raise KeyError(m.name)  # pragma: no cover


def _scaled(units: float, unit: Decimal) -> float:
    return float(Decimal(repr(units)) * unit) if isinstance(units, float) else float(units * unit)


def _mean(noisy_sum: int, count: int, m: CheckedMeasure, c: cal.Calibration,
          p: Plan) -> tuple[float | None, list[float]]:
    """Noisy sum ÷ noisy count, clamped to the bounds; the interval is the box of both at 97.5%."""
    lo, hi = float(m.bounds.lower), float(m.bounds.upper)  # type: ignore[union-attr]
    a_s = cal.accuracy(c.noises[p.by_measure[m.name]], ALPHA / 2)
    a_c = cal.accuracy(c.noises[p.len_index], ALPHA / 2)
    unit = float(m.unit)
    value = None if count <= 0 else min(max(noisy_sum * unit / count, lo), hi)
    if count - a_c <= 0:
        return value, [lo, hi]
    s_lo, s_hi = (noisy_sum - a_s) * unit, (noisy_sum + a_s) * unit
    c_lo, c_hi = count - a_c, count + a_c
    low = s_lo / c_hi if s_lo >= 0 else s_lo / c_lo
    high = s_hi / c_lo if s_hi >= 0 else s_hi / c_hi
    return value, [min(max(low, lo), hi), min(max(high, lo), hi)]


def _quantile_interval(m: CheckedMeasure, noise: cal.Noise, count: int | None) -> dict[str, Any]:
    """The selected candidate's rank is within ``rank_error`` of the ideal α-rank (95%)."""
    _, den, _ = cal.quantile_constants(m.alpha)  # type: ignore[arg-type]
    rank_error = cal.selection_error(noise, len(m.candidates), ALPHA) / den  # type: ignore[arg-type]
    out: dict[str, Any] = {"rank_error": rank_error}
    if count is not None and count > 0:
        out["levels"] = [max(0.0, m.alpha - rank_error / count),  # type: ignore[operator]
                         min(1.0, m.alpha + rank_error / count)]  # type: ignore[operator]
    return out
