"""The console's own state in the control database: what became of ended authorizations.

One table, ``console_endings``: for each authorization whose end the console processed
(``ending.py``), whether its analysts' working volumes are destroyed (``done``) or the
destruction must be tried again (``pending``: Docker or the hub was unreachable, a volume could
not be removed), how many attempts were made, the last report and the index of the ledger
entry that recorded it. The ledger is the record; this table only lets the console know what is
left to do without reading the whole ledger.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    select,
)
from sqlalchemy.engine import Engine

metadata = MetaData()
ENDINGS = Table(
    "console_endings", metadata,
    Column("authorization_id", String(40), primary_key=True),
    Column("status", String(10), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("report", JSON, nullable=False),
    Column("ledger_index", Integer),
)


@dataclass(frozen=True)
class Ending:
    authorization: str
    status: str  # "done" or "pending"
    attempts: int
    updated_at: datetime
    report: dict[str, Any]
    ledger_index: int | None

    @property
    def done(self) -> bool:
        return self.status == "done"


class EndingStore(Protocol):
    def get(self, auth_id: str) -> Ending | None: ...
    def all(self) -> list[Ending]: ...
    def save(self, ending: Ending) -> None: ...


class SqlEndingStore:
    def __init__(self, url: str):
        kw: dict[str, Any] = {"connect_args": {"timeout": 30}} if url.startswith("sqlite") else {}
        self.engine: Engine = create_engine(url, **kw)
        metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def get(self, auth_id: str) -> Ending | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(ENDINGS).where(ENDINGS.c.authorization_id == auth_id)
                               ).mappings().first()
        return _ending(row) if row else None

    def all(self) -> list[Ending]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(ENDINGS).order_by(ENDINGS.c.updated_at)).mappings().all()
        return [_ending(r) for r in rows]

    def save(self, ending: Ending) -> None:
        values = {"status": ending.status, "attempts": ending.attempts,
                  "updated_at": ending.updated_at,
                  "report": json.loads(json.dumps(ending.report, default=str)),
                  "ledger_index": ending.ledger_index}
        with self.engine.begin() as conn:
            updated = conn.execute(ENDINGS.update().where(
                ENDINGS.c.authorization_id == ending.authorization).values(**values))
            if updated.rowcount == 0:
                conn.execute(ENDINGS.insert().values(authorization_id=ending.authorization,
                                                     **values))


def _ending(row: Any) -> Ending:
    return Ending(row["authorization_id"], row["status"], row["attempts"], row["updated_at"],
                  row["report"], row["ledger_index"])
