"""The JSON query spec of a DP release and its strict validation.

Analysts never send code to the DP lane, only a spec like::

    {"dataset": "social_insurance",
     "filters": [{"column": "payment_status", "op": "=", "value": "正常"},
                 {"column": "month", "op": "between", "value": ["2025-01-01", "2025-06-01"]}],
     "group_by": ["month"],
     "keys": {"month": ["2025-01-01", "2025-02-01"]},          (optional public keys)
     "measures": [{"op": "count"},
                  {"op": "sum", "column": "wage", "bounds": [0, 50000]},
                  {"op": "mean", "column": "wage", "bounds": [0, 50000], "name": "avg_wage"},
                  {"op": "quantile", "column": "wage", "bounds": [0, 50000], "alpha": 0.5}],
     "epsilon": 0.5,                       (or "rho": 0.01; "delta" where keys are private)
     "max_rows_per_person": 12}

Terms:
- *privacy unit*: one person or entity — all the rows that carry the same value of the dataset's
  identifier column, which is the first direct identifier in the catalog (the rule the gateway
  uses for its group sizes: ``resident_id`` for residents and social insurance, ``household_id``
  for households and utilities, ``credit_code`` for enterprises, ``card_id`` for bus trips).
  Neighbouring datasets differ by adding or removing one unit with all its rows.
- *contribution bound* ``max_rows_per_person`` (k, default 1): after the filters, at most k rows
  of each unit are kept (a uniform random choice among its rows), so one unit changes at most k
  rows. Rows whose identifier is NULL are left out (they cannot be bounded).
- *filters*: ``=``, ``!=``, ``in``, ``<``, ``<=``, ``>``, ``>=``, ``between`` (inclusive) on
  columns in the authorization's scope that are not direct identifiers; values typed like the
  column (strings, integers, numbers, ``YYYY-MM-DD`` dates, ISO local times, booleans).
- *measures*: ``count`` (rows per group), ``sum``/``mean``/``quantile`` of a numeric column in
  scope with required ``bounds`` (values are clamped into them; NULL counts as 0 clamped into the
  bounds). ``mean`` is the noisy sum divided by the noisy count (post-processing, so it shares the
  group's count). ``quantile`` takes ``alpha`` in (0, 1) and optional ``candidates`` (default 51
  evenly spaced values across the bounds; NULL counts as the middle candidate).
- *budget*: exactly one of ``epsilon`` (pure DP, Laplace noise) or ``rho`` (zero-concentrated
  DP, Gaussian noise); ``delta`` is needed when a grouping column has no public key set.

``parse_spec`` checks the structure alone; ``check_spec`` checks it against the catalog (the
dataset, column types, group-by permission) and the author's grant (columns in scope).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from hub.catalog.enums import IdentifierClass
from hub.catalog.records import DatasetRecord, Grant
from release_review.dp.columns import Bounds, Kind, bounds_for, json_value, kind_of, number, parse_value
from release_review.dp.exceptions import SpecInvalid
from release_review.dp.keysets import PublicKeySets

FILTER_OPS = ("=", "!=", "in", "<", "<=", ">", ">=", "between")
MEASURE_OPS = ("count", "sum", "mean", "quantile")
TOP_LEVEL = {"dataset", "filters", "group_by", "keys", "measures", "epsilon", "rho", "delta",
             "max_rows_per_person"}
MAX_FILTERS, MAX_IN_VALUES, MAX_GROUP_BY, MAX_MEASURES = 20, 1000, 3, 10
MAX_PUBLIC_KEYS = 100_000
MAX_CONTRIBUTIONS = 1000
MAX_EPSILON, MAX_RHO, MAX_DELTA = 20.0, 10.0, 1e-5
DEFAULT_CANDIDATES, MAX_CANDIDATES = 51, 1000
MAX_SPEC_BYTES = 32 * 1024


@dataclass(frozen=True)
class Filter:
    column: str
    op: str
    value: Any  # raw JSON; typed by check_spec


@dataclass(frozen=True)
class Measure:
    name: str
    op: str
    column: str | None = None
    bounds: tuple[Any, Any] | None = None
    alpha: float | None = None
    candidates: tuple[Any, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "op": self.op}
        if self.column is not None:
            out["column"] = self.column
        if self.bounds is not None:
            out["bounds"] = list(self.bounds)
        if self.alpha is not None:
            out["alpha"] = self.alpha
        if self.candidates is not None:
            out["candidates"] = list(self.candidates)
        return out


@dataclass(frozen=True)
class QuerySpec:
    """A structurally valid spec (not yet checked against the catalog)."""

    dataset: str
    filters: tuple[Filter, ...]
    group_by: tuple[str, ...]
    keys: dict[str, tuple[Any, ...]]
    measures: tuple[Measure, ...]
    epsilon: float | None
    rho: float | None
    delta: float | None
    max_rows_per_person: int

    def to_json(self) -> dict[str, Any]:
        """The normalized spec (defaults filled in): what the ledger records and hashes."""
        out: dict[str, Any] = {
            "dataset": self.dataset,
            "filters": [{"column": f.column, "op": f.op, "value": f.value} for f in self.filters],
            "group_by": list(self.group_by),
            "measures": [m.to_json() for m in self.measures],
            "max_rows_per_person": self.max_rows_per_person,
        }
        if self.keys:
            out["keys"] = {k: list(v) for k, v in self.keys.items()}
        for name in ("epsilon", "rho", "delta"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out

    def sha256(self) -> str:
        text = json.dumps(self.to_json(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the spec names, in first-mention order."""
        names = [f.column for f in self.filters] + list(self.group_by)
        names += [m.column for m in self.measures if m.column is not None]
        return tuple(dict.fromkeys(names))


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SpecInvalid(f"{where} must be a non-empty string, got {value!r}")
    if len(value) > 63:
        raise SpecInvalid(f"{where} {value[:70]!r} is longer than 63 characters")
    return value.strip()


