"""Immutable records: what the service reads from and hands to its store.

The service never touches ORM rows or sessions. It reads records, builds changed copies with
``dataclasses.replace`` and hands them, with their ledger events, to ``CatalogStore.apply``.
``revision`` is the optimistic-concurrency counter of a stored record: a write whose record was
read at an older revision than the stored one is refused (``ConcurrentChange``). New records
carry revision 0.

All times are timezone-aware UTC ``datetime`` values; ``acquired_on`` is a calendar date.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from hub.catalog.enums import (
    AccessMode,
    Grade,
    IdentifierClass,
    OpenAttribute,
    Role,
    UpdateFrequency,
    UseClass,
)
from hub.catalog.events import format_time
from hub.catalog.states import AuthorizationStatus, DataRequestStatus, effective_status


@dataclass(frozen=True)
class ProviderRecord:
    """A data-holding department (数据提供单位)."""

    name: str
    code: str | None = None
    revision: int = 0


@dataclass(frozen=True)
class ColumnRecord:
    name: str
    type: str
    identifier_class: IdentifierClass
    group_by_allowed: bool
    description: str = ""
    label: str = ""  # the field's Chinese name, e.g. 公民身份号码

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "identifier_class": str(self.identifier_class),
            "group_by_allowed": self.group_by_allowed,
            "label": self.label,
            "description": self.description,
        }


@dataclass(frozen=True)
class DatasetRecord:
    """A registered public dataset: metadata, grade, open attribute and columns."""

    name: str
    provider: str
    grade: Grade
    open_attribute: OpenAttribute
    columns: tuple[ColumnRecord, ...]
    title: str = ""
    description: str = ""
    update_frequency: UpdateFrequency | None = None
    version: str | None = None
    acquired_on: date | None = None
    registration_code: str | None = None
    shared_source: str | None = None
    consent_reference: str | None = None
    registered_at: datetime | None = None
    updated_at: datetime | None = None
    revision: int = 0

    def column(self, name: str) -> ColumnRecord | None:
        for col in self.columns:
            if col.name == name:
                return col
        return None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def metadata_json(self) -> dict[str, Any]:
        """Everything but the columns and bookkeeping, for ledger entries and listings."""
        return {
            "name": self.name,
            "title": self.title,
            "provider": self.provider,
            "description": self.description,
            "grade": str(self.grade),
            "grade_label": self.grade.label,
            "open_attribute": str(self.open_attribute),
            "open_attribute_label": self.open_attribute.label,
            "update_frequency": str(self.update_frequency) if self.update_frequency else None,
            "version": self.version,
            "acquired_on": self.acquired_on.isoformat() if self.acquired_on else None,
            "registration_code": self.registration_code,
            "shared_source": self.shared_source,
            "consent_reference": self.consent_reference,
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.metadata_json(), "columns": [c.to_json() for c in self.columns]}


@dataclass(frozen=True)
class OperatorRecord:
    """An operating company (运营机构) that holds authorizations."""

    name: str
    credit_code: str | None = None
    security_officer: str | None = None
    created_at: datetime | None = None
    revision: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "credit_code": self.credit_code,
            "security_officer": self.security_officer,
            "created_at": format_time(self.created_at),
        }


@dataclass(frozen=True)
class AnalystRecord:
    """An operator's analyst; `user_name` is the JupyterHub user name."""

    user_name: str
    operator: str
    display_name: str = ""
    created_at: datetime | None = None
    revision: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "user_name": self.user_name,
            "operator": self.operator,
            "display_name": self.display_name,
            "created_at": format_time(self.created_at),
        }


@dataclass(frozen=True)
class DatasetScope:
    """One dataset inside an authorization: the columns allowed, the access mode and budget."""

    dataset: str
    access_mode: AccessMode
    epsilon: float
    columns: frozenset[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "access_mode": str(self.access_mode),
            "epsilon": self.epsilon,
            "columns": sorted(self.columns),
        }


