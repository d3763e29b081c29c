"""Activity figures computed from ledger entries, for the regulator's plots.

For a period of whole UTC days [since, until):

- queries per day per operator (``query`` entries; the operator is the entry's own, or its
  authorization's from the subject index);
- refused queries per day per operator (``query.denied``);
- releases and their outcomes per day (``release.submitted`` and the outcome types
  ``release.approved``, ``release.rejected``, ``release.returned``, ``release.withdrawn``,
  ``release.released``);
- privacy budget spent per authorization (``budget.charged``: ``details.spent.epsilon``, with the
  agreement's total and the remaining budget the newest charge reported).

Counts are SQL aggregates over the entries' ``type`` and ``at`` columns and the subject index;
budgets decode the (few) ``budget.charged`` entries. Only entries of the signed tree count.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Engine, text

from ledger.console.i18n import Message

MAX_DAYS = 366
UNKNOWN = "(unknown operator)"
RELEASE_OUTCOMES = ("release.submitted", "release.approved", "release.returned",
                    "release.rejected", "release.withdrawn", "release.released")


@dataclass
class Period:
    since: date
    until: date  # exclusive

    @property
    def days(self) -> list[str]:
        n = (self.until - self.since).days
        return [(self.since + timedelta(days=i)).isoformat() for i in range(n)]

    @property
    def bounds(self) -> tuple[str, str]:
        return f"{self.since.isoformat()}T00:00:00.000Z", f"{self.until.isoformat()}T00:00:00.000Z"


def parse_period(since: str | None, until: str | None, today: date) -> tuple[Period, dict[str, Message]]:
    """The period asked for (``until`` inclusive as typed), default the last 30 days."""
    errors: dict[str, Message] = {}
    values: dict[str, date] = {}
    for name, raw in (("since", since), ("until", until)):
        raw = (raw or "").strip()
        if not raw:
            continue
        try:
            if len(raw) != 10:
                raise ValueError(raw)
            values[name] = date.fromisoformat(raw)
        except ValueError:
            errors[name] = Message("err.time", {"field": f"filter.{name}", "value": raw[:40]})
    end = (values.get("until") or today) + timedelta(days=1)
    start = values.get("since") or end - timedelta(days=30)
    if not errors and start >= end:
        errors["until"] = Message("err.range")
    if not errors and (end - start).days > MAX_DAYS:
        errors["since"] = Message("err.text_long", {"field": "activity.range", "max": MAX_DAYS})
    if errors:
        end = today + timedelta(days=1)
        start = end - timedelta(days=30)
    return Period(start, end), errors


@dataclass
class DailySeries:
    days: list[str]
    series: dict[str, list[int]] = field(default_factory=dict)

    def add(self, day: str, name: str, count: int) -> None:
        if day not in self._pos:
            return
        self.series.setdefault(name, [0] * len(self.days))[self._pos[day]] += count

    def __post_init__(self) -> None:
        self._pos = {d: i for i, d in enumerate(self.days)}

    @property
    def total(self) -> int:
        return sum(sum(v) for v in self.series.values())

    def totals(self) -> dict[str, int]:
        return {name: sum(v) for name, v in sorted(self.series.items())}


@dataclass
class BudgetRow:
    authorization: str
    spent: float
    total: float | None
    remaining: float | None
    charges: int


def per_day_per_operator(engine: Engine, kind: str, period: Period, size: int) -> DailySeries:
    lo, hi = period.bounds
    rows = _rows(engine,
                 "SELECT substr(e.at, 1, 10) AS day, s.value, count(*) FROM ledger_entries e "
                 "LEFT JOIN ledger_subjects s ON s.idx = e.idx AND s.key = 'operator' "
                 "WHERE e.type = :kind AND e.at >= :lo AND e.at < :hi AND e.idx < :size "
                 "GROUP BY substr(e.at, 1, 10), s.value",
                 {"kind": kind, "lo": lo, "hi": hi, "size": size})
    out = DailySeries(period.days)
    for day, operator, count in rows:
        out.add(day, operator or UNKNOWN, int(count))
    return out


def releases_per_day(engine: Engine, period: Period, size: int) -> DailySeries:
    lo, hi = period.bounds
    marks = ", ".join(f":t{i}" for i in range(len(RELEASE_OUTCOMES)))
    params: dict[str, Any] = {f"t{i}": t for i, t in enumerate(RELEASE_OUTCOMES)}
    params.update({"lo": lo, "hi": hi, "size": size})
    rows = _rows(engine,
                 "SELECT substr(at, 1, 10), type, count(*) FROM ledger_entries "
                 f"WHERE type IN ({marks}) AND at >= :lo AND at < :hi AND idx < :size "
                 "GROUP BY substr(at, 1, 10), type", params)
    out = DailySeries(period.days)
    for kind in RELEASE_OUTCOMES:
        out.series[kind] = [0] * len(out.days)
    for day, kind, count in rows:
        out.add(day, kind, int(count))
    return out


def budget_per_authorization(engine: Engine, period: Period, size: int) -> list[BudgetRow]:
    lo, hi = period.bounds
    rows = _rows(engine,
                 "SELECT idx, data FROM ledger_entries WHERE type = 'budget.charged' "
                 "AND at >= :lo AND at < :hi AND idx < :size ORDER BY idx",
                 {"lo": lo, "hi": hi, "size": size})
    by_auth: dict[str, BudgetRow] = {}
    for _, data in rows:
        try:
            entry = json.loads(bytes(data))
            auth = str(entry.get("authorization") or "?")
            details = entry.get("details") or {}
            eps = float((details.get("spent") or {}).get("epsilon") or 0.0)
            budget = details.get("budget") or {}
        except (ValueError, TypeError, AttributeError):
            continue
        row = by_auth.setdefault(auth, BudgetRow(auth, 0.0, None, None, 0))
        row.spent += eps
        row.charges += 1
        row.total = _float(budget.get("total_epsilon"), row.total)
        row.remaining = _float(budget.get("remaining_epsilon"), row.remaining)
    return sorted(by_auth.values(), key=lambda r: r.authorization)


def _float(value: Any, default: float | None) -> float | None:
    try:
        return float(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def _rows(engine: Engine, sql: str, params: dict[str, Any]) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]
