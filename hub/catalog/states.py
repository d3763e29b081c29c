"""Statuses of authorizations and data requests, and the transitions between them, as data.

An authorization (授权运营协议) starts ``active``. The authority or a regulator may suspend it;
suspension is lifted by the authority, or only by a regulator when a regulator imposed it
(see ``policies.check_resume_allowed``). Revocation and expiry are final: a new agreement is
needed afterwards. Expiry is also computed from the clock (``effective_status``): an agreement
past its end is expired for every check even before the expiry job records it.

A data request (an analyst asking for a dataset or columns outside the scope) starts
``pending`` and is decided once: approved or refused by the authority, or withdrawn by the
analyst who asked.

``TRANSITIONS`` maps each status to the statuses it may move to, with the roles allowed to move it
and the ledger event that records the move. ``check_transition()`` refuses anything else before a
change is made; the service applies the transition only after it passed. The tests check that
every status appears in the tables and is reachable from the initial status.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from hub.catalog.enums import Role
from hub.catalog.events import AuditEventType
from hub.catalog.exceptions import InvalidTransition, PermissionDenied


class AuthorizationStatus(StrEnum):
    """Stored values; renaming one needs a data migration."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    EXPIRED = "expired"
    REVOKED = "revoked"


class DataRequestStatus(StrEnum):
    """Stored values; renaming one needs a data migration."""

    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True)
class Transition:
    roles: frozenset[Role]
    event: AuditEventType


def _t(event: AuditEventType, *roles: Role) -> Transition:
    return Transition(frozenset(roles), event)


A = AuthorizationStatus
AUTHORIZATION_INITIAL = A.ACTIVE
AUTHORIZATION_TRANSITIONS: dict[AuthorizationStatus, dict[AuthorizationStatus, Transition]] = {
    A.ACTIVE: {
        A.SUSPENDED: _t(AuditEventType.AUTHORIZATION_SUSPENDED, Role.AUTHORITY, Role.REGULATOR),
        A.REVOKED: _t(AuditEventType.AUTHORIZATION_REVOKED, Role.AUTHORITY),
        A.EXPIRED: _t(AuditEventType.AUTHORIZATION_EXPIRED, Role.SERVICE, Role.AUTHORITY),
    },
    A.SUSPENDED: {
        A.ACTIVE: _t(AuditEventType.AUTHORIZATION_RESUMED, Role.AUTHORITY, Role.REGULATOR),
        A.REVOKED: _t(AuditEventType.AUTHORIZATION_REVOKED, Role.AUTHORITY),
        A.EXPIRED: _t(AuditEventType.AUTHORIZATION_EXPIRED, Role.SERVICE, Role.AUTHORITY),
    },
    A.EXPIRED: {},
    A.REVOKED: {},
}

# What each status means for access, shown by the CLI and the console.
AUTHORIZATION_STATUS_MEANING: dict[AuthorizationStatus, str] = {
    A.ACTIVE: "in force: analysts may query within scope and term",
    A.SUSPENDED: "suspended: all access refused until resumed",
    A.EXPIRED: "term ended: all access refused; a new agreement is needed",
    A.REVOKED: "revoked: all access refused permanently",
}

# Statuses in which the agreement itself may still be changed (scope, analysts, term).
AUTHORIZATION_CHANGEABLE = frozenset({A.ACTIVE, A.SUSPENDED})

R = DataRequestStatus
DATA_REQUEST_INITIAL = R.PENDING
DATA_REQUEST_TRANSITIONS: dict[DataRequestStatus, dict[DataRequestStatus, Transition]] = {
    R.PENDING: {
        R.APPROVED: _t(AuditEventType.DATA_REQUEST_APPROVED, Role.AUTHORITY),
        R.REFUSED: _t(AuditEventType.DATA_REQUEST_REFUSED, Role.AUTHORITY),
        R.WITHDRAWN: _t(AuditEventType.DATA_REQUEST_WITHDRAWN, Role.ANALYST),
    },
    R.APPROVED: {},
    R.REFUSED: {},
    R.WITHDRAWN: {},
}


def effective_status(
    stored: AuthorizationStatus, ends_at: datetime, at: datetime
) -> AuthorizationStatus:
    """The status that governs access at `at`: past its end, a live agreement is expired."""
    if stored in AUTHORIZATION_CHANGEABLE and at >= ends_at:
        return A.EXPIRED
    return stored


def check_transition(
    table: dict, current: StrEnum, target: StrEnum, role: Role, subject: str
) -> Transition:
    """The transition current → target if the table allows it for `role`; else raise why not."""
    allowed = table[current]
    if target not in allowed:
        if current == target:
            raise InvalidTransition(f"{subject} is already {current}")
        options = ", ".join(str(s) for s in allowed) or "nothing (final status)"
        raise InvalidTransition(
            f"{subject} is {current} and cannot become {target}; from {current} it may become: "
            f"{options}"
        )
    transition = allowed[target]
    if role not in transition.roles:
        who = ", ".join(sorted(str(r) for r in transition.roles))
        raise PermissionDenied(
            f"the {role} role may not make {subject} {target} (allowed: {who})"
        )
    return transition


def check_authorization_transition(
    current: AuthorizationStatus, target: AuthorizationStatus, role: Role, auth_id: str
) -> Transition:
    return check_transition(
        AUTHORIZATION_TRANSITIONS, current, target, role, f"authorization {auth_id}"
    )


def check_data_request_transition(
    current: DataRequestStatus, target: DataRequestStatus, role: Role, request_id: str
) -> Transition:
    return check_transition(
        DATA_REQUEST_TRANSITIONS, current, target, role, f"data request {request_id}"
    )


def state_diagram(table: dict, initial: StrEnum) -> str:
    """A Mermaid state diagram of a transition table (the docs page is generated from this)."""
    lines = ["stateDiagram-v2", f"    [*] --> {initial}"]
    for current, moves in table.items():
        for target, step in moves.items():
            who = ", ".join(sorted(str(r) for r in step.roles))
            lines.append(f"    {current} --> {target}: {step.event} ({who})")
        if not moves:
            lines.append(f"    {current} --> [*]")
    return "\n".join(lines) + "\n"


def states_markdown() -> str:
    """The reference page for both state machines, generated from the tables above."""
    meaning = "\n".join(
        f"- `{status}`: {text}" for status, text in AUTHORIZATION_STATUS_MEANING.items()
    )
    return (
        "# Authorization and data-request states\n\n"
        "Generated by `shuyu authority states` from `hub/catalog/states.py`; do not edit.\n\n"
        "## Authorization agreements\n\n```mermaid\n"
        + state_diagram(AUTHORIZATION_TRANSITIONS, AUTHORIZATION_INITIAL)
        + "```\n\nAn agreement past its end counts as expired for every check even before "
        "`authorization.expired` is recorded. A suspension by a regulator is lifted only by a "
        "regulator.\n\n" + meaning + "\n\n## Data requests\n\n```mermaid\n"
        + state_diagram(DATA_REQUEST_TRANSITIONS, DATA_REQUEST_INITIAL)
        + "```\n"
    )
