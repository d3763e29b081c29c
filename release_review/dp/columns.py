"""Column types as the DP lane sees them: typed filter values and exact integer units for sums.

The catalog gives each column a DuckDB type name (``VARCHAR``, ``SMALLINT``, ``DECIMAL(12,2)``,
``DATE`` …). This module turns a type name into a *kind* (text, integer, decimal, float, date,
timestamp, boolean), parses JSON values of filters and key sets into that kind (refusing a value
of the wrong type with a message that names the column), and chooses the *unit* in which a
numeric column is summed.

Units: every sum, mean and quantile is computed on integers — the column's values divided by
its unit, exactly (DECIMAL arithmetic in DuckDB, no floating-point rounding). OpenDP's
sensitivity of an integer sum has no floating-point relaxation term, so the noise scale is
exactly ``contributions × max(|lower|, |upper|) / unit`` per unit of budget. The unit is
``10^-scale`` for ``DECIMAL(p, s)`` (cents for money columns), ``1`` for integer columns, and
for floating-point columns ``10^(e - 9)`` where ``10^e`` is the first power of ten at or above
the larger bound (nine significant digits). The unit is coarsened the same way whenever the
native unit would let ``MAX_ROWS × bound / unit`` overflow a signed 64-bit sum (OpenDP refuses
such a sum); values are rounded to the unit before clamping, which is a per-row function and
changes no privacy argument.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from release_review.dp.exceptions import SpecInvalid

INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "INT", "BIGINT", "HUGEINT", "UTINYINT",
                 "USMALLINT", "UINTEGER", "UBIGINT"}
FLOAT_TYPES = {"FLOAT", "REAL", "DOUBLE"}
TEXT_TYPES = {"VARCHAR", "TEXT", "STRING"}
DECIMAL_PATTERN = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")
MAX_ROWS = 1_000_000_000
"""Public bound on the rows of one dataset (OpenDP's ``max_length`` margin): the engine refuses
a table that holds more. It only enters the overflow check of integer sums."""
MAX_UNITS_PER_VALUE = 10**9
"""Largest |bound| / unit: ``MAX_ROWS × 10^9 < 2^63``, so no integer sum can overflow."""


class Kind(StrEnum):
    TEXT = "text"
    INTEGER = "integer"
    DECIMAL = "decimal"
    FLOAT = "float"
    DATE = "date"
    TIMESTAMP = "timestamp"
    BOOLEAN = "boolean"
    OTHER = "other"

    @property
    def numeric(self) -> bool:
        return self in (Kind.INTEGER, Kind.DECIMAL, Kind.FLOAT)

    @property
    def ordered(self) -> bool:
        return self not in (Kind.BOOLEAN, Kind.OTHER)


def kind_of(type_name: str) -> Kind:
    t = type_name.strip().upper()
    if t in INTEGER_TYPES:
        return Kind.INTEGER
    if t in FLOAT_TYPES:
        return Kind.FLOAT
    if t in TEXT_TYPES:
        return Kind.TEXT
    if DECIMAL_PATTERN.match(t):
        return Kind.DECIMAL
    if t == "DATE":
        return Kind.DATE
    if t.startswith("TIMESTAMP"):
        return Kind.TIMESTAMP
    if t == "BOOLEAN":
        return Kind.BOOLEAN
    return Kind.OTHER


def native_unit(type_name: str) -> Decimal | None:
    """Smallest step of a numeric type: 1 for integers, 10^-s for DECIMAL(p,s), None for floats."""
    kind = kind_of(type_name)
    if kind is Kind.INTEGER:
        return Decimal(1)
    if kind is Kind.DECIMAL:
        scale = int(DECIMAL_PATTERN.match(type_name.strip().upper()).group(2))  # type: ignore[union-attr]
        return Decimal(1).scaleb(-scale)
    return None


@dataclass(frozen=True)
class Bounds:
    """Clamping bounds of a measure in column units, and the unit they are counted in."""

    lower: Decimal  # as the analyst gave them
    upper: Decimal
    unit: Decimal
    lower_units: int  # ceil(lower / unit)
    upper_units: int  # floor(upper / unit)

    @property
    def max_abs_units(self) -> int:
        return max(abs(self.lower_units), abs(self.upper_units))

    def to_json(self) -> list[float]:
        return [float(self.lower), float(self.upper)]


def number(value: Any, where: str) -> Decimal:
    """A finite JSON number as an exact Decimal (bools and strings are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecInvalid(f"{where} must be a number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise SpecInvalid(f"{where} must be finite, got {value!r}")
    return Decimal(str(value)) if isinstance(value, float) else Decimal(value)


def unit_for(type_name: str, magnitude: Decimal) -> Decimal:
    """The summing unit of a column whose bounds reach `magnitude` (see module doc)."""
    floor = Decimal(0)
    if magnitude > 0:
        exponent = math.ceil(math.log10(magnitude)) if magnitude >= 1 else 0
        if Decimal(10) ** exponent < magnitude:
            exponent += 1
        floor = Decimal(1).scaleb(exponent - 9)
    native = native_unit(type_name)
    if native is None:
        return floor if floor > 0 else Decimal(1).scaleb(-9)
    return max(native, floor)


def bounds_for(type_name: str, raw: Any, where: str) -> Bounds:
    """Parse ``[lower, upper]`` for a numeric column and express it in integer units."""
    if not isinstance(raw, (list, tuple)) or len(raw) != 2:
        raise SpecInvalid(f"{where}: bounds must be a list [lower, upper] of two numbers, got {raw!r}")
    lower, upper = number(raw[0], f"{where}: lower bound"), number(raw[1], f"{where}: upper bound")
    if not lower < upper:
        raise SpecInvalid(f"{where}: the lower bound {raw[0]} must be below the upper bound {raw[1]}")
    unit = unit_for(type_name, max(abs(lower), abs(upper)))
    lo = int((lower / unit).to_integral_value(rounding=ROUND_CEILING))
    hi = int((upper / unit).to_integral_value(rounding=ROUND_FLOOR))
    if lo > hi:
        raise SpecInvalid(f"{where}: no value of the column's unit {unit} lies within the bounds {raw}")
    if max(abs(lo), abs(hi)) > MAX_UNITS_PER_VALUE:  # pragma: no cover - unit_for prevents it
        raise SpecInvalid(f"{where}: bounds {raw} are too wide for an exact sum")
    return Bounds(lower, upper, unit, lo, hi)


def parse_value(kind: Kind, value: Any, where: str) -> Any:
    """A JSON filter or key value as the Python value DuckDB compares with the column."""
    def bad(expected: str) -> SpecInvalid:
        return SpecInvalid(f"{where} must be {expected}, got {value!r}")

    if value is None:
        raise bad("a value (null is not allowed; filter on a value instead)")
    if kind is Kind.TEXT:
        if not isinstance(value, str):
            raise bad("a string")
        if len(value) > 1000:
            raise SpecInvalid(f"{where} is longer than 1000 characters")
        return value
    if kind is Kind.INTEGER:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if kind in (Kind.DECIMAL, Kind.FLOAT):
        return number(value, where)
    if kind is Kind.BOOLEAN:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if kind is Kind.DATE:
        if not isinstance(value, str):
            raise bad("a date as 'YYYY-MM-DD'")
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise bad("a date as 'YYYY-MM-DD'") from None
    if kind is Kind.TIMESTAMP:
        if not isinstance(value, str):
            raise bad("a time as 'YYYY-MM-DDTHH:MM:SS'")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise bad("a time as 'YYYY-MM-DDTHH:MM:SS'") from None
        if parsed.tzinfo is not None:
            raise bad("a local time without a time zone (the column holds local times)")
        return parsed
    raise SpecInvalid(f"{where}: the column's type cannot be filtered on")


def json_value(value: Any) -> Any:
    """A key or filter value back as JSON (dates as ISO strings, Decimals as numbers)."""
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        try:
            return int(value) if value == value.to_integral_value() else float(value)
        except InvalidOperation:  # pragma: no cover - finite by construction
            return float(value)
    return value
