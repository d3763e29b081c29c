"""Storage of release requests: the ``ReviewStore`` protocol and its SQLAlchemy implementation.

The service reads immutable records (``records.py``) and writes through one method,
``apply(request, rows, events)``, which makes a change and its ledger entries one unit:

1. in one database transaction, write the request (optimistic concurrency: an update must carry
   the revision it read, else ``ConcurrentChange``) and insert the new rows (artifacts, check
   results, votes, comments, the package), then flush, so constraint violations (a second vote
   of one reviewer in one round) surface before anything is logged;
2. append the events to the ledger (one batch, consecutive indices); rows linked to an event get
   its index; if the ledger fails the transaction is rolled back and ``NotRecorded`` raised:
   the change is not made;
3. commit. If the commit itself fails after the ledger recorded the change, a
   ``release.change_not_applied`` entry is appended naming the entries that did not take effect.

``record(events)`` appends events that change no row (views, downloads) and raises
``NotRecorded`` when the ledger cannot take them: callers show or send nothing then.
Tables live in the control database (SQLite by default, PostgreSQL by URL) and are created on
first use (``create()``, idempotent, concurrent callers take turns on PostgreSQL).
"""

from __future__ import annotations

from typing import Any, Iterable, Protocol, Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from hub.catalog.storage import SqlLedgeredStore
from ledger.exceptions import LedgerError
from release_review.events import AuditEvent
from release_review.exceptions import ConcurrentChange, NotRecorded, ReleaseError
from release_review.models import (
    ArtifactRow,
    Base,
    CheckRow,
    CommentRow,
    PackageRow,
    RequestRow,
    VoteRow,
)
from release_review.records import (
    ArtifactRecord,
    CheckRecord,
    CommentRecord,
    PackageRecord,
    ReleaseRequest,
    RequestKind,
    Row,
    VoteRecord,
)
from release_review.states import AuditEventType, Decision, ReleaseStatus

SCHEMA_LOCK = 0x5348_5559_5245_5651  # "SHUYREVQ": serializes table creation on PostgreSQL


class LedgerSink(Protocol):
    """Where audit entries go: ``ledger.log.Log`` (or its ``Appender``) satisfies it."""

    def append_many(self, events: Iterable[dict[str, Any]]) -> list[int]: ...


class ReviewStore(Protocol):
    """Everything the review service reads and writes."""

    def create(self) -> None: ...
    def get_request(self, request_id: str) -> ReleaseRequest | None: ...
    def list_requests(self, statuses: Sequence[ReleaseStatus] | None = None,
                      author: str | None = None,
                      authorization: str | None = None) -> list[ReleaseRequest]: ...
    def artifacts(self, request_id: str, round: int) -> list[ArtifactRecord]: ...
    def check_results(self, request_id: str, round: int) -> list[CheckRecord]: ...
    def votes(self, request_id: str, round: int | None = None) -> list[VoteRecord]: ...
    def comments(self, request_id: str) -> list[CommentRecord]: ...
    def package(self, request_id: str) -> PackageRecord | None: ...
    def apply(self, request: ReleaseRequest | None, rows: Sequence[Row],
              events: Sequence[AuditEvent],
              links: dict[int, int] | None = None) -> list[int]: ...
    def record(self, events: Sequence[AuditEvent]) -> list[int]: ...
    def close(self) -> None: ...


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__


