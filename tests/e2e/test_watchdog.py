"""The watchdog against the real system: suspending or expiring an authorization stops the
analyst's running sandbox within a minute, ledgered; a container that dies behind the hub's
back leaves no open-ended session."""

from __future__ import annotations

import time
from pathlib import Path
from datetime import timedelta

import docker
import pytest

from hub.catalog.agreements import ScopeRequest
from hub.catalog.enums import AccessMode, Role
from hub.catalog.events import Actor
from tests.e2e.conftest import System, login_and_spawn
from tests.e2e.harness import alive
from tests.gateway.world import AUTHORITY, OPERATOR

pytestmark = [pytest.mark.docker, pytest.mark.e2e]
STOP_DEADLINE = 60.0


def grant(system: System, analyst: str, days: float = 30.0) -> str:
    service, log = system.world.open_catalog()
    try:
        now = service.now()
        auth = service.create_authorization(
            AUTHORITY, operator=OPERATOR, analysts=[analyst],
            scope=[ScopeRequest("enterprises", None, AccessMode.ROW_LEVEL)],
            scenario="沙箱停机测试", use_class="public_governance",
            starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=days))
        return auth.id
    finally:
        log.close()


def wait_stopped(system: System, user: str) -> float:
    started = time.monotonic()
    while system.hub.server(user) is not None:
        assert time.monotonic() - started < STOP_DEADLINE, (
            f"{user}'s server still runs {STOP_DEADLINE:.0f} s later:\n"
            f"{system.hub.hub.log_tail(40)}")
        time.sleep(0.5)
    return time.monotonic() - started


def test_suspension_stops_the_running_sandbox(system: System) -> None:
    auth_id = grant(system, "frank")
    frank = login_and_spawn(system, "frank")
    try:
        assert frank.kernel.run("print('up')").strip() == "up"
        session = system.entries_of("session.open", actor="frank")[-1]["session"]
        service, log = system.world.open_catalog()
        try:
            service.suspend(Actor("reg.audit", Role.REGULATOR, "test"), auth_id,
                            "异常查询，暂停授权")
        finally:
            log.close()
        wait_stopped(system, "frank")
        terminate = [e for e in system.entries_of("session.terminate", actor="shuyu-watchdog")
                     if e["session"] == session]
        assert terminate and "suspended" in terminate[-1]["details"]["reason"]
        closes = [e for e in system.entries_of("session.close") if e["session"] == session]
        assert len(closes) == 1 and closes[0]["details"]["reason"] == "stopped"
        entries = system.entries()
        order = [e["type"] for e in entries if e.get("session") == session
                 or (e["type"] == "authorization.suspended" and e["authorization"] == auth_id)]
        assert order == ["session.open", "authorization.suspended", "session.terminate",
                         "session.close"], order
        r = frank.browser.spawn("frank")  # and no new sandbox while suspended
        assert r.status_code == 403 and "suspended" in r.text, r.text
    finally:
        frank.browser.close()


def test_expiry_stops_the_running_sandbox(system: System) -> None:
    auth_id = grant(system, "frank", days=50 / 86400)  # ends 50 s from now
    frank = login_and_spawn(system, "frank")
    try:
        session = system.entries_of("session.open", actor="frank")[-1]["session"]
        assert system.entries_of("session.open", actor="frank")[-1]["authorization"] == auth_id
        deadline = time.monotonic() + 50 + STOP_DEADLINE
        while system.hub.server("frank") is not None:
            assert time.monotonic() < deadline, "the sandbox outlived its authorization"
            time.sleep(1)
        expired = system.entries_of("authorization.expired", authorization=auth_id)
        assert len(expired) == 1
        terminate = [e for e in system.entries_of("session.terminate") if e["session"] == session]
        assert terminate and "expired" in terminate[-1]["details"]["reason"]
        assert [e for e in system.entries_of("session.close") if e["session"] == session]
    finally:
        frank.browser.close()


def test_crashed_container_leaves_no_open_session(system: System) -> None:
    analyst = login_and_spawn(system, "carol")
    try:
        session = system.entries_of("session.open", actor="carol")[-1]["session"]
        client = docker.from_env()
        try:
            client.containers.get(f"{system.net.name}-sandbox-carol").kill()
        finally:
            client.close()
        deadline = time.monotonic() + 120
        while not [e for e in system.entries_of("session.close") if e["session"] == session]:
            assert time.monotonic() < deadline, "the crashed session was never closed"
            time.sleep(1)
        closes = [e for e in system.entries_of("session.close") if e["session"] == session]
        assert len(closes) == 1
    finally:
        analyst.browser.close()


