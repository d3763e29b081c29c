"""Storage of the catalog: the ``CatalogStore`` protocol and its SQLAlchemy implementation.

The service reads immutable records and writes through one method, ``apply(records, events)``,
which makes a change and its ledger entries one unit:

1. in one database transaction, insert or update the records (optimistic concurrency: an update
   must carry the revision it read, else ``ConcurrentChange``), then flush so that constraint
   violations surface before anything is logged;
2. append the events to the ledger (one batch, consecutive indices); if that fails the
   transaction is rolled back and ``NotRecorded`` is raised: the change is not made;
3. commit. If the commit itself fails after the ledger recorded the change, a
   ``catalog.change_not_applied`` entry is appended naming the entries that did not take effect.

SQLite writers take the database lock at BEGIN (``BEGIN IMMEDIATE``) so that writes serialize;
PostgreSQL row locks and the revision check do the same.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol, Sequence

from sqlalchemy import Connection, Engine, create_engine, event, select, text, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from hub.catalog import mapping, reads
from hub.catalog.readcache import UntilChanged, changes_for
from hub.catalog.events import AuditEvent, AuditEventType
from hub.catalog.exceptions import (
    AlreadyExists,
    CatalogError,
    ConcurrentChange,
    NotFound,
    NotRecorded,
)
from hub.catalog.models import (
    Analyst,
    Authorization,
    Base,
    DataRequest,
    Dataset,
    Operator,
    Provider,
)
from hub.catalog.records import (
    AnalystRecord,
    AuthorizationRecord,
    DataRequestRecord,
    DatasetRecord,
    OperatorRecord,
    ProviderRecord,
)
from hub.catalog.states import AuthorizationStatus, DataRequestStatus
from ledger.exceptions import LedgerError
from ledger.sqlstore import sqlite_enable_wal

SCHEMA_LOCK = 0x5348_5559_4341_5441  # "SHUYCATA": serializes table creation on PostgreSQL
Record = (
    ProviderRecord
    | DatasetRecord
    | OperatorRecord
    | AnalystRecord
    | AuthorizationRecord
    | DataRequestRecord
)


class LedgerSink(Protocol):
    """Where audit entries go: ``ledger.log.Log`` (or its ``Appender``) satisfies it."""

    def append_many(self, events: Iterable[dict[str, Any]]) -> list[int]: ...


class CatalogStore(Protocol):
    """Everything the catalog service reads and writes."""

    def get_provider(self, name: str) -> ProviderRecord | None: ...
    def get_dataset(self, name: str) -> DatasetRecord | None: ...
    def list_datasets(self) -> list[DatasetRecord]: ...
    def get_operator(self, name: str) -> OperatorRecord | None: ...
    def operator_by_credit_code(self, code: str) -> OperatorRecord | None: ...
    def list_operators(self) -> list[OperatorRecord]: ...
    def get_analyst(self, user_name: str) -> AnalystRecord | None: ...
    def list_analysts(self, operator: str | None = None) -> list[AnalystRecord]: ...
    def get_authorization(self, auth_id: str) -> AuthorizationRecord | None: ...
    def list_authorizations(
        self,
        status: AuthorizationStatus | None = None,
        operator: str | None = None,
        analyst: str | None = None,
        dataset: str | None = None,
    ) -> list[AuthorizationRecord]: ...
    def query_context(
        self, user: str, dataset: str
    ) -> tuple[DatasetRecord | None, list[AuthorizationRecord]]: ...
    def get_data_request(self, request_id: str) -> DataRequestRecord | None: ...
    def list_data_requests(
        self, status: DataRequestStatus | None = None, authorization: str | None = None
    ) -> list[DataRequestRecord]: ...
    def apply(self, records: Sequence[Record], events: Sequence[AuditEvent]) -> list[int]: ...


def make_engines(url: str) -> tuple[Engine, Engine]:
    """(writer, reader) engines. SQLite: WAL, a busy timeout, BEGIN IMMEDIATE writers.
    PostgreSQL: readers in REPEATABLE READ, so the queries of one read share a snapshot."""
    if not url.startswith("sqlite"):
        writer = create_engine(url, pool_pre_ping=True)
        # Reads of one check must see one snapshot: REPEATABLE READ on PostgreSQL.
        reader = create_engine(url, pool_pre_ping=True, isolation_level="REPEATABLE READ")
        return writer, reader
    path = url.split("///", 1)[1] if "///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    writer = create_engine(url, connect_args={"timeout": 30})
    reader = create_engine(url, connect_args={"timeout": 30})
    for engine, begin in ((writer, "BEGIN IMMEDIATE"), (reader, "BEGIN")):
        _sqlite_setup(engine, begin)
    return writer, reader


def _sqlite_setup(engine: Engine, begin: str) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # SQLAlchemy's BEGIN below, not pysqlite's
        sqlite_enable_wal(dbapi_conn, timeout=30)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql(begin)


class SqlLedgeredStore:
    """What every ledger-first SQL store shares: writer/reader engines, sessions, tables.

    Subclasses set `metadata` (their tables) and `schema_lock` (the PostgreSQL advisory lock key
    that serializes table creation).
    """

    metadata: Any
    schema_lock: int

    def __init__(self, url: str, ledger: Any):
        self.url = url
        self.ledger = ledger
        self.writer, self.reader = make_engines(url)
        self._read = sessionmaker(bind=self.reader, expire_on_commit=False)
        self._write = sessionmaker(bind=self.writer, expire_on_commit=False, autoflush=False)

    def create(self) -> None:
        """Create the tables if missing (idempotent; concurrent callers take turns)."""
        with self.writer.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": self.schema_lock})
            self.metadata.create_all(conn)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        """A read session: one transaction (one snapshot on PostgreSQL), nothing written."""
        with self._read() as session, session.begin():
            yield session

    def close(self) -> None:
        self.writer.dispose()
        if self.reader is not self.writer:
            self.reader.dispose()


class SqlAlchemyCatalogStore(SqlLedgeredStore):
    """The catalog in a SQL database, writing each change together with its ledger entries.

    With ``remember_checks`` (the gateway's), ``query_context`` answers are remembered until
    anything is committed to the database (``readcache``; SQLite only, else a no-op)."""

    metadata = Base.metadata
    schema_lock = SCHEMA_LOCK
    ledger: "LedgerSink"

    def __init__(self, url: str, ledger: Any, remember_checks: bool = False):
        super().__init__(url, ledger)
        self._changes = changes_for(url) if remember_checks else None
        self._contexts = (UntilChanged(self._read_query_context, self._changes)
                          if self._changes is not None else None)

    def close(self) -> None:
        if self._changes is not None:
            self._changes.close()
        super().close()

    # --- reads ---------------------------------------------------------------------------

    def get_provider(self, name: str) -> ProviderRecord | None:
        with self._session() as s:
            row = s.scalar(select(Provider).where(Provider.name == name))
            return mapping.provider_record(row) if row else None

    @contextmanager
    def _snapshot(self) -> Iterator[Connection]:
        """One read transaction for Core queries, all seeing the same snapshot."""
        with self.reader.connect() as conn, conn.begin():
            yield conn

    def get_dataset(self, name: str) -> DatasetRecord | None:
        with self._snapshot() as conn:
            return reads.dataset(conn, name)

    def list_datasets(self) -> list[DatasetRecord]:
        with self._snapshot() as conn:
            return reads.datasets(conn)

    def get_operator(self, name: str) -> OperatorRecord | None:
        with self._session() as s:
            row = s.scalar(select(Operator).where(Operator.name == name))
            return mapping.operator_record(row) if row else None

    def operator_by_credit_code(self, code: str) -> OperatorRecord | None:
        with self._session() as s:
            row = s.scalar(select(Operator).where(Operator.credit_code == code))
            return mapping.operator_record(row) if row else None

    def list_operators(self) -> list[OperatorRecord]:
        with self._session() as s:
            rows = s.scalars(select(Operator).order_by(Operator.name))
            return [mapping.operator_record(r) for r in rows]

    def get_analyst(self, user_name: str) -> AnalystRecord | None:
        with self._session() as s:
            row = s.scalar(select(Analyst).where(Analyst.user_name == user_name))
            return mapping.analyst_record(row) if row else None

    def list_analysts(self, operator: str | None = None) -> list[AnalystRecord]:
        with self._session() as s:
            q = select(Analyst).join(Analyst.operator).order_by(Analyst.user_name)
            if operator is not None:
                q = q.where(Operator.name == operator)
            return [mapping.analyst_record(r) for r in s.scalars(q)]

    def get_authorization(self, auth_id: str) -> AuthorizationRecord | None:
        with self._snapshot() as conn:
            found = reads.authorizations(conn, auth_id=auth_id)
            return found[0] if found else None

    def list_authorizations(
        self,
        status: AuthorizationStatus | None = None,
        operator: str | None = None,
        analyst: str | None = None,
        dataset: str | None = None,
    ) -> list[AuthorizationRecord]:
        with self._snapshot() as conn:
            return reads.authorizations(
                conn, status=status, operator=operator, analyst=analyst, dataset=dataset
            )

    def query_context(
        self, user: str, dataset: str
    ) -> tuple[DatasetRecord | None, list[AuthorizationRecord]]:
        """The dataset and the agreements naming both `user` and it, from one snapshot.

        The agreements are partial views (``partial=True``): their scope holds only `dataset`
        and their analysts only `user`.
        """
        if self._contexts is not None:
            record, candidates = self._contexts.get(user, dataset)
            return record, list(candidates)  # the records are frozen; the list is the caller's
        return self._read_query_context(user, dataset)

    def _read_query_context(self, user: str, dataset: str
                            ) -> tuple[DatasetRecord | None, list[AuthorizationRecord]]:
        with self._snapshot() as conn:
            return reads.query_context(conn, user, dataset)

    def get_data_request(self, request_id: str) -> DataRequestRecord | None:
        with self._session() as s:
            row = s.get(DataRequest, request_id)
            return mapping.data_request_record(row) if row else None

    def list_data_requests(
        self, status: DataRequestStatus | None = None, authorization: str | None = None
    ) -> list[DataRequestRecord]:
        with self._session() as s:
            q = select(DataRequest).order_by(DataRequest.requested_at, DataRequest.id)
            if status is not None:
                q = q.where(DataRequest.status == str(status))
            if authorization is not None:
                q = q.where(DataRequest.authorization_id == authorization)
            return [mapping.data_request_record(r) for r in s.scalars(q)]

    # --- the one write path ----------------------------------------------------------------

    def apply(self, records: Sequence[Record], events: Sequence[AuditEvent]) -> list[int]:
        """Write `records` and append `events` to the ledger as one unit (see module doc)."""
        if not events:
            raise CatalogError("a change without a ledger event is not allowed")
        entries = [e.to_entry() for e in events]
        with self._write() as session:
            session.begin()
            try:
                for record in records:
                    self._write_record(session, record)
                    session.flush()
            except IntegrityError as e:
                session.rollback()
                raise ConcurrentChange(
                    f"the change conflicts with one made at the same time ({_first_line(e)}); "
                    "read again and retry"
                ) from None
            except BaseException:
                session.rollback()
                raise
            try:
                indices = self.ledger.append_many(entries)
            except BaseException as e:
                session.rollback()
                if isinstance(e, LedgerError):
                    raise NotRecorded(
                        f"the ledger could not record {entries[0]['type']}, so the change was not "
                        f"made: {e}"
                    ) from e
                raise
            try:
                session.commit()
            except SQLAlchemyError as e:
                session.rollback()
                self._record_not_applied(events, indices, e)
                raise CatalogError(
                    f"the database did not commit the change ({_first_line(e)}); ledger "
                    f"entries {indices} were recorded and a {AuditEventType.CHANGE_NOT_APPLIED}"
                    " entry now says that they did not take effect"
                ) from e
        return indices

    def _record_not_applied(
        self, events: Sequence[AuditEvent], indices: list[int], error: Exception
    ) -> None:
        first = events[0]
        note = AuditEvent(
            AuditEventType.CHANGE_NOT_APPLIED,
            first.actor,
            first.at,
            operator=first.operator,
            authorization=first.authorization,
            dataset=first.dataset,
            details={
                "entries": indices,
                "types": [str(e.type) for e in events],
                "error": _first_line(error),
            },
        )
        try:
            self.ledger.append_many([note.to_entry()])
        except LedgerError:
            pass  # the caller still gets the commit error; the ledger is down as well

    def _write_record(self, session: Session, record: Record) -> None:
        writer = {
            ProviderRecord: self._write_provider,
            DatasetRecord: self._write_dataset,
            OperatorRecord: self._write_operator,
            AnalystRecord: self._write_analyst,
            AuthorizationRecord: self._write_authorization,
            DataRequestRecord: self._write_data_request,
        }[type(record)]
        writer(session, record)

    def _claim(self, session: Session, model: type, key_col: Any, key: Any, record: Record,
               what: str) -> Any:
        """The row for `record`, new or existing, after the optimistic revision check."""
        if record.revision == 0:
            if session.scalar(select(model).where(key_col == key)) is not None:
                raise AlreadyExists(f"{what} already exists")
            row = model()
            row.revision = 1
            session.add(row)
            return row
        bumped = session.execute(
            update(model)
            .where(key_col == key, model.revision == record.revision)
            .values(revision=record.revision + 1)
            .execution_options(synchronize_session=False)
        )
        if bumped.rowcount != 1:
            if session.scalar(select(model).where(key_col == key)) is None:
                raise NotFound(f"{what} does not exist")
            raise ConcurrentChange(f"{what} was changed by someone else; read it again and retry")
        return session.scalar(
            select(model).where(key_col == key).execution_options(populate_existing=True)
        )

    def _write_provider(self, session: Session, rec: ProviderRecord) -> None:
        row = self._claim(session, Provider, Provider.name, rec.name, rec,
                          f"provider {rec.name!r}")
        mapping.fill_provider(row, rec)

    def _write_dataset(self, session: Session, rec: DatasetRecord) -> None:
        row = self._claim(session, Dataset, Dataset.name, rec.name, rec, f"dataset {rec.name!r}")
        provider = _require(session, Provider, Provider.name, rec.provider, "provider")
        mapping.fill_dataset(row, rec, provider)

    def _write_operator(self, session: Session, rec: OperatorRecord) -> None:
        row = self._claim(session, Operator, Operator.name, rec.name, rec,
                          f"operator {rec.name!r}")
        mapping.fill_operator(row, rec)

    def _write_analyst(self, session: Session, rec: AnalystRecord) -> None:
        row = self._claim(session, Analyst, Analyst.user_name, rec.user_name, rec,
                          f"analyst {rec.user_name!r}")
        operator = _require(session, Operator, Operator.name, rec.operator, "operator")
        mapping.fill_analyst(row, rec, operator)

    def _write_authorization(self, session: Session, rec: AuthorizationRecord) -> None:
        if rec.partial:
            raise CatalogError(f"refusing to store a partial view of authorization {rec.id}")
        row = self._claim(session, Authorization, Authorization.id, rec.id, rec,
                          f"authorization {rec.id}")
        operator = _require(session, Operator, Operator.name, rec.operator, "operator")
        analysts = {
            name: _require(session, Analyst, Analyst.user_name, name, "analyst")
            for name in rec.analysts
        }
        datasets = {
            s.dataset: _require(session, Dataset, Dataset.name, s.dataset, "dataset")
            for s in rec.scope
        }
        mapping.fill_authorization(row, rec, operator, analysts, datasets)

    def _write_data_request(self, session: Session, rec: DataRequestRecord) -> None:
        row = self._claim(session, DataRequest, DataRequest.id, rec.id, rec,
                          f"data request {rec.id}")
        requester = _require(session, Analyst, Analyst.user_name, rec.requester, "analyst")
        dataset = _require(session, Dataset, Dataset.name, rec.dataset, "dataset")
        mapping.fill_data_request(row, rec, requester, dataset)


def _require(session: Session, model: type, key_col: Any, key: str, what: str) -> Any:
    row = session.scalar(select(model).where(key_col == key))
    if row is None:
        raise NotFound(f"{what} {key!r} does not exist")
    return row


def _first_line(error: Exception) -> str:
    orig = getattr(error, "orig", None)
    text = str(orig if orig is not None else error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__
