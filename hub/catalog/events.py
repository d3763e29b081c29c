"""Typed ledger events of the catalog and authorizations (DESIGN.md "Ledger entry").

Every change to the catalog, operators, authorizations or data requests is described by one
:class:`AuditEvent` and appended to the ledger before the change is committed. An entry is
self-contained: an auditor can read who did what, in which role, to which operator, agreement,
datasets and columns, with which term, scenario and use class, without the control database.

``AuditEventType`` values are the entry ``type`` strings. They are persisted in the ledger
forever: renaming one needs a migration note for auditors reading old entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any

from hub.catalog.enums import Role


class AuditEventType(StrEnum):
    """Ledger entry types written by the catalog service (persisted; do not rename)."""

    # catalog
    PROVIDER_REGISTERED = "provider.registered"
    DATASET_REGISTERED = "dataset.registered"
    DATASET_UPDATED = "dataset.updated"
    DATASET_CONSENT_RECORDED = "dataset.consent_recorded"
    # operators and their analysts
    OPERATOR_CREATED = "operator.created"
    OPERATOR_UPDATED = "operator.updated"
    ANALYST_ADDED = "analyst.added"
    # authorization agreements
    AUTHORIZATION_CREATED = "authorization.created"
    AUTHORIZATION_SUSPENDED = "authorization.suspended"
    AUTHORIZATION_RESUMED = "authorization.resumed"
    AUTHORIZATION_REVOKED = "authorization.revoked"
    AUTHORIZATION_EXPIRED = "authorization.expired"
    AUTHORIZATION_SCOPE_CHANGED = "authorization.scope_changed"
    AUTHORIZATION_ANALYSTS_CHANGED = "authorization.analysts_changed"
    AUTHORIZATION_EXTENDED = "authorization.extended"
    # data requests
    DATA_REQUEST_CREATED = "data_request.created"
    DATA_REQUEST_APPROVED = "data_request.approved"
    DATA_REQUEST_REFUSED = "data_request.refused"
    DATA_REQUEST_WITHDRAWN = "data_request.withdrawn"
    # attempts that were refused by policy or permission, and changes that failed after logging
    ACTION_REFUSED = "catalog.action_refused"
    CHANGE_NOT_APPLIED = "catalog.change_not_applied"


def format_at(at: datetime) -> str:
    """UTC RFC 3339 with milliseconds, the ledger's `at` format."""
    if at.tzinfo is None:
        raise ValueError("event times must be timezone-aware")
    at = at.astimezone(timezone.utc)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def format_time(at: datetime | None) -> str | None:
    """A term boundary or timestamp inside `details` (UTC RFC 3339, seconds)."""
    if at is None:
        return None
    return at.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Actor:
    """Who acts, in which role, and from where (a host, a source IP, `cli`)."""

    name: str
    role: Role
    source: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError("an actor needs a non-empty name")
        object.__setattr__(self, "role", Role.parse(self.role, "role"))


def audit_entry(event_type: str, actor: Actor, at: datetime, refs: dict[str, str | None],
                details: dict[str, Any]) -> dict[str, Any]:
    """The ledger entry of one act: version, type, time, actor and role, the references that
    are set (operator, authorization, dataset, release…) and `details` (with the actor's
    source)."""
    entry: dict[str, Any] = {"v": 1, "type": str(event_type), "at": format_at(at),
                             "actor": actor.name, "role": str(actor.role)}
    entry.update((key, value) for key, value in refs.items() if value is not None)
    details = dict(details)
    if actor.source:
        details.setdefault("source", actor.source)
    entry["details"] = details
    return entry


@dataclass(frozen=True)
class AuditEvent:
    """One ledger entry in the making; `to_entry()` gives the object the ledger appends."""

    type: AuditEventType
    actor: Actor
    at: datetime
    operator: str | None = None
    authorization: str | None = None
    dataset: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_entry(self) -> dict[str, Any]:
        return audit_entry(self.type, self.actor, self.at,
                           {"operator": self.operator, "authorization": self.authorization,
                            "dataset": self.dataset}, self.details)

