"""An analyst's whole session through the real system: log in with the hub's form, spawn a
hardened sandbox, run notebook code in its kernel, query through the client, find the session
and the query in the ledger; then stop, and find the close in the ledger."""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.conftest import Analyst, System, login_and_spawn

pytestmark = [pytest.mark.docker, pytest.mark.e2e]


def test_session_open_is_in_the_ledger_before_the_server(system: System, alice: Analyst) -> None:
    opens = system.entries_of("session.open", actor="alice")
    assert opens, "no session.open for alice"
    entry = opens[-1]
    assert entry["role"] == "analyst"
    assert entry["details"]["image"].startswith("shuyu-sandbox")
    assert entry["details"]["network"] == system.net.name
    assert entry["authorization"] == system.world.authorizations["row"]


def test_the_container_runs_hardened(system: System, alice: Analyst) -> None:
    import docker

    client = docker.from_env()
    container = client.containers.get(f"{system.net.name}-sandbox-alice")
    host = container.attrs["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["PidsLimit"] == 256 and host["Memory"] == 1 << 30 and host["CpuQuota"] > 0
    assert host["NetworkMode"] == system.net.name
    assert host["Privileged"] is False
    assert all(not b.startswith("/") for b in host["Binds"]), host["Binds"]
    assert container.attrs["Config"]["User"] == "1000:1000"
    client.close()


def test_notebook_code_queries_through_the_client_and_the_ledger_has_it(
        system: System, alice: Analyst) -> None:
    result = alice.kernel.run_json(
        "import json, os, shuyu\n"
        "df = shuyu.query('SELECT industry, count(*) AS n FROM enterprises GROUP BY industry')\n"
        "print(json.dumps({'rows': len(df), 'total': int(df['n'].sum()),\n"
        "                  'uid': os.getuid(), 'auth': os.environ.get('SHUYU_AUTHORIZATION')}))\n")
    assert result["rows"] > 0 and result["total"] > 0
    assert result["uid"] == 1000
    assert result["auth"] == system.world.authorizations["row"]
    queries = [e for e in system.entries_of("query", actor="alice")
               if "FROM enterprises GROUP BY industry" in e["details"]["sql"]]
    assert queries, "the query is not in the ledger"
    opened = system.entries_of("session.open", actor="alice")[-1]
    assert opened["session"].startswith("sess-")
    assert queries[-1]["session"] == opened["details"]["token_id"]  # the gateway's session id
    assert queries[-1]["details"]["outcome"] == "ok"


def test_stop_works_and_is_ledgered(system: System) -> None:
    analyst = login_and_spawn(system, "bob")
    assert analyst.kernel.run("print(1 + 1)").strip() == "2"
    opened = system.entries_of("session.open", actor="bob")[-1]
    assert sorted(opened["details"]["authorizations"]) == sorted(
        [system.world.authorizations["row"], system.world.authorizations["second"]])
    r = analyst.browser.api("DELETE", "users/bob/server")
    assert r.status_code in (202, 204), r.text
    deadline = time.monotonic() + 60
    while system.hub.server("bob") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert system.hub.server("bob") is None
    closes = [e for e in system.entries_of("session.close", actor="bob")
              if e["session"] == opened["session"]]
    assert len(closes) == 1, json.dumps(closes)
    assert closes[0]["details"]["reason"] == "stopped"
    import docker

    client = docker.from_env()
    assert not client.containers.list(all=True,
                                     filters={"name": f"{system.net.name}-sandbox-bob"})
    client.close()
    analyst.browser.close()
