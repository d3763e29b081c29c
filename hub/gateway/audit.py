"""Ledger entries of the gateway: every query, allowed or refused, before its answer leaves.

Two entry types (persisted in the ledger forever: renaming one needs a migration note for
auditors reading old entries):

- ``query``: a query that ran. ``details`` holds the SQL (and its sha256), the datasets and
  columns it read, their access modes, the outcome (``ok`` or ``failed`` with the error code),
  rows returned, groups suppressed by the minimum group size, whether the row limit cut it,
  the sha256 of the result as delivered (see ``results.result_sha256``), its size and pages,
  the duration and the caller's address;
- ``query.denied``: a query refused before it ran, with the reason the analyst was given.

The subject ids ``authorization`` and ``session`` (the hub token the sandbox server holds) sit at
the top of the entry with ``actor`` (the hub user) and ``role``; ``dataset`` is there too when the
query read exactly one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hub.gateway.identity import HubUser

SQL_IN_ENTRY = 16_000


class QueryEventType(StrEnum):
    """Ledger entry types written by the gateway (persisted; do not rename)."""

    QUERY = "query"
    QUERY_DENIED = "query.denied"


@dataclass
class QueryRecord:
    """Everything the ledger entry of one query says; filled in as the query proceeds."""

    query_id: str
    user: HubUser
    sql: str
    source: str | None = None
    authorization: str | None = None
    datasets: list[str] = field(default_factory=list)
    columns: dict[str, list[str]] = field(default_factory=dict)
    access_modes: dict[str, str] = field(default_factory=dict)
    pseudonymized: dict[str, list[str]] = field(default_factory=dict)
    min_group_size: dict[str, int] = field(default_factory=dict)

    def _base(self, kind: QueryEventType, duration_ms: float) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": str(kind), "actor": self.user.name, "role": "analyst"}
        if self.authorization:
            entry["authorization"] = self.authorization
        if self.user.session:
            entry["session"] = self.user.session
        if len(self.datasets) == 1:
            entry["dataset"] = self.datasets[0]
        entry["details"] = {
            "query_id": self.query_id,
            "sql": self.sql[:SQL_IN_ENTRY],
            "sql_sha256": hashlib.sha256(self.sql.encode("utf-8", "replace")).hexdigest(),
            "sql_truncated": len(self.sql) > SQL_IN_ENTRY,
            "datasets": list(self.datasets),
            "duration_ms": round(duration_ms, 3),
            "source": self.source,
        }
        return entry

    def denied(self, reason: str, code: str, duration_ms: float) -> dict[str, Any]:
        entry = self._base(QueryEventType.QUERY_DENIED, duration_ms)
        entry["details"].update({"outcome": "denied", "code": code, "reason": reason})
        if self.columns:
            entry["details"]["columns"] = self.columns
        return entry

    def ran(
        self,
        *,
        rows: int,
        groups_suppressed: int,
        truncated: bool,
        result_sha256: str | None,
        result_bytes: int,
        pages: int,
        duration_ms: float,
        error: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        entry = self._base(QueryEventType.QUERY, duration_ms)
        entry["details"].update({
            "outcome": "failed" if error else "ok",
            "columns": self.columns,
            "access_modes": self.access_modes,
            "pseudonymized": self.pseudonymized,
            "min_group_size": self.min_group_size,
            "rows": rows,
            "groups_suppressed": groups_suppressed,
            "truncated": truncated,
            "result_sha256": result_sha256,
            "result_bytes": result_bytes,
            "pages": pages,
        })
        if error:
            entry["details"]["code"], entry["details"]["reason"] = error
        return entry
