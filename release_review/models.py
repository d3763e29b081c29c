"""SQLAlchemy tables of the review workflow, in the control database beside the catalog.

Only ``storage.py`` uses these classes; the rest of the workflow sees immutable records
(``records.py``). Tables are prefixed ``release_``; JSON columns hold the request's sources and
DP details and each check's evidence. Times are aware UTC (``hub.catalog.models.UTCDateTime``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from hub.catalog.models import UTCDateTime


class Base(DeclarativeBase):
    pass


class RequestRow(Base):
    __tablename__ = "release_requests"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    author: Mapped[str] = mapped_column(String(200), index=True)
    authorization_id: Mapped[str] = mapped_column(String(40), index=True)
    operator: Mapped[str] = mapped_column(String(200))
    scenario: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(String(300))
    purpose: Mapped[str] = mapped_column(Text)
    context: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    round: Mapped[int] = mapped_column(Integer)
    grade: Mapped[str] = mapped_column(String(16))
    required_approvals: Mapped[int] = mapped_column(Integer)
    sources: Mapped[list] = mapped_column(JSON)
    queries: Mapped[list] = mapped_column(JSON)
    dp: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)


class ArtifactRow(Base):
    __tablename__ = "release_artifacts"
    __table_args__ = (UniqueConstraint("request_id", "round", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("release_requests.id"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(100))
    released: Mapped[bool] = mapped_column(Boolean)
    released_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    released_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class CheckRow(Base):
    __tablename__ = "release_check_results"
    __table_args__ = (UniqueConstraint("request_id", "round", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("release_requests.id"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    check: Mapped[str] = mapped_column(String(63))
    artifact: Mapped[str | None] = mapped_column(String(255), nullable=True)
    verdict: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict] = mapped_column(JSON)
    suggestion: Mapped[str | None] = mapped_column(Text, nullable=True)


class VoteRow(Base):
    __tablename__ = "release_votes"
    # one vote per reviewer per round: a second vote by the same reviewer cannot be stored
    __table_args__ = (UniqueConstraint("request_id", "round", "reviewer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("release_requests.id"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    reviewer: Mapped[str] = mapped_column(String(200))
    decision: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    ledger_index: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class CommentRow(Base):
    __tablename__ = "release_comments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("release_requests.id"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    ledger_index: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class PackageRow(Base):
    __tablename__ = "release_packages"

    request_id: Mapped[str] = mapped_column(ForeignKey("release_requests.id"), primary_key=True)
    released_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ledger_index: Mapped[int] = mapped_column(BigInteger)
    provenance_sha256: Mapped[str] = mapped_column(String(64))
    note_sha256: Mapped[str] = mapped_column(String(64))
    zip_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    zip_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
