"""SQLAlchemy 2 tables of the catalog in the control database (SQLite default, PostgreSQL by URL).

Only ``storage.py`` uses these classes; the rest of Shuyu sees immutable records. Enumerations are
stored as their string values in plain VARCHAR columns (no native enum types), so both engines
hold the same bytes and a new value needs no schema change. Times are stored as naive UTC and
come back timezone-aware (:class:`UTCDateTime`). Every mutable row has a ``revision`` used for
optimistic concurrency.

Tables: catalog_providers, catalog_datasets, catalog_columns, catalog_operators,
catalog_analysts, catalog_authorizations, catalog_authorization_analysts,
catalog_authorization_datasets, catalog_authorization_columns, catalog_data_requests.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out; naive UTC in the database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("refusing a naive datetime: times must be timezone-aware")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    pass


class Provider(Base):
    __tablename__ = "catalog_providers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    code: Mapped[str | None] = mapped_column(String(64))
    revision: Mapped[int] = mapped_column(Integer, default=1)


class Dataset(Base):
    __tablename__ = "catalog_datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    provider_id: Mapped[int] = mapped_column(ForeignKey("catalog_providers.id"))
    description: Mapped[str] = mapped_column(Text, default="")
    update_frequency: Mapped[str | None] = mapped_column(String(20))
    version: Mapped[str | None] = mapped_column(String(100))
    acquired_on: Mapped[date | None] = mapped_column(Date)
    registration_code: Mapped[str | None] = mapped_column(String(100), unique=True)
    grade: Mapped[str] = mapped_column(String(20))
    open_attribute: Mapped[str] = mapped_column(String(20))
    shared_source: Mapped[str | None] = mapped_column(String(200))
    consent_reference: Mapped[str | None] = mapped_column(String(200))
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revision: Mapped[int] = mapped_column(Integer, default=1)

    provider: Mapped[Provider] = relationship(lazy="joined")
    columns: Mapped[list["DatasetColumn"]] = relationship(
        order_by="DatasetColumn.position", cascade="all, delete-orphan", lazy="selectin"
    )


class DatasetColumn(Base):
    __tablename__ = "catalog_columns"
    __table_args__ = (UniqueConstraint("dataset_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("catalog_datasets.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(63))
    type: Mapped[str] = mapped_column(String(60))
    identifier_class: Mapped[str] = mapped_column(String(30))
    group_by_allowed: Mapped[bool] = mapped_column(Boolean)
    label: Mapped[str] = mapped_column(String(100), default="")
    description: Mapped[str] = mapped_column(Text, default="")


class Operator(Base):
    __tablename__ = "catalog_operators"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    credit_code: Mapped[str | None] = mapped_column(String(18), unique=True)
    security_officer: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revision: Mapped[int] = mapped_column(Integer, default=1)


class Analyst(Base):
    __tablename__ = "catalog_analysts"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_name: Mapped[str] = mapped_column(String(64), unique=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("catalog_operators.id"), index=True)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revision: Mapped[int] = mapped_column(Integer, default=1)

    operator: Mapped[Operator] = relationship(lazy="joined")


class Authorization(Base):
    __tablename__ = "catalog_authorizations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("catalog_operators.id"), index=True)
    scenario: Mapped[str] = mapped_column(Text)
    use_class: Mapped[str] = mapped_column(String(30))
    min_group_size: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), index=True)
    status_reason: Mapped[str] = mapped_column(Text, default="")
    status_changed_by_role: Mapped[str | None] = mapped_column(String(20))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revision: Mapped[int] = mapped_column(Integer, default=1)

    operator: Mapped[Operator] = relationship(lazy="joined")
    analysts: Mapped[list["AuthorizationAnalyst"]] = relationship(
        cascade="all, delete-orphan", lazy="selectin"
    )
    datasets: Mapped[list["AuthorizationDataset"]] = relationship(
        cascade="all, delete-orphan", lazy="selectin"
    )


class AuthorizationAnalyst(Base):
    __tablename__ = "catalog_authorization_analysts"

    authorization_id: Mapped[str] = mapped_column(
        ForeignKey("catalog_authorizations.id"), primary_key=True
    )
    analyst_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_analysts.id"), primary_key=True, index=True
    )

    analyst: Mapped[Analyst] = relationship(lazy="joined")


class AuthorizationDataset(Base):
    __tablename__ = "catalog_authorization_datasets"
    __table_args__ = (UniqueConstraint("authorization_id", "dataset_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    authorization_id: Mapped[str] = mapped_column(
        ForeignKey("catalog_authorizations.id"), index=True
    )
    dataset_id: Mapped[int] = mapped_column(ForeignKey("catalog_datasets.id"), index=True)
    access_mode: Mapped[str] = mapped_column(String(20))
    epsilon: Mapped[float] = mapped_column(Float)

    dataset: Mapped[Dataset] = relationship(lazy="joined")
    columns: Mapped[list["AuthorizationColumn"]] = relationship(
        cascade="all, delete-orphan", lazy="selectin"
    )


class AuthorizationColumn(Base):
    __tablename__ = "catalog_authorization_columns"

    scope_id: Mapped[int] = mapped_column(
        ForeignKey("catalog_authorization_datasets.id"), primary_key=True
    )
    column_name: Mapped[str] = mapped_column(String(63), primary_key=True)


class DataRequest(Base):
    __tablename__ = "catalog_data_requests"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    authorization_id: Mapped[str] = mapped_column(
        ForeignKey("catalog_authorizations.id"), index=True
    )
    requester_id: Mapped[int] = mapped_column(ForeignKey("catalog_analysts.id"))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("catalog_datasets.id"))
    columns: Mapped[list[str]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), index=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    access_mode: Mapped[str | None] = mapped_column(String(20))
    epsilon: Mapped[float | None] = mapped_column(Float)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    revision: Mapped[int] = mapped_column(Integer, default=1)

    requester: Mapped[Analyst] = relationship(lazy="joined")
    dataset: Mapped[Dataset] = relationship(lazy="joined")
