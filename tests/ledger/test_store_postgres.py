"""The store conformance suite on a real PostgreSQL server (started by `make test`), plus what
only PostgreSQL needs checking: durable commits whatever the server default, the advisory lock
serializing sequencers in several processes' connections, and a rolled-back database copy."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from ledger.exceptions import LedgerUnavailable
from ledger.log import Log, LogConfig, init_log
from tests.conftest import PG_ADMIN_URL
from tests.ledger.integrity import check_log
from tests.ledger.store_conformance import SqlConformance, event_for

pytestmark = pytest.mark.postgres
ORIGIN = "test.shuyu.local/ledger"


def pg_config(base: Path, url: str) -> LogConfig:
    return LogConfig(ledger_dir=base / "ledger", keys_dir=base / "keys", database_url=url,
                     origin=ORIGIN)


@pytest.fixture
def sql_log(tmp_path: Path, pg_url: str):  # type: ignore[no-untyped-def]
    cfg = pg_config(tmp_path, pg_url)
    init_log(cfg)
    log = Log.open(cfg)
    yield log
    log.close()


def _admin():  # type: ignore[no-untyped-def]
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


@pytest.fixture
def fresh_url():  # type: ignore[no-untyped-def]
    """Another empty database on the same server."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = _admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


class TestPostgresStore(SqlConformance):
    def check_reader_after_commit(self, reader, seen: int) -> None:  # type: ignore[no-untyped-def]
        # READ COMMITTED: the next statement sees the whole batch, never part of it
        size = reader.exec_driver_sql("SELECT size FROM ledger_state").scalar()
        count = reader.exec_driver_sql("SELECT count(*) FROM ledger_entries").scalar()
        assert size == count == seen + 50


def test_commits_are_durable_even_if_the_server_default_is_not(sql_log: Log) -> None:
    db = sql_log.config.database_url.rsplit("/", 1)[1]
    admin = _admin()
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{db}" SET synchronous_commit TO off'))
    admin.dispose()
    sql_log.store.writer.dispose()  # new sessions get the lax default
    settings = sql_log.store.durability_settings()
    assert settings["synchronous_commit"] == "on"
    assert settings["isolation"] == "read committed"
    assert sql_log.append(event_for(0)) == 0


def test_advisory_lock_serializes_sequencers_on_separate_connections(tmp_path: Path,
                                                                    pg_url: str) -> None:
    """Three Logs (each its own engine and guard directory, as on three hosts) append at once."""
    cfg = pg_config(tmp_path / "a", pg_url)
    init_log(cfg)
    logs = []
    for name in ("a", "b", "c"):
        host = LogConfig(ledger_dir=tmp_path / name / "ledger", keys_dir=cfg.keys_dir,
                         database_url=pg_url, origin=ORIGIN)
        host.ledger_dir.mkdir(parents=True, exist_ok=True)
        host.vkey_path.write_text(cfg.vkey_path.read_text())
        logs.append(Log.open(host))
    results: list[list[int]] = []

    def work(log: Log, tag: str) -> None:
        for r in range(15):
            results.append(log.append_many([event_for(i, f"{tag}{r}") for i in range(7)]))

    threads = [threading.Thread(target=work, args=(log, n)) for log, n in zip(logs, "abc")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(i for r in results for i in r) == list(range(3 * 15 * 7))
    assert all(r == list(range(r[0], r[0] + 7)) for r in results)
    assert check_log(logs[0]).size == 315
    for log in logs:
        log.close()


def test_rolled_back_database_copy_is_refused(tmp_path: Path, pg_url: str) -> None:
    cfg = pg_config(tmp_path, pg_url)
    init_log(cfg)
    log = Log.open(cfg)
    log.append_many([event_for(i) for i in range(20)])
    log.close()
    db = pg_url.rsplit("/", 1)[1]
    backup = f"{db}_backup"
    admin = _admin()
    with admin.connect() as conn:  # the operator's backup, taken at size 20
        conn.execute(text(f'CREATE DATABASE "{backup}" TEMPLATE "{db}"'))
    try:
        log = Log.open(cfg)
        log.append_many([event_for(i) for i in range(20, 50)])
        log.close()
        restored = pg_config(tmp_path, pg_url.rsplit("/", 1)[0] + "/" + backup)
        log = Log.open(restored)  # the same host (same guard), the old copy of the database
        try:
            with pytest.raises(LedgerUnavailable, match="truncated or rolled back|fork"):
                log.append_many([event_for(i, "fork") for i in range(40)])
            with pytest.raises(LedgerUnavailable, match="rolled back"):
                log.check_ready()
            assert log.store.head().size == 20
            assert [s for s, _, _ in log.store.checkpoints()][-1] == 20
        finally:
            log.close()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{backup}" WITH (FORCE)'))
        admin.dispose()
