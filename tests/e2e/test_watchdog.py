"""The watchdog against the real system: suspending or expiring an authorization stops the
analyst's running sandbox within a minute, ledgered; a container that dies behind the hub's
back leaves no open-ended session."""

from __future__ import annotations

import time
from datetime import timedelta

import docker
import pytest

from hub.catalog.agreements import ScopeRequest
from hub.catalog.enums import AccessMode, Role
from hub.catalog.events import Actor
from tests.e2e.conftest import System, login_and_spawn
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
    """A container labelled as one of this hub's sandboxes that the hub does not run (a hub
    that lost its database) is removed; another hub's sandbox on the same engine is not."""
    client = docker.from_env()
    image = client.containers.get(system.other.container).image
    labels = {"org.shuyu.sandbox": "1", "org.shuyu.sandbox.user": "ghost",
              "org.shuyu.test": "e2e"}
    ours = client.containers.run(
        image, ["-c", "import time; time.sleep(600)"], entrypoint="python", detach=True,
        name=f"{system.net.name}-sandbox-ghost", network=system.net.name,
        labels={**labels, "org.shuyu.sandbox.prefix": system.net.name})
    theirs = client.containers.run(
        image, ["-c", "import time; time.sleep(600)"], entrypoint="python", detach=True,
        name=f"{system.net.name}-other-hub-ghost", network="none",
        labels={**labels, "org.shuyu.sandbox.prefix": "another-hub"})
    try:
        deadline = time.monotonic() + 20 + STOP_DEADLINE  # the watchdog's grace, then a pass
        while ours.name in [c.name for c in client.containers.list(all=True)]:
            assert time.monotonic() < deadline, "the orphaned container was not removed"
            time.sleep(1)
        theirs.reload()
        assert theirs.status == "running"
        terminate = [e for e in system.entries_of("session.terminate", actor="shuyu-watchdog")
                     if e["details"].get("container") == ours.name]
        assert not terminate  # ghost had no session, so there was nothing to terminate
    finally:
        for c in (ours, theirs):
            try:
                c.remove(force=True)
            except docker.errors.NotFound:
                pass
        client.close()
