"""Sandbox sessions: opened in the ledger before a server starts, closed when it stops.

Terms:
- *session*: one run of one analyst's sandbox server, from the spawn the hub allowed to the stop
  of its container. Its ledger id (``session`` in every entry written here) is its key,
  ``sess-`` and 16 random hex digits, unique for ever. ``details.token_id`` is the hub id of the
  server's API token (``a42``), which is what the gateway writes as ``session`` in each
  ``query`` entry: the hub reuses token ids once a token is deleted (SQLite row ids), so a query
  belongs to the session of the same user and token id that was open when the query ran.
- *session book*: the table ``sandbox_sessions`` in the control database, the durable list of
  sessions not yet closed in the ledger. A close that could not be written (ledger down, hub
  killed) leaves its row open, and :meth:`SessionBook.reconcile` closes it later, so the ledger
  has no open-ended sessions.

Ledger entry types (persisted forever: renaming one needs a migration note for auditors):

- ``session.open``: written before the container is created; no entry, no server (fail closed);
- ``session.refused``: a spawn refused before it started (no authorization, not an analyst,
  image or mount not allowed), with the reason the user was shown (best effort: the refusal
  stands whether or not the ledger can record it);
- ``session.terminate``: the hub is about to stop a server because its authorization is no
  longer in force (suspended, revoked, expired) or the container lost its owner;
- ``session.close``: the server stopped, with the reason and how long it ran.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import sqlalchemy as sa

from ledger.exceptions import LedgerError

if TYPE_CHECKING:  # the ledger is opened when the book is, not when this module is imported
    from ledger.log import Log


class SessionEventType(StrEnum):
    """Ledger entry types written for sandbox sessions (persisted; do not rename)."""

    SESSION_OPEN = "session.open"
    SESSION_REFUSED = "session.refused"
    SESSION_TERMINATE = "session.terminate"
    SESSION_CLOSE = "session.close"


class CloseReason(StrEnum):
    """Why a session ended (the ``reason`` of ``session.close``; persisted, do not rename)."""

    STOPPED = "stopped"  # the hub stopped the server (user, admin, idle culler, watchdog)
    START_FAILED = "start_failed"  # the container never came up
    CONTAINER_GONE = "container_gone"  # found closed by reconciliation: the container is gone
    ORPHANED = "orphaned"  # a container the hub no longer runs, removed by reconciliation


class SessionLedgerError(Exception):
    """The session could not be written to the ledger; the action it guards must not happen."""


metadata = sa.MetaData()
sessions_table = sa.Table(
    "sandbox_sessions",
    metadata,
    sa.Column("key", sa.String(40), primary_key=True),
    sa.Column("token_id", sa.String(40), nullable=False),
    sa.Column("user_name", sa.String(255), nullable=False, index=True),
    sa.Column("server_name", sa.String(255), nullable=False, default=""),
    sa.Column("container", sa.String(255), nullable=True),
    sa.Column("image", sa.String(255), nullable=False),
    sa.Column("authorizations", sa.Text, nullable=False),
    sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True, index=True),
    sa.Column("close_reason", sa.String(40), nullable=True),
    sa.Column("open_index", sa.BigInteger, nullable=False),
    sa.Column("close_index", sa.BigInteger, nullable=True),
)


def format_at(at: datetime) -> str:
    """UTC RFC 3339 with milliseconds, the ledger's ``at`` format."""
    at = at.astimezone(timezone.utc)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _utc(at: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time stored here is UTC."""
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Session:
    """One row of the session book."""

    key: str
    token_id: str
    user: str
    server_name: str
    container: str | None
    image: str
    authorizations: tuple[str, ...]
    opened_at: datetime
    closed_at: datetime | None
    close_reason: str | None
    open_index: int
    close_index: int | None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    @classmethod
    def from_row(cls, row: Any) -> "Session":
        return cls(
            key=row.key, token_id=row.token_id, user=row.user_name, server_name=row.server_name,
            container=row.container, image=row.image,
            authorizations=tuple(json.loads(row.authorizations)),
            opened_at=_utc(row.opened_at),
            closed_at=_utc(row.closed_at) if row.closed_at else None,
            close_reason=row.close_reason, open_index=row.open_index,
            close_index=row.close_index,
        )


@dataclass(frozen=True)
class OpenRequest:
    """What the hub knows about a server it is about to start."""

    user: str
    token_id: str
    server_name: str
    image: str
    container: str
    authorizations: Sequence[str]
    details: dict[str, Any]


def _entry(kind: SessionEventType, user: str, at: datetime, session: str | None,
           authorizations: Sequence[str], details: dict[str, Any],
           actor: str | None = None, role: str = "analyst") -> dict[str, Any]:
    entry: dict[str, Any] = {
        "v": 1, "type": str(kind), "at": format_at(at), "actor": actor or user, "role": role,
    }
    if session:
        entry["session"] = session
    if len(authorizations) == 1:
        entry["authorization"] = authorizations[0]
    entry["details"] = {"user": user, "authorizations": list(authorizations), **details}
    return entry


class SessionBook:
    """Opens and closes sessions, ledger first; thread-safe (the hub calls it from a pool)."""

    def __init__(self, database_url: str, log: "Log", clock=lambda: datetime.now(timezone.utc)):
        self.engine = sa.create_engine(database_url, future=True)
        metadata.create_all(self.engine)
        self.log = log
        self.clock = clock
        self._lock = threading.Lock()

    def dispose(self) -> None:
        """Release the database connections (the book's own; the ledger is the caller's)."""
        self.engine.dispose()

    # --- ledger ------------------------------------------------------------------------------

    def _append(self, entry: dict[str, Any]) -> int:
        try:
            return self.log.append(entry)
        except (LedgerError, OSError) as e:
            raise SessionLedgerError(f"the ledger cannot record {entry['type']}: {e}") from e

    def record_refusal(self, user: str, reason: str, code: str,
                       authorizations: Sequence[str] = (), **details: Any) -> int | None:
        """Best effort: a refused spawn is refused whether or not this entry can be written."""
        entry = _entry(SessionEventType.SESSION_REFUSED, user, self.clock(), None,
                       authorizations, {"code": code, "reason": reason, **details})
        try:
            return self._append(entry)
        except SessionLedgerError:
            return None

    # --- open / close ----------------------------------------------------------------------

    def open(self, req: OpenRequest) -> Session:
        """Write ``session.open``, then the book row; raises SessionLedgerError if unwritable."""
        at = self.clock()
        key = f"sess-{secrets.token_hex(8)}"
        auths = tuple(req.authorizations)
        details = {"token_id": req.token_id, "server_name": req.server_name,
                   "image": req.image, "container": req.container, **req.details}
        index = self._append(_entry(SessionEventType.SESSION_OPEN, req.user, at, key,
                                    auths, details))
        with self.engine.begin() as conn:
            conn.execute(sessions_table.insert().values(
                key=key, token_id=req.token_id, user_name=req.user, server_name=req.server_name,
                container=req.container, image=req.image, authorizations=json.dumps(auths),
                opened_at=at, open_index=index,
            ))
        return self.get(key)

    def get(self, key: str) -> Session:
        found = self.find(key)
        if found is None:
            raise KeyError(f"no session {key!r} in the session book")
        return found

    def find(self, key: str) -> Session | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(sessions_table)
                               .where(sessions_table.c.key == key)).one_or_none()
        return Session.from_row(row) if row is not None else None

    def open_sessions(self, user: str | None = None) -> list[Session]:
        query = sa.select(sessions_table).where(sessions_table.c.closed_at.is_(None))
        if user is not None:
            query = query.where(sessions_table.c.user_name == user)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(sessions_table.c.opened_at)).all()
        return [Session.from_row(r) for r in rows]

    def terminate(self, session: Session, reason: str, actor: str, **details: Any) -> int:
        """Write ``session.terminate`` before a stop the platform orders (not the user)."""
        entry = _entry(SessionEventType.SESSION_TERMINATE, session.user, self.clock(),
                       session.key, session.authorizations,
                       {"token_id": session.token_id, "reason": reason, **details},
                       actor=actor, role="service")
        return self._append(entry)

    def close(self, key: str, reason: CloseReason | str, actor: str | None = None,
              role: str = "analyst", **details: Any) -> Session | None:
        """Write ``session.close`` and mark the row; idempotent (None if already closed).

        Raises SessionLedgerError when the ledger cannot be written: the row then stays open
        and a later reconciliation closes it.
        """
        with self._lock:
            current = self.get(key)
            if not current.is_open:
                return None
            at = self.clock()
            seconds = max(0.0, (at - current.opened_at).total_seconds())
            entry = _entry(SessionEventType.SESSION_CLOSE, current.user, at, key,
                           current.authorizations,
                           {"token_id": current.token_id, "reason": str(reason),
                            "duration_s": round(seconds, 3),
                            "open_index": current.open_index, **details},
                           actor=actor, role=role if actor else "analyst")
            index = self._append(entry)
            with self.engine.begin() as conn:
                conn.execute(
                    sessions_table.update()
                    .where(sessions_table.c.key == key, sessions_table.c.closed_at.is_(None))
                    .values(closed_at=at, close_reason=str(reason), close_index=index)
                )
            return self.get(key)

    # --- reconciliation ----------------------------------------------------------------------

    def reconcile(self, running_containers: Iterable[str], grace_seconds: float = 120.0,
                  actor: str = "shuyu-watchdog") -> list[Session]:
        """Close every open session whose container no longer runs.

        `running_containers` are the names of the sandbox containers running now. Sessions
        younger than `grace_seconds` are left alone (their container may still be starting).
        Returns the sessions closed; a ledger failure stops the pass (the rest wait for the next).
        """
        running = set(running_containers)
        now = self.clock()
        closed = []
        for s in self.open_sessions():
            if (now - s.opened_at).total_seconds() < grace_seconds or s.container in running:
                continue
            done = self.close(s.key, CloseReason.CONTAINER_GONE, actor=actor, role="service",
                              found_by="reconciliation")
            if done is not None:
                closed.append(done)
        return closed