def _list(value: Any, where: str, limit: int) -> list[Any]:
    if not isinstance(value, list):
        raise SpecInvalid(f"{where} must be a list, got {type(value).__name__}")
    if len(value) > limit:
        raise SpecInvalid(f"{where} has {len(value)} items; at most {limit} are allowed")
    return value


def _positive(raw: dict[str, Any], key: str, limit: float) -> float | None:
    if key not in raw or raw[key] is None:
        return None
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecInvalid(f"{key} must be a number, got {value!r}")
    if not 0 < value <= limit:
        raise SpecInvalid(f"{key} must be greater than 0 and at most {limit:g}, got {value!r}")
    return float(value)


def _filter(raw: Any, i: int) -> Filter:
    where = f"filters[{i}]"
    if not isinstance(raw, dict) or set(raw) != {"column", "op", "value"}:
        raise SpecInvalid(f"{where} must be an object with exactly 'column', 'op' and 'value'")
    column = _name(raw["column"], f"{where}.column")
    op = raw["op"]
    if op not in FILTER_OPS:
        raise SpecInvalid(f"{where}.op {op!r} is not one of {', '.join(FILTER_OPS)}")
    value = raw["value"]
    if op == "in":
        if not _list(value, f"{where}.value (op 'in')", MAX_IN_VALUES):
            raise SpecInvalid(f"{where}.value (op 'in') must list at least one value")
    elif op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise SpecInvalid(f"{where}.value (op 'between') must be a list [low, high]")
    elif isinstance(value, (list, dict)):
        raise SpecInvalid(f"{where}.value (op {op!r}) must be a single value")
    return Filter(column, op, value)


