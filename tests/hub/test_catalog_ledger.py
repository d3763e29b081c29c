"""Ledger first, fail closed: no change without its ledger entry, and no lost concurrent update.

The ledgers here are real ones made unwritable the way they fail in production: the signing key
is gone, or the ledger's PostgreSQL database disappears. The commit-failure test kills the
control database's connections (a real server-side failure) right after the ledger recorded a
change, through a sink that appends to the real ledger and then pulls the plug.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterable

import pytest
from sqlalchemy import create_engine, text

from hub.catalog.agreements import ScopeRequest
from hub.catalog.enums import IdentifierClass
from hub.catalog.events import AuditEvent, AuditEventType
from hub.catalog.exceptions import CatalogError, ConcurrentChange, NotRecorded
from hub.catalog.records import ColumnRecord
from hub.catalog.service import CatalogService
from hub.catalog.states import AuthorizationStatus, DataRequestStatus
from hub.catalog.storage import SqlAlchemyCatalogStore
from ledger.log import Log, init_log
from tests.conftest import PG_ADMIN_URL
from tests.hub import test_catalog_support as support
from tests.hub.test_catalog_support import (
    ALICE,
    AUTHORITY,
    BOB,
    OPERATOR,
    RESIDENTS,
    Env,
    MovableClock,
    create_agreement,
    ledger_config,
    open_env,
    sample_catalog,
)

env = support.env  # the fixture, on SQLite and PostgreSQL


def state(svc: CatalogService) -> tuple:
    return (
        [d.to_json() for d in svc.list_datasets()],
        [o.to_json() for o in svc.list_operators()],
        [a.to_json() for a in svc.list_analysts()],
        [a.to_json() for a in svc.list_authorizations()],
        [r.to_json() for r in svc.list_data_requests()],
    )


def every_kind_of_change(svc: CatalogService, auth_id: str, req_id: str
                         ) -> list[Callable[[], Any]]:
    return [
        lambda: svc.register_dataset(AUTHORITY, replace(RESIDENTS, version="2026.03")),
        lambda: svc.create_operator(AUTHORITY, "新运营机构"),
        lambda: svc.add_analyst(AUTHORITY, "dave", OPERATOR),
        lambda: svc.create_authorization(
            AUTHORITY, operator=OPERATOR, analysts=["alice"],
            scope=[ScopeRequest("enterprises")], scenario="s", use_class="产业发展",
            starts_at=svc.now(), ends_at=svc.now() + timedelta(days=30)),
        lambda: svc.suspend(AUTHORITY, auth_id, "x"),
        lambda: svc.revoke(AUTHORITY, auth_id, "x"),
        lambda: svc.extend(AUTHORITY, auth_id, svc.now() + timedelta(days=700), "x"),
        lambda: svc.change_scope(AUTHORITY, auth_id, reason="x", remove=["enterprises"]),
        lambda: svc.change_analysts(AUTHORITY, auth_id, reason="x", remove=["bob"]),
        lambda: svc.create_data_request(BOB, auth_id, "residents", ["name"], "x"),
        lambda: svc.approve_data_request(AUTHORITY, req_id, "x"),
        lambda: svc.refuse_data_request(AUTHORITY, req_id, "x"),
    ]


def test_no_change_is_made_when_the_signing_key_is_gone(env: Env) -> None:
    sample_catalog(env)
    auth = create_agreement(env)
    req = env.service.create_data_request(ALICE, auth.id, "residents", ["education"], "study")
    before, size = state(env.service), env.log.store.head().size
    key = env.config.key_path
    saved = key.read_bytes()
    key.unlink()
    broken = open_env(env.control_url, env.config, env.clock)  # a fresh process, no cached key
    try:
        for change in every_kind_of_change(broken.service, auth.id, req.id):
            with pytest.raises(NotRecorded, match="so the change was not made: .*signing key"):
                change()
        assert state(broken.service) == before
        assert broken.log.store.head().size == size
        assert broken.service.user_can_query("alice", "residents", ["district"])  # reads work
    finally:
        broken.close()
        key.write_bytes(saved)
        key.chmod(0o600)
    healed = open_env(env.control_url, env.config, env.clock)
    try:
        healed.service.suspend(AUTHORITY, auth.id, "after the key came back")
        assert healed.types()[-1] == "authorization.suspended"
    finally:
        healed.close()


@pytest.fixture
def pg_database() -> Iterable[tuple[str, Callable[[], None]]]:
    """A second fresh PostgreSQL database, and a function that drops it (with its sessions)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name, drop
    drop()
    admin.dispose()


@pytest.mark.postgres
def test_no_change_is_made_when_the_ledger_database_is_gone(
    pg_url: str, pg_database: tuple[str, Callable[[], None]], tmp_path: Path
) -> None:
    ledger_url, drop_ledger_db = pg_database
    config = ledger_config(tmp_path, ledger_url)
    init_log(config)
    live = open_env(pg_url, config, MovableClock())
    try:
        sample_catalog(live)
        auth = create_agreement(live)
        req = live.service.create_data_request(ALICE, auth.id, "residents", ["education"], "x")
        before = state(live.service)
        drop_ledger_db()
        for change in every_kind_of_change(live.service, auth.id, req.id):
            with pytest.raises(NotRecorded, match="so the change was not made"):
                change()
        assert state(live.service) == before
    finally:
        live.service.close()
        live.log.close()


