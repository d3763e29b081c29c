"""The store conformance suite on MemoryStore and on SQLite, plus what only SQLite needs checking:
WAL with synchronous=FULL on every connection, read snapshots, and proof queries that search
the primary keys (never scan a table)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import event

from ledger.exceptions import LedgerError
from ledger.log import Log, LogConfig, init_log
from ledger.sqlstore import SqlLedgerStore
from tests.ledger.store_conformance import MemoryBackend, SqlConformance, TreeConformance, rows_for

ORIGIN = "test.shuyu.local/ledger"


def sqlite_config(base: Path) -> LogConfig:
    return LogConfig(
        ledger_dir=base / "ledger",
        keys_dir=base / "keys",
        database_url=f"sqlite:///{base / 'ledger' / 'ledger.db'}",
        origin=ORIGIN,
    )


@pytest.fixture
def sql_log(tmp_path: Path):  # type: ignore[no-untyped-def]
    cfg = sqlite_config(tmp_path)
    init_log(cfg)
    log = Log.open(cfg)
    yield log
    log.close()


@pytest.fixture
def fresh_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'fresh' / 'empty.db'}"


class TestMemoryStore(TreeConformance):
    @pytest.fixture
    def backend(self) -> MemoryBackend:
        return MemoryBackend()


class TestSqliteStore(SqlConformance):
    def check_reader_after_commit(self, reader, seen: int) -> None:  # type: ignore[no-untyped-def]
        # an open read transaction keeps its snapshot: it never sees half of anything
        assert reader.exec_driver_sql("SELECT size FROM ledger_state").scalar() == seen
        assert reader.exec_driver_sql("SELECT count(*) FROM ledger_entries").scalar() == seen


def test_every_connection_runs_wal_with_synchronous_full(sql_log: Log) -> None:
    sql_log.append({"type": "query"})
    settings = sql_log.store.durability_settings()
    assert settings["writer.journal_mode"] == "wal"
    assert settings["reader.journal_mode"] == "wal"
    assert settings["writer.synchronous"] == "2"  # FULL
    assert settings["reader.synchronous"] == "2"
    assert settings["writer.query_only"] == "0"
    assert settings["reader.query_only"] == "1"  # readers cannot write by accident


def test_writer_transactions_begin_immediate(sql_log: Log) -> None:
    statements: list[str] = []
    event.listen(
        sql_log.store.writer, "before_cursor_execute",
        lambda conn, cur, stmt, *a: statements.append(stmt),
    )
    sql_log.commit_local(rows_for(0, 3))
    assert statements[0] == "BEGIN IMMEDIATE"  # the write lock is taken before reading state


def test_in_memory_database_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="in-memory"):
        SqlLedgerStore("sqlite:///:memory:", ORIGIN)


def test_proof_queries_search_primary_keys(sql_log: Log) -> None:
    for start in range(0, 3000, 500):
        sql_log.commit_local(rows_for(start, 500))
    statements: list[tuple[str, tuple]] = []

    def record(conn, cur, stmt, params, *a):  # type: ignore[no-untyped-def]
        statements.append((stmt, params))

    event.listen(sql_log.store.reader, "before_cursor_execute", record)
    sql_log.store.inclusion_proof(1234, 3000)
    sql_log.store.consistency_proof(1001, 3000)
    event.remove(sql_log.store.reader, "before_cursor_execute", record)
    plans = []
    with sql_log.store.reader.connect() as conn:
        for stmt, params in statements:
            if "ledger_nodes" in stmt or "ledger_entries" in stmt:
                rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + stmt, params).all()
                plans += [r[-1] for r in rows]
    assert plans and not [p for p in plans if p.startswith("SCAN")], plans