def _measure(raw: Any, i: int) -> Measure:
    where = f"measures[{i}]"
    if not isinstance(raw, dict):
        raise SpecInvalid(f"{where} must be an object")
    op = raw.get("op")
    if op not in MEASURE_OPS:
        raise SpecInvalid(f"{where}.op {op!r} is not one of {', '.join(MEASURE_OPS)}")
    allowed = {"count": {"op", "name"}, "sum": {"op", "name", "column", "bounds"},
               "mean": {"op", "name", "column", "bounds"},
               "quantile": {"op", "name", "column", "bounds", "alpha", "candidates"}}[op]
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise SpecInvalid(f"{where} ({op}) does not take {', '.join(unknown)}")
    if op == "count":
        return Measure(_name(raw.get("name", "count"), f"{where}.name"), op)
    column = _name(raw.get("column"), f"{where}.column")
    if "bounds" not in raw:
        raise SpecInvalid(f"{where} ({op} of {column}) needs bounds [lower, upper]: values are "
                          "clamped into them, which bounds one person's influence")
    bounds = raw["bounds"]
    if not isinstance(bounds, list) or len(bounds) != 2:
        raise SpecInvalid(f"{where}.bounds must be a list [lower, upper], got {bounds!r}")
    alpha = candidates = None
    if op == "quantile":
        alpha = raw.get("alpha", 0.5)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
            raise SpecInvalid(f"{where}.alpha must be a number strictly between 0 and 1, got {alpha!r}")
        if "candidates" in raw:
            candidates = tuple(_list(raw["candidates"], f"{where}.candidates", MAX_CANDIDATES))
            if not candidates:
                raise SpecInvalid(f"{where}.candidates must list at least one value")
    default = f"{op}_{column}" if op != "quantile" else f"q{alpha:g}_{column}"
    name = _name(raw.get("name", default), f"{where}.name")
    return Measure(name, op, column, (bounds[0], bounds[1]), alpha, candidates)


def parse_spec(raw: Any) -> QuerySpec:
    """Check a spec's structure (see module doc); SpecInvalid names the first problem."""
    if isinstance(raw, (str, bytes)):
        try:
            raw = json.loads(raw)
        except ValueError as e:
            raise SpecInvalid(f"the spec is not valid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise SpecInvalid("the spec must be a JSON object")
    unknown = sorted(set(raw) - TOP_LEVEL)
    if unknown:
        raise SpecInvalid(f"unknown field(s) in the spec: {', '.join(unknown)} "
                          f"(allowed: {', '.join(sorted(TOP_LEVEL))})")
    dataset = _name(raw.get("dataset"), "dataset")
    filters = tuple(_filter(f, i) for i, f in
                    enumerate(_list(raw.get("filters", []), "filters", MAX_FILTERS)))
    group_by = tuple(_name(c, f"group_by[{i}]") for i, c in
                     enumerate(_list(raw.get("group_by", []), "group_by", MAX_GROUP_BY)))
    if len(set(group_by)) != len(group_by):
        raise SpecInvalid(f"group_by names a column twice: {list(group_by)}")
    keys = _keys(raw.get("keys", {}), group_by)
    measures = tuple(_measure(m, i) for i, m in
                     enumerate(_list(raw.get("measures"), "measures", MAX_MEASURES)))
    if not measures:
        raise SpecInvalid("measures must list at least one measure")
    names = [m.name for m in measures]
    clash = sorted({n for n in names if names.count(n) > 1} | (set(names) & set(group_by)))
    if clash:
        raise SpecInvalid(f"output name(s) used twice: {', '.join(clash)}; give the measures "
                          "distinct 'name's")
    epsilon, rho = _positive(raw, "epsilon", MAX_EPSILON), _positive(raw, "rho", MAX_RHO)
    if (epsilon is None) == (rho is None):
        raise SpecInvalid("give exactly one privacy budget: 'epsilon' (pure DP, Laplace noise) "
                          "or 'rho' (zero-concentrated DP, Gaussian noise)")
    delta = _positive(raw, "delta", MAX_DELTA)
    k = raw.get("max_rows_per_person", 1)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_CONTRIBUTIONS:
        raise SpecInvalid(f"max_rows_per_person must be an integer from 1 to {MAX_CONTRIBUTIONS}, "
                          f"got {k!r}")
    spec = QuerySpec(dataset, filters, group_by, keys, measures, epsilon, rho, delta, k)
    size = len(json.dumps(spec.to_json(), ensure_ascii=False).encode("utf-8"))
    if size > MAX_SPEC_BYTES:
        raise SpecInvalid(f"the spec is {size:,} bytes; at most {MAX_SPEC_BYTES:,} are allowed "
                          "(it is recorded in the ledger with the charge)")
    return spec


def _keys(raw: Any, group_by: tuple[str, ...]) -> dict[str, tuple[Any, ...]]:
    if not isinstance(raw, dict):
        raise SpecInvalid("keys must be an object mapping group_by columns to lists of values")
    out = {}
    for column, values in raw.items():
        if column not in group_by:
            raise SpecInvalid(f"keys names {column!r}, which is not in group_by {list(group_by)}")
        listed = _list(values, f"keys.{column}", MAX_PUBLIC_KEYS)
        if not listed:
            raise SpecInvalid(f"keys.{column} must list at least one value")
        out[column] = tuple(listed)
    return out


# --- checking against the catalog and the grant ---------------------------------------------


@dataclass(frozen=True)
class CheckedFilter:
    column: str
    op: str
    values: tuple[Any, ...]  # typed: one value, two for between, any number for in


@dataclass(frozen=True)
class CheckedMeasure:
    name: str
    op: str
    column: str | None = None
    type: str | None = None
    bounds: Bounds | None = None
    alpha: float | None = None
    candidates: tuple[int, ...] | None = None  # in units, strictly increasing

    @property
    def unit(self) -> Decimal:
        return self.bounds.unit if self.bounds else Decimal(1)


@dataclass(frozen=True)
class KeySet:
    """The public keys of a group-by: every combination released, and where they come from."""

    columns: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]
    sources: tuple[str, ...]


