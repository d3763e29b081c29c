"""``deploy/up.sh`` and ``deploy/down.sh`` (what ``make up`` / ``make down`` run), for real, twice
each, on ports, a network and a data directory of the test's own: the system comes up, prints
the URL and the demo accounts, an analyst logs in and works, a second ``up`` changes nothing,
``down`` stops everything (sandboxes included, sessions closed in the ledger) and removes the
firewall rules, and a second ``down`` is harmless."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import docker
import pytest

from ledger.cli import config_for
from ledger.entry import decode_entry
from ledger.log import Log
from tests.e2e.browser import Browser
from tests.e2e.harness import REPO
from tests.gateway.hubprocess import free_ports

pytestmark = [pytest.mark.docker, pytest.mark.e2e, pytest.mark.slow]


def run(script: str, data_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(REPO / "deploy" / script), str(data_dir)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=900, check=False)


def iptables_mentions(bridge: str) -> list[str]:
    dump = subprocess.run(["iptables", "-S"], capture_output=True, text=True, check=True).stdout
    return [line for line in dump.splitlines() if f"SHUYU-{bridge}" in line
            or (bridge in line and "DOCKER-USER" in line)]


def test_make_up_twice_then_down_twice() -> None:
    tag = secrets.token_hex(3)
    names = dict(zip(["SHUYU_HUB_PORT", "SHUYU_HUB_API_PORT", "SHUYU_HUB_PROXY_API_PORT",
                      "SHUYU_GATEWAY_PORT", "SHUYU_REVIEW_PORT", "SHUYU_CONSOLE_PORT",
                      "SHUYU_LEDGER__PORT", "SHUYU_REGULATOR_PORT"],
                     map(str, free_ports(8))))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHUYU_", "JUPYTERHUB_"))}
    env.update(names, SHUYU_SANDBOX_NETWORK=f"shuyu-test-u{tag}",
               SHUYU_SANDBOX_BRIDGE=f"shuyu-u{tag}", SHUYU_SANDBOX_PREFIX=f"shuyu-test-u{tag}",
               SHUYU_DEMO_SCALE="1000")
    data_dir = Path(tempfile.mkdtemp(prefix="shuyu-up-"))
    url = f"http://127.0.0.1:{names['SHUYU_HUB_PORT']}"
    try:
        first = run("up.sh", data_dir, env)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        assert f"{url}/hub/login" in first.stdout
        for role in ("analyst1", "analyst2", "reviewer1", "reviewer2", "regulator1",
                     "authority1"):
            assert role in first.stdout
        assert iptables_mentions(f"shuyu-u{tag}")
        accounts = json.loads((data_dir / "demo-accounts.json").read_text())
        assert oct((data_dir / "demo-accounts.json").stat().st_mode & 0o777) == "0o600"

        browser = Browser(url)
        try:
            assert browser.login("analyst1", accounts["analyst1"]).status_code == 302
            assert browser.spawn("analyst1").status_code in (201, 202)
            browser.wait_ready("analyst1")
            browser.open_server("analyst1")
            out = browser.start_kernel("analyst1").run(
                "import shuyu; print(int(shuyu.query('SELECT count(*) AS n FROM enterprises')"
                "['n'][0]))")
            assert int(out.strip()) > 0
        finally:
            browser.close()

        second = run("up.sh", data_dir, env)
        assert second.returncode == 0, second.stderr[-3000:]
        assert "the hub already runs" in second.stderr
        assert "domain store: already loaded" in second.stderr
        assert "created signing key" not in second.stderr

        down = run("down.sh", data_dir, env)
        assert down.returncode == 0, down.stderr[-3000:]
        assert "stopped hub" in down.stdout
        client = docker.from_env()
        try:
            assert not client.containers.list(
                all=True, filters={"name": f"shuyu-test-u{tag}-sandbox-"})
            assert not client.networks.list(names=[f"shuyu-test-u{tag}"])
        finally:
            client.close()
        assert iptables_mentions(f"shuyu-u{tag}") == []
        log = Log.open(config_for(data_dir))
        try:
            kinds = [decode_entry(bytes(d))["type"] for _, d, _ in log.store.iter_entries()]
        finally:
            log.close()
        assert kinds.count("session.open") == kinds.count("session.close") == 1
        assert "query" in kinds

        again = run("down.sh", data_dir, env)
        assert again.returncode == 0, again.stderr[-2000:]
    finally:
        run("down.sh", data_dir, env)
        client = docker.from_env()
        for volume in client.volumes.list(filters={"name": f"shuyu-test-u{tag}"}):
            volume.remove(force=True)
        client.close()
        shutil.rmtree(data_dir, ignore_errors=True)
