"""What the rules allow, given the state: grades, open attributes, consent, access modes, terms.

Policies differ from permissions (``permissions.py``): a permission says whether an actor's role
may do something at all; a policy says whether the data and the agreement, as they stand now,
allow it. Every check raises a ``PolicyRefused`` subclass whose message names the rule.

Rules (see ``shared/reference/regulations.md``):
- 核心数据 cannot be authorized; 重要数据 only aggregate-only, and only to an operator that named
  a 数据安全负责人 (R8; GB/T 43697-2024; DSL Art. 27);
- 不予开放 data cannot be authorized (Zhejiang 试行办法; DESIGN.md flow 1);
- data received through 政务数据共享 needs the providing unit's recorded consent (R4);
- a term is at most 5 years from its start, including extensions (R2; Guangdong draft);
- an agreement changes only while active or suspended; once expired or revoked it is final.
"""

from __future__ import annotations

from datetime import datetime

from hub.catalog.enums import AccessMode, Grade, OpenAttribute, Role
from hub.catalog.exceptions import InvalidInput, NotAuthorizable, PermissionDenied, PolicyRefused
from hub.catalog.records import AuthorizationRecord, DatasetRecord, OperatorRecord
from hub.catalog.states import AUTHORIZATION_CHANGEABLE, AuthorizationStatus

MAX_TERM_YEARS = 5
DEFAULT_MIN_GROUP_SIZE = 10
DEFAULT_EPSILON = 1.0


def add_years(at: datetime, years: int) -> datetime:
    """The same instant `years` calendar years later (29 February becomes 28 February)."""
    try:
        return at.replace(year=at.year + years)
    except ValueError:
        return at.replace(year=at.year + years, day=28)


def check_dataset_authorizable(ds: DatasetRecord) -> None:
    if ds.grade is Grade.CORE:
        raise NotAuthorizable(
            f"dataset {ds.name!r} is graded 核心 (core data): core data cannot be authorized "
            "for operation (GB/T 43697-2024, DSL Art. 21)"
        )
    if ds.open_attribute is OpenAttribute.NOT_OPEN:
        raise NotAuthorizable(
            f"dataset {ds.name!r} is 不予开放 (not open): data that may not be opened cannot be "
            "authorized for operation"
        )
    if ds.shared_source and not ds.consent_reference:
        raise NotAuthorizable(
            f"dataset {ds.name!r} was received through 政务数据共享 from {ds.shared_source}; "
            "record the providing unit's consent first (shuyu authority dataset consent)"
        )


def default_access_mode(ds: DatasetRecord) -> AccessMode:
    """Aggregate-only unless row-level access is asked for explicitly (usable, not visible)."""
    return AccessMode.AGGREGATE_ONLY


def check_access_mode(ds: DatasetRecord, mode: AccessMode) -> None:
    if ds.grade is Grade.IMPORTANT and mode is not AccessMode.AGGREGATE_ONLY:
        raise PolicyRefused(
            f"dataset {ds.name!r} is graded 重要 (important data): it may only be authorized "
            "aggregate_only, not row_level"
        )


def check_operator_for_grade(operator: OperatorRecord, ds: DatasetRecord) -> None:
    if ds.grade is Grade.IMPORTANT and not operator.security_officer:
        raise PolicyRefused(
            f"dataset {ds.name!r} is 重要 (important data) and operator {operator.name!r} has "
            "no named 数据安全负责人 (security officer, DSL Art. 27); set one first"
        )


def check_scope_columns(ds: DatasetRecord, columns: frozenset[str]) -> None:
    if not columns:
        raise InvalidInput(f"the scope of dataset {ds.name!r} names no columns")
    unknown = sorted(c for c in columns if ds.column(c) is None)
    if unknown:
        raise InvalidInput(
            f"dataset {ds.name!r} has no column(s) {', '.join(unknown)}; its columns are: "
            f"{', '.join(ds.column_names)}"
        )


def check_term(starts_at: datetime, ends_at: datetime, now: datetime) -> None:
    if ends_at <= starts_at:
        raise InvalidInput(
            f"the term ends ({ends_at.isoformat()}) before or when it starts "
            f"({starts_at.isoformat()})"
        )
    limit = add_years(starts_at, MAX_TERM_YEARS)
    if ends_at > limit:
        raise PolicyRefused(
            f"the term from {starts_at.date()} to {ends_at.date()} is longer than "
            f"{MAX_TERM_YEARS} years (授权运营期限最长不超过{MAX_TERM_YEARS}年); it may end at "
            f"{limit.isoformat()} at the latest"
        )
    if ends_at <= now:
        raise PolicyRefused(f"the term ended already ({ends_at.isoformat()} is in the past)")


def check_changeable(auth: AuthorizationRecord, at: datetime, change: str) -> None:
    status = auth.effective_status(at)
    if status not in AUTHORIZATION_CHANGEABLE:
        raise PolicyRefused(
            f"authorization {auth.id} is {status}: its {change} can no longer be changed "
            "(a new agreement is needed)"
        )


def check_extension(auth: AuthorizationRecord, new_end: datetime, at: datetime) -> None:
    check_changeable(auth, at, "term")
    if new_end <= auth.ends_at:
        raise InvalidInput(
            f"authorization {auth.id} already ends at {auth.ends_at.isoformat()}; an extension "
            f"must end later, not at {new_end.isoformat()}"
        )
    check_term(auth.starts_at, new_end, at)


def check_resume_allowed(auth: AuthorizationRecord, role: Role) -> None:
    """A suspension imposed by a regulator is lifted only by a regulator."""
    if (
        auth.status is AuthorizationStatus.SUSPENDED
        and auth.status_changed_by_role is Role.REGULATOR
        and role is not Role.REGULATOR
    ):
        raise PermissionDenied(
            f"authorization {auth.id} was suspended by a regulator; only a regulator may resume it"
        )