def test_orphaned_sandbox_containers_are_removed_and_others_left_alone(system: System) -> None:
    """A container of one of this hub's sessions that the hub does not run (a hub that lost
    its database) is removed and its session closed; containers that are not this hub's (no
    session in its book, or another hub's prefix) are left alone."""
    from hub.sessions import OpenRequest, SessionBook
    from ledger.cli import log_config
    from ledger.log import Log

    log = Log.open(log_config(system.world.settings))
    book = SessionBook(system.world.settings.control_database_url, log)
    name = f"{system.net.name}-sandbox-ghost"
    try:
        session = book.open(OpenRequest("ghost", "a999", "", "shuyu-sandbox", name, ["auth-x"],
                                        {"network": system.net.name}))
    finally:
        book.dispose()
        log.close()
    client = docker.from_env()
    image = client.containers.get(system.other.container).image
    base = {"org.shuyu.sandbox": "1", "org.shuyu.sandbox.user": "ghost", "org.shuyu.test": "e2e"}
    sleep = {"command": ["-c", "import time; time.sleep(600)"], "entrypoint": "python",
             "detach": True, "network": "none"}
    ours = client.containers.run(image, name=name, labels={
        **base, "org.shuyu.sandbox.prefix": system.net.name,
        "org.shuyu.sandbox.session": session.key}, **sleep)
    stray = client.containers.run(image, name=f"{system.net.name}-stray-ghost", labels={
        **base, "org.shuyu.sandbox.prefix": system.net.name,
        "org.shuyu.sandbox.session": "sess-not-ours"}, **sleep)
    theirs = client.containers.run(image, name=f"{system.net.name}-other-hub-ghost", labels={
        **base, "org.shuyu.sandbox.prefix": "another-hub",
        "org.shuyu.sandbox.session": session.key}, **sleep)
    try:
        deadline = time.monotonic() + 20 + STOP_DEADLINE  # the watchdog's grace, then a pass
        while ours.name in [c.name for c in client.containers.list(all=True)]:
            assert time.monotonic() < deadline, "the orphaned container was not removed"
            time.sleep(1)
        for other in (stray, theirs):
            other.reload()
            assert other.status == "running", other.name
        kinds = [e["type"] for e in system.entries() if e.get("session") == session.key]
        deadline = time.monotonic() + 30
        while "session.close" not in kinds:
            assert time.monotonic() < deadline, kinds
            time.sleep(1)
            kinds = [e["type"] for e in system.entries() if e.get("session") == session.key]
        assert kinds == ["session.open", "session.terminate", "session.close"], kinds
    finally:
        for c in (ours, stray, theirs):
            try:
                c.remove(force=True)
            except docker.errors.NotFound:
                pass
        client.close()


def test_a_sandbox_that_dies_while_the_hub_is_down_is_closed_after_restart(
        system: System) -> None:
    analyst = login_and_spawn(system, "alice")
    analyst.browser.close()
    session = system.entries_of("session.open", actor="alice")[-1]["session"]
    services = system.hub.crash()
    assert services, "the hub had started no services"
    deadline = time.monotonic() + 60
    while alive(services):  # no orphans holding the ports and the old hub's state
        assert time.monotonic() < deadline, "services outlived the hub: " + ", ".join(
            Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            for p in alive(services))
        time.sleep(0.5)
    client = docker.from_env()
    try:
        container = client.containers.get(f"{system.net.name}-sandbox-alice")
        container.kill()  # dies while nobody watches; auto-remove takes it away
    finally:
        client.close()
    assert not [e for e in system.entries_of("session.close") if e["session"] == session]
    system.hub = system.hub.restarted()
    deadline = time.monotonic() + 120
    while not [e for e in system.entries_of("session.close") if e["session"] == session]:
        assert time.monotonic() < deadline, "the session of the dead sandbox stayed open"
        time.sleep(1)
    assert system.hub.server("alice") is None
    again = login_and_spawn(system, "alice")  # and the analyst can work again
    try:
        assert again.kernel.run("print('back')").strip() == "back"
    finally:
        again.browser.close()
