"""Fixtures of the end-to-end tests: the whole system on real Docker, one per test session.

One data domain (``tests/gateway/world.build_world``: ledger, synthetic data, catalog and
authorizations), hub accounts for analysts, a reviewer and a regulator, an internal sandbox
network of the test's own behind the production firewall script, the ledger service and the
hub with the hardened spawner and the watchdog. Around it, targets the sandboxes must not
reach: a TCP listener on the host on a port the firewall does not allow, and a web server in a
container on another Docker network.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from hub.accounts import ensure_account, hub_db_url
from ledger.cli import log_config
from ledger.entry import decode_entry
from ledger.log import Log
from sandbox_image.build import ensure_image
from tests.e2e.browser import Browser, Kernel
from tests.e2e.harness import TEST_LABEL, SandboxNet, SystemHub, docker
from tests.gateway.world import World, build_world

PASSWORD = "e2e-sandbox-Passw0rd"
ANALYSTS = ("alice", "bob", "carol", "dave", "frank")
ACCOUNTS = {**{a: ["analysts"] for a in ANALYSTS}, "rita": ["reviewers"], "reg": ["regulators"]}

pytestmark = [pytest.mark.docker, pytest.mark.e2e]


@dataclass
class HostListener:
    """A TCP listener of the test's own on every host address; records who connected."""

    port: int
    connections: list[Any] = field(default_factory=list)
    sock: socket.socket | None = None

    @classmethod
    def start(cls) -> "HostListener":
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", 0))
        sock.listen(16)
        listener = cls(sock.getsockname()[1], sock=sock)
        threading.Thread(target=listener._accept, daemon=True).start()
        return listener

    def _accept(self) -> None:
        assert self.sock is not None
        while True:
            try:
                conn, addr = self.sock.accept()
            except OSError:
                return
            self.connections.append(addr)
            conn.close()

    def close(self) -> None:
        if self.sock:
            self.sock.close()


@dataclass
class OtherNetwork:
    """A web server in a container on a Docker network other than the sandboxes'."""

    net: SandboxNet
    container: str
    ip: str
    port: int = 8080


@dataclass
class System:
    world: World
    hub: SystemHub
    net: SandboxNet
    listener: HostListener
    other: OtherNetwork

    def entries(self) -> list[dict[str, Any]]:
        log = Log.open(log_config(self.world.settings))
        try:
            return [decode_entry(bytes(data)) for _, data, _ in log.store.iter_entries()]
        finally:
            log.close()

    def entries_of(self, kind: str, **top: Any) -> list[dict[str, Any]]:
        return [e for e in self.entries()
                if e["type"] == kind and all(e.get(k) == v for k, v in top.items())]


@pytest.fixture(scope="session")
def system() -> Iterator[System]:
    assert os.geteuid() == 0, "the end-to-end tests apply host firewall rules: run as root"
    image = ensure_image()
    # a directory of our own: pytest's numbered temp dirs are pruned by other sessions
    base = Path(tempfile.mkdtemp(prefix="shuyu-e2e-"))
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("SHUYU_")}
    try:
        world = build_world(base / "world", scale=1000)
    finally:
        os.environ.update(saved)
    for name, groups in ACCOUNTS.items():
        ensure_account(hub_db_url(world.data_dir), name, PASSWORD, groups)
    net = SandboxNet.create()
    other_net = SandboxNet.create(internal=False, prefix="o")
    listener = HostListener.start()
    hub = None
    running: System | None = None
    try:
        other = _other_server(other_net, image.ref)
        from tests.e2e.harness import Ports

        ports = Ports.free()
        applied = net.firewall("apply", [ports.public, ports.api, ports.gateway])
        assert applied.returncode == 0, applied.stderr
        hub = SystemHub.start(world.data_dir, net, {
            "SHUYU_SANDBOX_PREFIX": net.name,
            "SHUYU_WATCHDOG_INTERVAL": "2", "SHUYU_WATCHDOG_GRACE": "20",
            "SHUYU_SANDBOX_IMAGE": image.ref.split("@")[0],
        }, ports)
        running = System(world, hub, net, listener, other)
        yield running
    finally:
        if running is not None:
            running.hub.stop()  # a test may have restarted the hub
        elif hub is not None:
            hub.stop()
        listener.close()
        for cid in docker("ps", "-aq", "--filter", f"label={TEST_LABEL}", check=False).stdout.split():
            docker("rm", "-f", cid, check=False)
        other_net.remove()
        net.remove()
        for volume in docker("volume", "ls", "-q", "--filter", f"name={net.name}-work-",
                             check=False).stdout.split():
            docker("volume", "rm", "-f", volume, check=False)
        if os.environ.get("SHUYU_E2E_KEEP") != "1":
            shutil.rmtree(base, ignore_errors=True)


def _other_server(net: SandboxNet, image: str) -> OtherNetwork:
    name = f"{net.name}-web"
    docker("run", "-d", "--name", name, "--label", TEST_LABEL, "--network", net.name,
           "--entrypoint", "python", image, "-m", "http.server", "8080", "--bind", "0.0.0.0",
           "--directory", "/opt/shuyu/home-template")
    ip = docker("inspect", name, "-f",
                f"{{{{(index .NetworkSettings.Networks \"{net.name}\").IPAddress}}}}").stdout.strip()
    return OtherNetwork(net, name, ip)


@dataclass
class Analyst:
    name: str
    browser: Browser
    kernel: Kernel


def login_and_spawn(system: System, user: str) -> Analyst:
    browser = Browser(system.hub.public_url)
    try:
        return _login_and_spawn(system, browser, user)
    except BaseException:
        browser.close()
        raise


def _login_and_spawn(system: System, browser: Browser, user: str) -> Analyst:
    r = browser.login(user, PASSWORD)
    assert r.status_code == 302 and r.headers["location"].endswith("/hub/home"), (
        f"login of {user} failed: {r.status_code} {r.text[:500]}")
    server = (browser.api("GET", f"users/{user}").json().get("servers") or {}).get("")
    if not server:
        r = browser.spawn(user)
        assert r.status_code in (201, 202), (
            f"spawn of {user}: {r.status_code} {r.text}\n{system.hub.hub.log_tail(300)}")
    try:
        browser.wait_ready(user)
    except AssertionError as e:
        raise AssertionError(f"{e}\nhub log:\n{system.hub.hub.log_tail(300)}") from None
    browser.open_server(user)
    return Analyst(user, browser, browser.start_kernel(user))


@pytest.fixture(scope="session")
def alice(system: System) -> Iterator[Analyst]:
    analyst = login_and_spawn(system, "alice")
    yield analyst
    analyst.browser.close()


@pytest.fixture(scope="session")
def carol(system: System) -> Iterator[Analyst]:
    analyst = login_and_spawn(system, "carol")
    yield analyst
    analyst.browser.close()


def container_ip(name: str, network: str) -> str:
    out = subprocess.run(
        ["docker", "inspect", name, "-f",
         f"{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}"],
        capture_output=True, text=True, check=True)
    return out.stdout.strip()


def data_dir_of(system: System) -> Path:
    return system.world.data_dir
