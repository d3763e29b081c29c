"""No ledger, no sandbox: while the ledger cannot be written, a start is refused and no
container is made; once the ledger is back, the same analyst starts normally.

The ledger is made unwritable for real: the test holds the write lock of its SQLite database
(``BEGIN EXCLUSIVE``), so the sequencer's commits wait out their busy timeout and fail, exactly
as when the database is stuck or its disk is gone; readers (WAL) go on.
"""

from __future__ import annotations

import sqlite3
import time

import docker
import pytest

from tests.e2e.browser import Browser
from tests.e2e.conftest import PASSWORD, System

pytestmark = [pytest.mark.docker, pytest.mark.e2e, pytest.mark.slow]


def test_no_ledger_no_sandbox(system: System) -> None:
    db = system.world.settings.ledger_dir / "ledger.db"
    opens_before = len(system.entries_of("session.open", actor="bob"))
    browser = Browser(system.hub.public_url)
    lock = sqlite3.connect(db, timeout=10, isolation_level=None)
    try:
        assert browser.login("bob", PASSWORD).status_code == 302
        lock.execute("BEGIN EXCLUSIVE")
        try:
            r = browser.spawn("bob")
            assert r.status_code in (202, 503), r.text
            deadline = time.monotonic() + 240
            while system.hub.server("bob") is not None:
                assert time.monotonic() < deadline, "the spawn neither failed nor finished"
                time.sleep(1)
        finally:
            lock.execute("ROLLBACK")
        assert "SandboxRefused(reason=ledger)" in system.hub.hub.log_path.read_text()
        client = docker.from_env()
        try:
            assert not client.containers.list(all=True,
                                              filters={"name": f"{system.net.name}-sandbox-bob"})
        finally:
            client.close()
        assert len(system.entries_of("session.open", actor="bob")) == opens_before

        # the ledger is back: the same analyst starts, and the start is recorded
        assert browser.spawn("bob").status_code in (201, 202)
        browser.wait_ready("bob")
        assert len(system.entries_of("session.open", actor="bob")) == opens_before + 1
        assert browser.api("DELETE", "users/bob/server").status_code in (202, 204)
        deadline = time.monotonic() + 60
        while system.hub.server("bob") is not None:
            assert time.monotonic() < deadline
            time.sleep(0.5)
    finally:
        lock.close()
        browser.close()