class SqlAlchemyReviewStore(SqlLedgeredStore):
    """Release requests in a SQL database, each change written with its ledger entries."""

    metadata = Base.metadata
    schema_lock = SCHEMA_LOCK
    ledger: "LedgerSink"

    # --- reads ---------------------------------------------------------------------------

    def get_request(self, request_id: str) -> ReleaseRequest | None:
        with self._session() as s:
            row = s.get(RequestRow, request_id)
            return _request(row) if row else None

    def list_requests(self, statuses: Sequence[ReleaseStatus] | None = None,
                      author: str | None = None,
                      authorization: str | None = None) -> list[ReleaseRequest]:
        q = select(RequestRow).order_by(RequestRow.created_at, RequestRow.id)
        if statuses is not None:
            q = q.where(RequestRow.status.in_([str(s) for s in statuses]))
        if author is not None:
            q = q.where(RequestRow.author == author)
        if authorization is not None:
            q = q.where(RequestRow.authorization_id == authorization)
        with self._session() as s:
            return [_request(r) for r in s.scalars(q)]

    def artifacts(self, request_id: str, round: int) -> list[ArtifactRecord]:
        q = (select(ArtifactRow).where(ArtifactRow.request_id == request_id,
                                       ArtifactRow.round == round).order_by(ArtifactRow.id))
        with self._session() as s:
            return [ArtifactRecord(r.request_id, r.round, r.name, r.sha256, r.size,
                                   r.media_type, r.released, r.released_sha256, r.released_size)
                    for r in s.scalars(q)]

    def check_results(self, request_id: str, round: int) -> list[CheckRecord]:
        q = (select(CheckRow).where(CheckRow.request_id == request_id, CheckRow.round == round)
             .order_by(CheckRow.position))
        with self._session() as s:
            return [CheckRecord(r.request_id, r.round, r.position, r.check, r.verdict, r.reason,
                                r.artifact, dict(r.evidence or {}), r.suggestion)
                    for r in s.scalars(q)]

    def votes(self, request_id: str, round: int | None = None) -> list[VoteRecord]:
        q = select(VoteRow).where(VoteRow.request_id == request_id).order_by(VoteRow.id)
        if round is not None:
            q = q.where(VoteRow.round == round)
        with self._session() as s:
            return [VoteRecord(r.request_id, r.round, r.reviewer, Decision(r.decision),
                               r.comment, r.at, r.ledger_index) for r in s.scalars(q)]

    def comments(self, request_id: str) -> list[CommentRecord]:
        q = (select(CommentRow).where(CommentRow.request_id == request_id)
             .order_by(CommentRow.id))
        with self._session() as s:
            return [CommentRecord(r.request_id, r.round, r.author, r.role, r.text, r.at,
                                  r.ledger_index) for r in s.scalars(q)]

    def package(self, request_id: str) -> PackageRecord | None:
        with self._session() as s:
            r = s.get(PackageRow, request_id)
            return None if r is None else PackageRecord(
                r.request_id, r.released_at, r.ledger_index, r.provenance_sha256,
                r.note_sha256, r.zip_sha256, r.zip_size)

    # --- the one write path ----------------------------------------------------------------

    def apply(self, request: ReleaseRequest | None, rows: Sequence[Row],
              events: Sequence[AuditEvent], links: dict[int, int] | None = None) -> list[int]:
        """Write `request` and `rows` and append `events` as one unit (see module doc).

        `links` maps a row's position in `rows` to the position of the event whose ledger
        index the row records (a vote, a comment, the package's ``release.released``).
        """
        if not events:
            raise ReleaseError("a change without a ledger event is not allowed")
        entries = [e.to_entry() for e in events]
        with self._write() as session:
            session.begin()
            try:
                if request is not None:
                    self._write_request(session, request)
                    session.flush()  # the request row before rows that refer to it
                orm_rows = [self._write_row(session, row) for row in rows]
                session.flush()
            except IntegrityError as e:
                session.rollback()
                raise ConcurrentChange(
                    f"the change conflicts with one made at the same time ({_first_line(e)}); "
                    "read the request again") from None
            except BaseException:
                session.rollback()
                raise
            try:
                indices = self.ledger.append_many(entries)
            except BaseException as e:
                session.rollback()
                if isinstance(e, LedgerError):
                    raise NotRecorded(
                        f"the ledger could not record {entries[0]['type']}, so nothing was "
                        f"changed: {e}") from e
                raise
            for row_pos, event_pos in (links or {}).items():
                orm_rows[row_pos].ledger_index = indices[event_pos]
            try:
                session.commit()
            except SQLAlchemyError as e:
                session.rollback()
                self._record_not_applied(events, indices, e)
                raise ReleaseError(
                    f"the database did not commit the change ({_first_line(e)}); ledger entries "
                    f"{indices} were recorded and a {AuditEventType.CHANGE_NOT_APPLIED} entry "
                    "now says that they did not take effect") from e
        return indices

    def record(self, events: Sequence[AuditEvent]) -> list[int]:
        entries = [e.to_entry() for e in events]
        try:
            return self.ledger.append_many(entries)
        except LedgerError as e:
            raise NotRecorded(
                f"the ledger could not record {entries[0]['type']}, so it was refused: {e}"
            ) from e

    def _record_not_applied(self, events: Sequence[AuditEvent], indices: list[int],
                            error: Exception) -> None:
        first = events[0]
        note = AuditEvent(AuditEventType.CHANGE_NOT_APPLIED, first.actor, first.at,
                          first.release, first.authorization, first.dataset,
                          {"entries": indices, "types": [str(e.type) for e in events],
                           "error": _first_line(error)})
        try:
            self.ledger.append_many([note.to_entry()])
        except LedgerError:
            pass  # the caller still gets the commit error; the ledger is down as well

    def _write_request(self, session: Session, rec: ReleaseRequest) -> None:
        row = session.get(RequestRow, rec.id, with_for_update=True)
        if row is None:
            if rec.revision != 0:
                raise ConcurrentChange(f"request {rec.id} no longer exists")
            row = RequestRow(id=rec.id, revision=0)
            session.add(row)
        elif row.revision != rec.revision:
            raise ConcurrentChange(
                f"request {rec.id} was changed by someone else meanwhile (now {row.status}); "
                "read it again")
        row.author, row.authorization_id, row.operator = rec.author, rec.authorization, rec.operator
        row.scenario, row.title, row.purpose, row.context = (rec.scenario, rec.title, rec.purpose,
                                                             rec.context)
        row.kind, row.status, row.round = str(rec.kind), str(rec.status), rec.round
        row.grade, row.required_approvals = rec.grade, rec.required_approvals
        row.sources, row.queries, row.dp = list(rec.sources), list(rec.queries), rec.dp
        row.created_at, row.updated_at = rec.created_at, rec.updated_at
        row.submitted_at, row.checked_at, row.decided_at = (rec.submitted_at, rec.checked_at,
                                                            rec.decided_at)
        row.revision = rec.revision + 1

    def _write_row(self, session: Session, row: Row) -> Any:
        if isinstance(row, ArtifactRecord):  # new, or the same file with what a check derived
            orm: Any = session.scalars(select(ArtifactRow).where(
                ArtifactRow.request_id == row.request_id, ArtifactRow.round == row.round,
                ArtifactRow.name == row.name)).one_or_none()
            if orm is None:
                orm = ArtifactRow(request_id=row.request_id, round=row.round, name=row.name,
                                  sha256=row.sha256, size=row.size, media_type=row.media_type,
                                  released=row.released)
            elif orm.sha256 != row.sha256:
                raise ConcurrentChange(f"file {row.name} of request {row.request_id} round "
                                       f"{row.round} is already stored with other content")
            orm.released_sha256, orm.released_size = row.released_sha256, row.released_size
        elif isinstance(row, CheckRecord):
            orm = CheckRow(request_id=row.request_id, round=row.round, position=row.position,
                           check=row.check, artifact=row.artifact, verdict=row.verdict,
                           reason=row.reason, evidence=row.evidence, suggestion=row.suggestion)
        elif isinstance(row, VoteRecord):
            orm = VoteRow(request_id=row.request_id, round=row.round, reviewer=row.reviewer,
                          decision=str(row.decision), comment=row.comment, at=row.at,
                          ledger_index=row.ledger_index)
        elif isinstance(row, CommentRecord):
            orm = CommentRow(request_id=row.request_id, round=row.round, author=row.author,
                             role=row.role, text=row.text, at=row.at,
                             ledger_index=row.ledger_index)
        elif isinstance(row, PackageRecord):
            orm = session.get(PackageRow, row.request_id) or PackageRow(request_id=row.request_id)
            orm.released_at, orm.ledger_index = row.released_at, row.ledger_index
            orm.provenance_sha256, orm.note_sha256 = row.provenance_sha256, row.note_sha256
            orm.zip_sha256, orm.zip_size = row.zip_sha256, row.zip_size
        else:
            raise TypeError(f"cannot store {type(row).__name__}")
        session.add(orm)
        return orm


def _request(r: RequestRow) -> ReleaseRequest:
    return ReleaseRequest(
        id=r.id, author=r.author, authorization=r.authorization_id, operator=r.operator,
        scenario=r.scenario, title=r.title, purpose=r.purpose, context=r.context,
        kind=RequestKind(r.kind), status=ReleaseStatus(r.status), round=r.round, grade=r.grade,
        required_approvals=r.required_approvals, sources=tuple(r.sources or ()),
        queries=tuple(r.queries or ()), created_at=r.created_at, updated_at=r.updated_at,
        dp=r.dp, submitted_at=r.submitted_at, checked_at=r.checked_at,
        decided_at=r.decided_at, revision=r.revision)