@dataclass(frozen=True)
class AuthorizationRecord:
    """An authorization agreement (授权运营协议) between the authority and an operator."""

    id: str
    operator: str
    scenario: str
    use_class: UseClass
    min_group_size: int
    starts_at: datetime
    ends_at: datetime
    status: AuthorizationStatus
    analysts: frozenset[str]
    scope: tuple[DatasetScope, ...]
    created_by: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    status_reason: str = ""
    status_changed_by_role: Role | None = None
    revision: int = 0
    partial: bool = False  # a query-time view: scope and analysts cut down; never written back

    def scope_for(self, dataset: str) -> DatasetScope | None:
        for item in self.scope:
            if item.dataset == dataset:
                return item
        return None

    @property
    def datasets(self) -> tuple[str, ...]:
        return tuple(s.dataset for s in self.scope)

    def effective_status(self, at: datetime) -> AuthorizationStatus:
        return effective_status(self.status, self.ends_at, at)

    def terms_json(self) -> dict[str, Any]:
        """The agreement's terms as an auditor reads them in a ledger entry."""
        return {
            "operator": self.operator,
            "scenario": self.scenario,
            "use_class": str(self.use_class),
            "use_class_label": self.use_class.label,
            "min_group_size": self.min_group_size,
            "starts_at": format_time(self.starts_at),
            "ends_at": format_time(self.ends_at),
            "analysts": sorted(self.analysts),
            "scope": [s.to_json() for s in sorted(self.scope, key=lambda s: s.dataset)],
        }

    def to_json(self, at: datetime | None = None) -> dict[str, Any]:
        out = {"id": self.id, "status": str(self.status), **self.terms_json()}
        if at is not None:
            out["effective_status"] = str(self.effective_status(at))
        out["status_reason"] = self.status_reason
        out["created_by"] = self.created_by
        out["created_at"] = format_time(self.created_at)
        return out


@dataclass(frozen=True)
class DataRequestRecord:
    """An analyst's request for a dataset or columns outside an authorization's scope."""

    id: str
    authorization: str
    requester: str
    dataset: str
    columns: tuple[str, ...]
    reason: str
    status: DataRequestStatus
    requested_at: datetime
    access_mode: AccessMode | None = None
    epsilon: float | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_reason: str = ""
    revision: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "authorization": self.authorization,
            "requester": self.requester,
            "dataset": self.dataset,
            "columns": list(self.columns),
            "reason": self.reason,
            "status": str(self.status),
            "requested_at": format_time(self.requested_at),
            "access_mode": str(self.access_mode) if self.access_mode else None,
            "epsilon": self.epsilon,
            "decided_by": self.decided_by,
            "decided_at": format_time(self.decided_at),
            "decision_reason": self.decision_reason,
        }


@dataclass(frozen=True)
class ColumnGrant:
    """A column the grant allows, with what the gateway needs to treat it."""

    name: str
    type: str
    identifier_class: IdentifierClass
    group_by_allowed: bool
    label: str = ""


@dataclass(frozen=True)
class Grant:
    """What one user may do with one dataset now: the answer of ``check_user_can_query``.

    `columns` are all the columns in scope (the requested ones are a subset of them), in the
    dataset's column order. `grade`, `registration_code`, `version` and `acquired_on` let
    downstream products name their sources (注明数据来源和获取日期) and inherit the grade.
    """

    user: str
    dataset: str
    authorization: str
    operator: str
    access_mode: AccessMode
    columns: tuple[ColumnGrant, ...]
    requested_columns: tuple[str, ...]
    min_group_size: int
    epsilon: float
    scenario: str
    use_class: UseClass
    grade: Grade
    starts_at: datetime
    ends_at: datetime
    registration_code: str | None = None
    version: str | None = None
    acquired_on: date | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> ColumnGrant | None:
        for col in self.columns:
            if col.name == name:
                return col
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "dataset": self.dataset,
            "authorization": self.authorization,
            "operator": self.operator,
            "access_mode": str(self.access_mode),
            "columns": [
                {
                    "name": c.name,
                    "type": c.type,
                    "identifier_class": str(c.identifier_class),
                    "group_by_allowed": c.group_by_allowed,
                    "label": c.label,
                }
                for c in self.columns
            ],
            "requested_columns": list(self.requested_columns),
            "min_group_size": self.min_group_size,
            "epsilon": self.epsilon,
            "scenario": self.scenario,
            "use_class": str(self.use_class),
            "grade": str(self.grade),
            "starts_at": format_time(self.starts_at),
            "ends_at": format_time(self.ends_at),
            "registration_code": self.registration_code,
            "version": self.version,
            "acquired_on": self.acquired_on.isoformat() if self.acquired_on else None,
            "notes": list(self.notes),
        }