@dataclass(frozen=True)
class CheckedQuery:
    spec: QuerySpec
    dataset: DatasetRecord
    grant: Grant
    unit_column: str
    filters: tuple[CheckedFilter, ...]
    group_by: tuple[str, ...]
    measures: tuple[CheckedMeasure, ...]
    keys: KeySet | None  # None: private keys (DP thresholding)

    @property
    def contributions(self) -> int:
        return self.spec.max_rows_per_person

    @property
    def zcdp(self) -> bool:
        return self.spec.rho is not None


def unit_column(dataset: DatasetRecord) -> str | None:
    """The privacy unit's identifier: the first direct identifier in catalog order."""
    for col in dataset.columns:
        if col.identifier_class is IdentifierClass.DIRECT_IDENTIFIER:
            return col.name
    return None


def check_columns_exist(spec: QuerySpec, dataset: DatasetRecord) -> None:
    """Refuse a column the dataset does not have (before asking whether it is in scope)."""
    for name in spec.columns:
        if dataset.column(name) is None:
            raise SpecInvalid(f"dataset {dataset.name!r} has no column {name!r} (columns: "
                              f"{', '.join(dataset.column_names)})")


def check_spec(spec: QuerySpec, dataset: DatasetRecord, grant: Grant,
               keysets: PublicKeySets | None = None) -> CheckedQuery:
    """Check `spec` against the dataset's catalog record and the author's grant."""
    keysets = keysets or PublicKeySets()
    if dataset.name != spec.dataset or grant.dataset != spec.dataset:
        raise SpecInvalid(f"the spec names dataset {spec.dataset!r}, but the catalog record or "
                          f"grant is for {dataset.name!r}")
    unit = unit_column(dataset)
    if unit is None:
        raise SpecInvalid(f"dataset {dataset.name!r} has no direct identifier in the catalog, so "
                          "its privacy unit (one person's rows) cannot be bounded")
    for name in spec.columns:
        col = dataset.column(name)
        if col is None:
            raise SpecInvalid(f"dataset {dataset.name!r} has no column {name!r} (columns: "
                              f"{', '.join(dataset.column_names)})")
        if grant.column(name) is None:
            raise SpecInvalid(f"column {name!r} of {dataset.name} is outside the scope of "
                              f"authorization {grant.authorization}")
        if col.identifier_class is IdentifierClass.DIRECT_IDENTIFIER:
            raise SpecInvalid(f"column {name!r} is a direct identifier: it cannot be filtered, "
                              "grouped or measured in a DP release")
    filters = tuple(_check_filter(f, dataset, i) for i, f in enumerate(spec.filters))
    for name in spec.group_by:
        col = dataset.column(name)
        if not col.group_by_allowed:  # type: ignore[union-attr]
            raise SpecInvalid(f"column {name!r} cannot be a group-by key: the catalog does not "
                              "mark it groupable")
        if not kind_of(col.type).ordered:  # type: ignore[union-attr]
            raise SpecInvalid(f"column {name!r} has type {col.type}, which cannot be grouped on")
    measures = tuple(_check_measure(m, dataset, i) for i, m in enumerate(spec.measures))
    keys = _key_set(spec, dataset, keysets)
    if keys is None and spec.delta is None:
        private = [c for c in spec.group_by if c not in spec.keys and
                   keysets.for_column(dataset.column(c), kind_of(dataset.column(c).type)) is None]
        raise SpecInvalid(
            f"group_by column(s) {', '.join(private)} have no public key set, so the groups "
            "present in the data are private: give 'delta' (e.g. 1e-7) for DP thresholding of "
            "keys, or list the groups to release under 'keys'")
    return CheckedQuery(spec, dataset, grant, unit, filters, spec.group_by, measures, keys)


