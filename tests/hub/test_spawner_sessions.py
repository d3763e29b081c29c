"""The session book (hub/sessions.py) over a real ledger and a real database (SQLite here,
PostgreSQL too): ledger first, idempotent close, reconciliation, and no session without the
ledger."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from hub.sessions import CloseReason, OpenRequest, SessionBook, SessionLedgerError
from ledger.entry import decode_entry
from ledger.log import Log, init_log
from tests.ledger.logfactory import config


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def ledger(tmp_path: Path):
    cfg = config(tmp_path)
    init_log(cfg)
    log = Log.open(cfg)
    yield log
    log.close()


def entries(log: Log) -> list[dict]:
    return [decode_entry(bytes(d)) for _, d, _ in log.store.iter_entries()]


def request(user: str = "alice", token: str = "a7") -> OpenRequest:
    return OpenRequest(user=user, token_id=token, server_name="", image="shuyu-sandbox:latest",
                       container=f"shuyu-sandbox-{user}", authorizations=["auth-1"],
                       details={"network": "shuyu-sandbox"})


@pytest.fixture(params=["sqlite", "postgres"])
def book(request: pytest.FixtureRequest, ledger: Log, tmp_path: Path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'control.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    clock = Clock()
    b = SessionBook(url, ledger, clock)
    b.clock_ref = clock  # type: ignore[attr-defined]
    yield b
    b.dispose()


def test_open_writes_the_ledger_then_the_book(book: SessionBook, ledger: Log) -> None:
    s = book.open(request())
    assert s.is_open and s.key.startswith("sess-") and s.token_id == "a7"
    [entry] = entries(ledger)
    assert entry["type"] == "session.open" and entry["session"] == s.key
    assert entry["actor"] == "alice" and entry["authorization"] == "auth-1"
    assert entry["details"]["token_id"] == "a7" and entry["details"]["network"] == "shuyu-sandbox"
    assert s.open_index == 0 and [x.key for x in book.open_sessions("alice")] == [s.key]


def test_close_is_ledgered_once(book: SessionBook, ledger: Log) -> None:
    s = book.open(request())
    book.clock_ref.now += timedelta(minutes=5)  # type: ignore[attr-defined]
    closed = book.close(s.key, CloseReason.STOPPED)
    assert closed is not None and not closed.is_open and closed.close_reason == "stopped"
    assert book.close(s.key, CloseReason.STOPPED) is None  # idempotent: nothing more written
    kinds = [(e["type"], e.get("session")) for e in entries(ledger)]
    assert kinds == [("session.open", s.key), ("session.close", s.key)]
    close = entries(ledger)[-1]["details"]
    assert close["duration_s"] == 300.0 and close["open_index"] == 0
    assert book.open_sessions() == []


def test_reconcile_closes_sessions_whose_container_is_gone(book: SessionBook,
                                                           ledger: Log) -> None:
    gone, running = book.open(request("alice", "a1")), book.open(request("bob", "a2"))
    book.clock_ref.now += timedelta(seconds=30)  # type: ignore[attr-defined]
    assert book.reconcile({"shuyu-sandbox-bob"}, grace_seconds=60) == []  # too young
    book.clock_ref.now += timedelta(seconds=60)  # type: ignore[attr-defined]
    closed = book.reconcile({"shuyu-sandbox-bob"}, grace_seconds=60)
    assert [c.key for c in closed] == [gone.key]
    last = entries(ledger)[-1]
    assert last["type"] == "session.close" and last["role"] == "service"
    assert last["details"]["reason"] == "container_gone"
    assert last["details"]["found_by"] == "reconciliation"
    assert [s.key for s in book.open_sessions()] == [running.key]


def test_terminate_is_written_by_the_service(book: SessionBook, ledger: Log) -> None:
    s = book.open(request())
    book.terminate(s, "authorization auth-1 is suspended", "shuyu-watchdog")
    last = entries(ledger)[-1]
    assert (last["type"], last["actor"], last["role"]) == (
        "session.terminate", "shuyu-watchdog", "service")
    assert last["session"] == s.key and last["details"]["user"] == "alice"


def test_no_ledger_no_session(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    init_log(cfg)
    log = Log.open(cfg)
    book = SessionBook(f"sqlite:///{tmp_path / 'control.db'}", log)
    try:
        cfg.key_path.unlink()  # the signing key is gone: nothing can be appended
        with pytest.raises(SessionLedgerError) as err:
            book.open(request())
        assert "session.open" in str(err.value)
        assert book.open_sessions() == []  # and nothing was recorded as open
        assert book.record_refusal("alice", "no", "role") is None  # best effort, no raise
    finally:
        book.dispose()
        log.close()


def test_a_failed_close_stays_open_for_reconciliation(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    init_log(cfg)
    log = Log.open(cfg)
    book = SessionBook(f"sqlite:///{tmp_path / 'control.db'}", log)
    try:
        s = book.open(request())
        key_bytes = cfg.key_path.read_bytes()
        log.close()
        log = Log.open(cfg)  # a fresh handle, no cached signer
        book.log = log
        cfg.key_path.unlink()
        with pytest.raises(SessionLedgerError):
            book.close(s.key, CloseReason.STOPPED)
        assert [x.key for x in book.open_sessions()] == [s.key]
        cfg.key_path.write_bytes(key_bytes)
        cfg.key_path.chmod(0o600)
        assert book.close(s.key, CloseReason.STOPPED) is not None
        assert book.open_sessions() == []
    finally:
        book.dispose()
        log.close()
