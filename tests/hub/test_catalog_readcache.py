"""Catalog checks with remembered reads (the gateway's): every change, from any connection or
process, is seen by the very next check; nothing is remembered on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator

import pytest

from hub.catalog.exceptions import AuthorizationNotActive
from hub.catalog.readcache import UntilChanged, changes_for
from hub.catalog.service import CatalogService
from hub.catalog.storage import SqlAlchemyCatalogStore
from tests.hub import test_catalog_support as support
from tests.hub.test_catalog_support import (
    REGULATOR,
    Env,
    create_agreement,
    new_env,
    sample_catalog,
)

env = support.env  # the fixture, on SQLite and PostgreSQL
REPO = Path(__file__).resolve().parents[2]


class Counter:
    """A stand-in for the database's data_version that the test moves by hand."""

    def __init__(self) -> None:
        self.value = 0

    def __call__(self) -> int:
        return self.value


def test_answers_are_remembered_until_the_version_moves() -> None:
    version, reads = Counter(), []
    cache = UntilChanged(lambda *key: reads.append(key) or len(reads), version)
    assert cache.get("alice", "residents") == 1
    assert cache.get("alice", "residents") == 1 and cache.get("bob", "residents") == 2
    version.value += 1
    assert cache.get("alice", "residents") == 3  # read again after a commit
    assert reads == [("alice", "residents"), ("bob", "residents"), ("alice", "residents")]
    assert (cache.hits, cache.misses) == (1, 3)


def test_a_read_that_may_predate_a_commit_is_not_kept() -> None:
    version = Counter()

    def read(*key: str) -> str:
        version.value += 1  # another connection commits while this read runs
        return f"read {version.value}"

    cache = UntilChanged(read, version)
    assert cache.get("alice", "residents") == "read 1"
    assert cache.get("alice", "residents") == "read 2"  # not served from the first read


def test_the_oldest_answers_go_first() -> None:
    cache = UntilChanged(lambda key: key, Counter(), entries=2)
    for key in ("a", "b", "a", "c"):
        cache.get(key)
    cache.get("a")
    assert cache.hits == 2  # "a" stayed (used recently); "b" went out
    cache.get("b")
    assert cache.misses == 4


def test_no_counter_on_postgresql_or_in_memory() -> None:
    assert changes_for("postgresql+psycopg://u:p@127.0.0.1:5432/db") is None
    assert changes_for("sqlite://") is None and changes_for("sqlite:///:memory:") is None


def remembering(env: Env) -> CatalogService:
    store = SqlAlchemyCatalogStore(env.control_url, env.log, remember_checks=True)
    return CatalogService(store, env.clock)


def test_a_suspension_elsewhere_is_seen_by_the_next_check(env: Env) -> None:
    sample_catalog(env)
    auth = create_agreement(env)
    gateway = remembering(env)  # the gateway's catalog: another connection, remembered reads
    try:
        for _ in range(3):
            assert gateway.check_user_can_query("alice", "residents", ["district"])
        contexts = gateway.store._contexts
        if env.control_url.startswith("sqlite"):
            assert contexts is not None and contexts.hits >= 2
        else:
            assert contexts is None  # PostgreSQL: every check reads the database
        env.service.suspend(REGULATOR, auth.id, "incident 17")  # through the other store
        with pytest.raises(AuthorizationNotActive):
            gateway.check_user_can_query("alice", "residents", ["district"])
        env.service.resume(REGULATOR, auth.id, "closed")
        assert gateway.check_user_can_query("alice", "residents", ["district"])
    finally:
        gateway.close()


SUSPEND = """
import sys
from hub.catalog.service import CatalogService
from hub.catalog.storage import SqlAlchemyCatalogStore
from ledger.log import Log, LogConfig
from tests.hub.test_catalog_support import REGULATOR, ledger_config
from pathlib import Path
from typing import Iterator
log = Log.open(ledger_config(Path(sys.argv[1]), sys.argv[2]))
service = CatalogService(SqlAlchemyCatalogStore(sys.argv[3], log))
service.suspend(REGULATOR, sys.argv[4], "from another process")
service.close(); log.close()
"""


@pytest.fixture
def sqlite_env(tmp_path: Path) -> Iterator[Env]:
    """The catalog on SQLite only: the change counter is SQLite's (PostgreSQL: see above)."""
    environment = new_env(tmp_path)
    yield environment
    environment.close()


def test_a_suspension_from_another_process_is_seen(sqlite_env: Env, tmp_path: Path) -> None:
    env = sqlite_env
    sample_catalog(env)
    auth = create_agreement(env)
    gateway = remembering(env)
    try:
        assert gateway.check_user_can_query("alice", "residents", ["district"])
        assert gateway.check_user_can_query("alice", "residents", ["district"])
        done = subprocess.run([sys.executable, "-c", SUSPEND, str(tmp_path),
                               env.config.database_url, env.control_url, auth.id],
                              cwd=REPO, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        with pytest.raises(AuthorizationNotActive, match="from another process"):
            gateway.check_user_can_query("alice", "residents", ["district"])
    finally:
        gateway.close()


def test_concurrent_checks_and_changes_end_consistent(sqlite_env: Env) -> None:
    env = sqlite_env
    sample_catalog(env)
    auth = create_agreement(env)
    gateway = remembering(env)
    stop = threading.Event()
    errors: list[BaseException] = []

    def check() -> None:
        while not stop.is_set():
            try:
                gateway.user_can_query("alice", "residents", ["district"])
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

    threads = [threading.Thread(target=check) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(5):
            env.service.suspend(REGULATOR, auth.id, f"round {i}")
            assert not gateway.user_can_query("alice", "residents", ["district"])
            env.service.resume(REGULATOR, auth.id, f"round {i}")
            assert gateway.user_can_query("alice", "residents", ["district"])
    finally:
        stop.set()
        for t in threads:
            t.join()
        gateway.close()
    assert not errors