def _check_filter(f: Filter, dataset: DatasetRecord, i: int) -> CheckedFilter:
    col = dataset.column(f.column)
    kind = kind_of(col.type)  # type: ignore[union-attr]
    where = f"filters[{i}] ({f.column} {f.op})"
    if f.op in ("<", "<=", ">", ">=", "between") and not kind.ordered:
        raise SpecInvalid(f"{where}: column type {col.type} has no order")  # type: ignore[union-attr]
    raw = f.value if f.op in ("in", "between") else [f.value]
    values = tuple(parse_value(kind, v, f"{where} value") for v in raw)
    if f.op == "between" and values[0] > values[1]:
        raise SpecInvalid(f"{where}: the low end {f.value[0]!r} is above the high end {f.value[1]!r}")
    return CheckedFilter(f.column, f.op, values)


def _check_measure(m: Measure, dataset: DatasetRecord, i: int) -> CheckedMeasure:
    if m.op == "count":
        return CheckedMeasure(m.name, m.op)
    col = dataset.column(m.column)  # type: ignore[arg-type]
    where = f"measures[{i}] ({m.op} of {m.column})"
    if not kind_of(col.type).numeric:  # type: ignore[union-attr]
        raise SpecInvalid(f"{where}: column type {col.type} is not numeric")  # type: ignore[union-attr]
    bounds = bounds_for(col.type, list(m.bounds), where)  # type: ignore[union-attr, arg-type]
    candidates = None
    if m.op == "quantile":
        candidates = _candidates(m, bounds, where)
    return CheckedMeasure(m.name, m.op, m.column, col.type, bounds, m.alpha, candidates)  # type: ignore[union-attr]


def _candidates(m: Measure, bounds: Bounds, where: str) -> tuple[int, ...]:
    if m.candidates is None:
        lo, hi = bounds.lower_units, bounds.upper_units
        steps = min(DEFAULT_CANDIDATES - 1, hi - lo)
        return tuple(dict.fromkeys(lo + (hi - lo) * i // steps for i in range(steps + 1)))
    units = []
    for j, c in enumerate(m.candidates):
        value = number(c, f"{where}: candidates[{j}]")
        if not bounds.lower <= value <= bounds.upper:
            raise SpecInvalid(f"{where}: candidate {c} lies outside the bounds")
        units.append(int((value / bounds.unit).to_integral_value(rounding=ROUND_HALF_EVEN)))
    if any(b <= a for a, b in zip(units, units[1:])):
        raise SpecInvalid(f"{where}: candidates must be strictly increasing (at the column's "
                          f"resolution {bounds.unit})")
    return tuple(units)


def _key_set(spec: QuerySpec, dataset: DatasetRecord, keysets: PublicKeySets) -> KeySet | None:
    if not spec.group_by:
        return KeySet((), ((),), ())
    per_column, sources = [], []
    for name in spec.group_by:
        col = dataset.column(name)
        kind = kind_of(col.type)  # type: ignore[union-attr]
        if name in spec.keys:
            values = tuple(parse_value(kind, v, f"keys.{name} value") for v in spec.keys[name])
            source = "spec"
        else:
            code_set = keysets.for_column(col, kind)  # type: ignore[arg-type]
            if code_set is None:
                return None
            values, source = code_set.values, code_set.source
        per_column.append(tuple(dict.fromkeys(values)))
        sources.append(source)
    size = math.prod(len(v) for v in per_column)
    if size > MAX_PUBLIC_KEYS:
        raise SpecInvalid(f"the public key sets of {', '.join(spec.group_by)} combine into {size:,} "
                          f"groups; at most {MAX_PUBLIC_KEYS:,} can be released at once")
    return KeySet(spec.group_by, tuple(itertools.product(*per_column)), tuple(sources))


def key_json(values: tuple[Any, ...]) -> list[Any]:
    return [json_value(v) for v in values]
