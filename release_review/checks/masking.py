"""Masking values shown as evidence, so a check result never carries a clear identifier.

Evidence is stored with the check results, shown in the reviewer's pages and summarised in the
ledger, so it must let a reviewer recognise *what kind* of value was found and *where*, without
repeating the value itself. Conventions (in the spirit of GB/T 35273 display masking):

- identifiers keep a short prefix and suffix: a resident ID shows its region prefix and the
  check character (``5301************2X``), a mobile number the usual ``138****5678``;
- names keep the first character (``张**``);
- anything else keeps at most a third of its characters.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

MASK = "*"


def mask_identifier(value: str, kind: str | None = None) -> str:
    """`value` with its middle replaced by ``*`` (how much stays depends on the kind)."""
    value = str(value)
    n = len(value)
    if kind == "mobile" and n >= 11:
        return value[:-8] + MASK * 4 + value[-4:]
    if kind == "pseudonym":
        return value[:6] + "…" if n > 6 else MASK * n
    if kind == "name":
        return value[:1] + MASK * max(n - 1, 1)
    if n <= 3:
        return MASK * n
    keep_head = min(4, n // 3)
    keep_tail = min(2, max(n // 3 - keep_head, 1))
    return value[:keep_head] + MASK * (n - keep_head - keep_tail) + value[n - keep_tail:]


def mask_text(text: str, spans: list[tuple[int, int, str]]) -> str:
    """`text` with each (start, end, kind) span masked; spans must not overlap."""
    out, last = [], 0
    for start, end, kind in sorted(spans):
        out.append(text[last:start])
        out.append(mask_identifier(text[start:end], kind))
        last = end
    out.append(text[last:])
    return "".join(out)


def mask_value(value: Any) -> Any:
    """A quasi-identifier or sensitive value as shown in evidence: coarse enough not to single
    out a person, precise enough for a reviewer to see which group it is."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m")
    if isinstance(value, date):
        return value.strftime("%Y-%m")
    if isinstance(value, (int, float, Decimal)):
        return _magnitude(float(value))
    text = str(value)
    if len(text) <= 6:
        return text  # categories: 男, 彝族, 五华区 …
    return mask_identifier(text)


def _magnitude(x: float) -> str:
    """A number as its order of magnitude range, e.g. 8123.4 -> '1000–9999'."""
    if x != x:  # NaN
        return "NaN"
    sign = "-" if x < 0 else ""
    a = abs(x)
    if a < 10:
        return f"{sign}0–9"
    digits = len(str(int(a)))
    low = 10 ** (digits - 1)
    return f"{sign}{low}–{10 * low - 1}"


def show_key(value: Any) -> Any:
    """A group label (a cell's key) as shown in evidence: categories, years and dates as they
    are; long text (which could be a name or an address) masked."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, (float, Decimal)):
        return float(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    text = str(value)
    return text if len(text) <= 30 else mask_identifier(text)
