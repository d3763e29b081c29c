"""Ledger entries of the review workflow: one :class:`AuditEvent` per act, self-contained.

An entry names the actor and role, the request (``release``), its authorization, the dataset
when the request has exactly one source, and a ``details`` object with everything an auditor
needs without the control database: titles, each file's sha256, check verdicts, votes and
comments, the package's hashes. Evidence of checks can be large; entries carry each result's
verdict and reason and the sha256 of its evidence (entries are limited to 64 KiB), and the full
evidence stays in the control database under that hash.

Entry types are ``states.AuditEventType`` values (persisted; do not rename).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hub.catalog.events import Actor, audit_entry
from release_review.records import ReleaseRequest
from release_review.states import AuditEventType

MAX_TEXT = 4000  # characters of a comment or context kept in an entry


def clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[:limit] + " …"


@dataclass(frozen=True)
class AuditEvent:
    type: AuditEventType
    actor: Actor
    at: datetime
    release: str | None = None
    authorization: str | None = None
    dataset: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_request(cls, event_type: AuditEventType, request: ReleaseRequest, actor: Actor,
                     at: datetime, /, **details: Any) -> "AuditEvent":
        datasets = request.datasets
        base = {"round": request.round, "status": str(request.status), "title": request.title}
        return cls(event_type, actor, at, request.id, request.authorization,
                   datasets[0] if len(datasets) == 1 else None, {**base, **details})

    def to_entry(self) -> dict[str, Any]:
        return audit_entry(self.type, self.actor, self.at,
                           {"release": self.release, "authorization": self.authorization,
                            "dataset": self.dataset}, self.details)
