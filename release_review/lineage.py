"""What a request comes from, found by the system, never declared by the analyst.

The gateway writes a ``query`` entry for every query that ran (``hub/gateway/audit.py``): the
SQL, the datasets and columns it read, its authorization and outcome. ``authored_queries`` reads
the author's successful queries under the request's authorization back from the ledger (entries
re-hashed against their stored leaf hash, so a changed row is refused); ``sources_of`` joins
what they touched with the catalog: each dataset's grade, registration code (登记编码),
acquisition date (获取日期), version, provider and column classes. The checks use the column
classes; the package names the sources; the grade sets how many approvals a request needs
(就高从严: the highest grade among the sources).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Protocol

from sqlalchemy import Engine

from hub.catalog.enums import Grade, highest_grade
from hub.catalog.exceptions import NotFound as CatalogNotFound
from hub.catalog.records import DatasetRecord
from ledger.entry import decode_entry
from ledger.exceptions import EntryError
from ledger.hashing import leaf_hash
from release_review.checks.base import AuthoredQuery, ColumnInfo, SourceDataset
from release_review.exceptions import PolicyRefused

MAX_QUERIES = 5000  # the newest ones, if an author ran more under one authorization


class DatasetReader(Protocol):
    def get_dataset(self, name: str) -> DatasetRecord: ...


@dataclass(frozen=True)
class Lineage:
    queries: list[AuthoredQuery]
    touched: dict[str, tuple[str, ...]]  # dataset -> columns read, in first-seen order


def authored_queries(engine: Engine, author: str, authorization: str,
                     limit: int = MAX_QUERIES) -> Lineage:
    """The author's successful gateway queries under `authorization`, oldest first."""
    qmark = engine.dialect.paramstyle == "qmark"
    sql = ("SELECT idx, data, leaf_hash FROM ledger_entries WHERE type = ? AND actor = ? "
           "ORDER BY idx DESC LIMIT ?")
    if not qmark:
        sql = sql.replace("?", "%s")
    with engine.connect() as conn:
        cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cur.execute(sql, ("query", author, int(limit)))
            rows = cur.fetchall()
        finally:
            cur.close()
        conn.rollback()
    queries: list[AuthoredQuery] = []
    touched: dict[str, list[str]] = {}
    for idx, data, stored_hash in reversed(rows):
        data = bytes(data)
        if leaf_hash(data) != bytes(stored_hash):
            raise PolicyRefused(f"ledger entry {idx} does not match its leaf hash; the author's "
                                "queries cannot be trusted, so nothing is submitted")
        try:
            entry = decode_entry(data)
        except EntryError as e:
            raise PolicyRefused(f"ledger entry {idx} is not a valid entry ({e})") from None
        details = entry.get("details") or {}
        if entry.get("authorization") != authorization or details.get("outcome") != "ok":
            continue
        columns = details.get("columns") or {}
        flat: list[str] = []
        for dataset in details.get("datasets") or []:
            cols = [str(c) for c in columns.get(dataset) or []]
            seen = touched.setdefault(dataset, [])
            seen += [c for c in cols if c not in seen]
            flat += cols
        queries.append(AuthoredQuery(int(idx), str(details.get("sql", "")),
                                     tuple(details.get("datasets") or ()), tuple(flat),
                                     str(entry.get("at", "")), details.get("result_sha256")))
    return Lineage(queries, {k: tuple(v) for k, v in touched.items()})


def sources_of(catalog: DatasetReader, touched: dict[str, Iterable[str]]
               ) -> tuple[list[SourceDataset], list[dict[str, Any]]]:
    """Check-context sources and their JSON description (for the request and the package)."""
    sources, described = [], []
    for name, cols in touched.items():
        try:
            ds = catalog.get_dataset(name)
        except CatalogNotFound:
            raise PolicyRefused(f"dataset {name!r}, which the author's queries read, is no "
                                "longer in the catalog; the request cannot name its source"
                                ) from None
        cols = tuple(cols) or ds.column_names
        infos = tuple(ColumnInfo(c.name, c.type, str(c.identifier_class), c.group_by_allowed,
                                 c.label) for c in ds.columns)
        sources.append(SourceDataset(ds.name, str(ds.grade), infos, cols))
        described.append({
            "dataset": ds.name, "title": ds.title, "provider": ds.provider,
            "grade": str(ds.grade), "grade_label": ds.grade.label,
            "registration_code": ds.registration_code,
            "acquired_on": ds.acquired_on.isoformat() if ds.acquired_on else None,
            "version": ds.version,
            "columns": [{"name": c, "label": (ds.column(c).label if ds.column(c) else ""),
                         "identifier_class": (str(ds.column(c).identifier_class)
                                              if ds.column(c) else "unknown")} for c in cols],
        })
    return sources, described


def grade_of(described: list[dict[str, Any]]) -> str:
    """The highest grade of the sources (就高从严, GB/T 43697); 一般 when there are none."""
    grades = [Grade.parse(s["grade"]) for s in described]
    return str(highest_grade(grades)) if grades else str(Grade.GENERAL)
