"""The annual disclosure report (信息披露) per operator and authorization, from ledger entries.

The NDA notice of 2026-02-10 asks operators to disclose, each year by the end of March, their
authorized public data resources and their products and services (regulations.md §1, R15). The
report for year Y replays the log in order:

- ``operator.created`` gives an operator's registered facts;
- ``authorization.created`` gives an agreement's terms (scenario, use class, term, analysts,
  scope with columns and access mode) and the facts of its datasets (provider, grade,
  registration code, acquisition date); ``authorization.scope_changed``,
  ``authorization.extended`` and the status changes (suspended, resumed, revoked, expired)
  update it, each as of its own entry time;
- ``release.released`` entries are the products released under an authorization.

An agreement appears when its term overlaps year Y and it was not ended (revoked or expired)
before Y began; its status is the one in force at the end of Y. Every row names the ledger
entries it comes from, so each statement can be proven with an evidence bundle.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Engine, text

ENDED = ("revoked", "expired")
STATUS_OF = {
    "authorization.created": "active",
    "authorization.suspended": "suspended",
    "authorization.resumed": "active",
    "authorization.revoked": "revoked",
    "authorization.expired": "expired",
}


@dataclass
class Product:
    release: str
    title: str
    released_at: str
    files: list[str]
    sources: list[str]
    ledger_index: int


@dataclass
class AuthorizationReport:
    authorization: str
    operator: str
    scenario: str
    use_class: str
    use_class_label: str
    starts_at: str
    ends_at: str
    status: str
    datasets: list[dict[str, Any]]
    scope: list[dict[str, Any]]
    analysts: list[str]
    products: list[Product] = field(default_factory=list)
    ledger_indexes: list[int] = field(default_factory=list)
    ended_at: str | None = None


@dataclass
class OperatorReport:
    operator: str
    facts: dict[str, Any]
    authorizations: list[AuthorizationReport]


@dataclass
class DisclosureReport:
    year: int
    origin: str
    tree_size: int
    operators: list[OperatorReport]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _entries(engine: Engine, size: int, until: str) -> list[tuple[int, dict]]:
    sql = ("SELECT idx, data FROM ledger_entries WHERE idx < :size AND at < :until AND "
           "(type = 'operator.created' OR type LIKE 'authorization.%' "
           "OR type = 'release.released') ORDER BY idx")
    out = []
    with engine.connect() as conn:
        for idx, data in conn.execute(text(sql), {"size": size, "until": until}):
            try:
                entry = json.loads(bytes(data))
            except ValueError:
                continue
            if isinstance(entry, dict):
                out.append((int(idx), entry))
    return out


def _new_auth(entry: dict, details: dict) -> AuthorizationReport:
    return AuthorizationReport(
        authorization=str(entry.get("authorization")),
        operator=str(entry.get("operator") or details.get("operator") or ""),
        scenario=str(details.get("scenario") or ""),
        use_class=str(details.get("use_class") or ""),
        use_class_label=str(details.get("use_class_label") or ""),
        starts_at=str(details.get("starts_at") or ""),
        ends_at=str(details.get("ends_at") or ""),
        status="active",
        datasets=list(details.get("datasets") or []),
        scope=list(details.get("scope") or []),
        analysts=list(details.get("analysts") or []),
    )


def _apply(auth: AuthorizationReport, kind: str, entry: dict, details: dict) -> None:
    if kind in STATUS_OF and kind != "authorization.created":
        auth.status = STATUS_OF[kind]
        if auth.status in ENDED:
            auth.ended_at = str(entry.get("at"))
    for key in ("scope", "analysts"):
        if isinstance(details.get(key), list):
            setattr(auth, key, list(details[key]))
    if kind == "authorization.scope_changed" and isinstance(details.get("datasets"), list):
        known = {d.get("dataset"): d for d in auth.datasets if isinstance(d, dict)}
        for d in details["datasets"]:
            if isinstance(d, dict):
                known[d.get("dataset")] = d
        auth.datasets = list(known.values())
    if details.get("ends_at"):
        auth.ends_at = str(details["ends_at"])


def replay(engine: Engine, size: int, until: str, products_since: str = ""
           ) -> tuple[dict[str, dict[str, Any]], dict[str, AuthorizationReport]]:
    """Operators' facts and every authorization's state from entries before `until` (UTC)."""
    operators: dict[str, dict[str, Any]] = {}
    auths: dict[str, AuthorizationReport] = {}
    for idx, entry in _entries(engine, size, until):
        kind = str(entry.get("type"))
        details = entry.get("details") if isinstance(entry.get("details"), dict) else {}
        if kind == "operator.created" and entry.get("operator"):
            operators[str(entry["operator"])] = details
            continue
        auth_id = entry.get("authorization")
        if not isinstance(auth_id, str):
            continue
        if kind == "authorization.created":
            auths[auth_id] = _new_auth(entry, details)
        auth = auths.get(auth_id)
        if auth is None:
            continue
        auth.ledger_indexes.append(idx)
        if kind == "release.released":
            if str(entry.get("at", "")) >= products_since:
                auth.products.append(Product(
                    release=str(entry.get("release") or ""), title=str(details.get("title") or ""),
                    released_at=str(entry.get("at")),
                    files=[str(f.get("name")) for f in details.get("files") or []
                           if isinstance(f, dict)],
                    sources=[str(s.get("dataset")) for s in details.get("sources") or []
                             if isinstance(s, dict)],
                    ledger_index=idx))
        elif kind.startswith("authorization."):
            _apply(auth, kind, entry, details)
    return operators, auths


def authorization_states(engine: Engine, size: int) -> list[AuthorizationReport]:
    """Every authorization the log records, as its entries leave it now."""
    _, auths = replay(engine, size, "9999-12-31T23:59:59.999Z")
    return sorted(auths.values(), key=lambda a: (a.operator, a.authorization))


def disclosure(engine: Engine, origin: str, size: int, year: int) -> DisclosureReport:
    start, end = f"{year:04d}-01-01T00:00:00", f"{year + 1:04d}-01-01T00:00:00"
    operators, auths = replay(engine, size, end + ".000Z", start)
    shown: dict[str, list[AuthorizationReport]] = {}
    for auth in auths.values():
        overlaps = auth.starts_at < end and auth.ends_at >= start
        ended_before = auth.ended_at is not None and auth.ended_at < start
        if overlaps and not ended_before:
            shown.setdefault(auth.operator, []).append(auth)
    reports = [OperatorReport(op, operators.get(op, {}),
                              sorted(items, key=lambda a: a.authorization))
               for op, items in sorted(shown.items())]
    return DisclosureReport(year, origin, size, reports)


CSV_COLUMNS = ("year", "operator", "authorization", "scenario", "use_class", "starts_at",
               "ends_at", "status", "datasets", "scope", "products", "ledger_indexes")


def _scope_text(scope: list[dict[str, Any]]) -> str:
    parts = []
    for s in scope:
        cols = s.get("columns")
        cols_text = ",".join(cols) if isinstance(cols, list) else "*"
        parts.append(f"{s.get('dataset')}[{cols_text}] {s.get('access_mode', '')}".strip())
    return "; ".join(parts)


def to_csv(report: DisclosureReport) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(CSV_COLUMNS)
    for op in report.operators:
        for a in op.authorizations:
            w.writerow([
                report.year, a.operator, a.authorization, a.scenario,
                a.use_class_label or a.use_class, a.starts_at, a.ends_at, a.status,
                "; ".join(f"{d.get('dataset')} ({d.get('registration_code') or '-'}, "
                          f"{d.get('grade') or '-'})" for d in a.datasets if isinstance(d, dict)),
                _scope_text(a.scope),
                "; ".join(f"{p.title} ({p.release}, {p.released_at})" for p in a.products),
                " ".join(str(i) for i in a.ledger_indexes),
            ])
    return out.getvalue()