class PlugPuller:
    """Appends to the real ledger, then terminates every session of the control database."""

    def __init__(self, log: Log, control_db: str):
        self.log = log
        self.control_db = control_db
        self.armed = False

    def append_many(self, events: Iterable[dict[str, Any]]) -> list[int]:
        indices = self.log.append_many(events)
        if self.armed:
            self.armed = False
            admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": self.control_db})
            admin.dispose()
        return indices


@pytest.mark.postgres
def test_a_commit_that_fails_after_logging_is_marked_not_applied(pg_url: str, tmp_path: Path
                                                                 ) -> None:
    config = ledger_config(tmp_path, f"sqlite:///{tmp_path / 'ledger' / 'ledger.db'}")
    init_log(config)
    log = Log.open(config)
    sink = PlugPuller(log, pg_url.rsplit("/", 1)[1])
    store = SqlAlchemyCatalogStore(pg_url, sink)
    store.create()
    clock = MovableClock()
    svc = CatalogService(store, clock)
    try:
        env = support.Env(svc, log, clock, config, pg_url)
        sample_catalog(env)
        auth = create_agreement(env)
        sink.armed = True
        with pytest.raises(CatalogError, match="did not commit the change.*did not take effect"):
            svc.suspend(AUTHORITY, auth.id, "will not stick")
        assert svc.get_authorization(auth.id).status is AuthorizationStatus.ACTIVE
        suspended, note = env.entries()[-2:]
        assert suspended["type"] == "authorization.suspended"
        assert note["type"] == "catalog.change_not_applied"
        assert note["details"]["entries"] == [len(env.entries()) - 2]
        assert note["details"]["types"] == ["authorization.suspended"]
        assert note["authorization"] == auth.id
        svc.suspend(AUTHORITY, auth.id, "second try")  # the pool reconnects
        assert svc.get_authorization(auth.id).status is AuthorizationStatus.SUSPENDED
    finally:
        store.close()
        log.close()


def test_a_stale_write_is_refused_before_the_ledger(env: Env) -> None:
    sample_catalog(env)
    auth = create_agreement(env)
    stale = env.service.get_authorization(auth.id)
    env.service.suspend(AUTHORITY, auth.id, "first")
    size = env.log.store.head().size
    event = AuditEvent(AuditEventType.AUTHORIZATION_REVOKED, AUTHORITY, env.clock(),
                       authorization=auth.id, details={"reason": "stale"})
    with pytest.raises(ConcurrentChange, match="changed by someone else"):
        env.service.store.apply([replace(stale, status=AuthorizationStatus.REVOKED)], [event])
    assert env.service.get_authorization(auth.id).status is AuthorizationStatus.SUSPENDED
    assert env.log.store.head().size == size


def test_concurrent_approvals_never_lose_a_scope_change(env: Env) -> None:
    """Each approval rewrites the agreement's scope; none may overwrite another's."""
    sample_catalog(env)
    auth = create_agreement(env)
    columns = ["name", "education"]
    requests = [
        env.service.create_data_request(ALICE, auth.id, "residents", [c], f"need {c}")
        for c in columns
    ] + [env.service.create_data_request(BOB, auth.id, "contributions", ["month"], "wages")]
    outcomes: dict[str, str] = {}
    barrier = threading.Barrier(len(requests))

    def approve(req_id: str) -> None:
        barrier.wait()
        try:
            env.service.approve_data_request(AUTHORITY, req_id, "ok")
            outcomes[req_id] = "approved"
        except ConcurrentChange:
            outcomes[req_id] = "conflict"

    threads = [threading.Thread(target=approve, args=(r.id,)) for r in requests]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert list(outcomes.values()) == ["approved"] * len(requests)  # losers re-read and retry
    final = env.service.get_authorization(auth.id)
    approved = [r for r in requests if outcomes[r.id] == "approved"]
    for r in requests:
        stored = env.service.get_data_request(r.id)
        granted = final.scope_for(r.dataset) is not None and set(r.columns) <= (
            final.scope_for(r.dataset).columns)
        assert granted == (outcomes[r.id] == "approved")
        assert stored.status is (DataRequestStatus.APPROVED if granted
                                 else DataRequestStatus.PENDING)
    logged = [e["details"]["request"]["id"] for e in env.entries()
              if e["type"] == "data_request.approved"]
    assert sorted(logged) == sorted(r.id for r in approved)
    scope_changes = [e for e in env.entries() if e["type"] == "authorization.scope_changed"]
    assert len(scope_changes) == len(approved)


def test_an_entry_too_large_for_the_ledger_is_refused_whole(env: Env) -> None:
    wide = replace(RESIDENTS, name="wide", registration_code=None, columns=tuple(
        ColumnRecord(f"c{i}", "VARCHAR", IdentifierClass.OTHER, False, "说明" * 400)
        for i in range(60)))
    with pytest.raises(NotRecorded, match="the limit is 65535"):
        env.service.register_dataset(AUTHORITY, wide)
    assert env.service.list_datasets() == [] and env.log.store.head().size == 0
