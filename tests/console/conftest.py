"""Fixtures of the console tests: a real data domain, a real JupyterHub running the console.

``world`` is ``tests/gateway/world.build_world`` at a small scale (ledger, synthetic data in the
domain store, catalog, operators, analysts, four authorizations). ``console_hub`` runs the real
hub over it (``tests/gateway/hubprocess.RealHub``): the hub starts the console as its managed
service on a free port, with hub OAuth, its own token and role, exactly as in production. Its
sandbox prefix is unique to the test session, so the Docker volumes the tests make never meet
real ones. ``authority`` is a hub account in the authority group with a NativeAuthenticator
password; ``outsider`` is one in the regulators group.

``BrowserSession`` logs in through the hub's login form with plain HTTP (httpx), following the
OAuth redirects into the console like a browser; the Chromium tests do the same with Playwright.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import docker
import httpx
import pytest

from hub.console.passwords import NativePasswords
from ledger.cli import log_config
from ledger.entry import decode_entry
from ledger.log import Log
from tests.gateway.hubprocess import HubAdmin, RealHub
from tests.gateway.world import World, build_world

OUTPUT = Path(__file__).resolve().parents[1] / "output" / "console"
PREFIX = f"shuyu-test-{secrets.token_hex(3)}"


@dataclass
class Account:
    name: str
    password: str


@pytest.fixture(scope="session")
def console_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("SHUYU_")}
    try:
        return build_world(tmp_path_factory.mktemp("console-world"), scale=300)
    finally:
        os.environ.update(saved)


@pytest.fixture(scope="session")
def console_hub(console_world: World) -> Iterator[RealHub]:
    hub = RealHub.start(console_world.data_dir, {
        "SHUYU_CONSOLE_AUTH_CACHE_SECONDS": "0",
        "SHUYU_CONSOLE_SWEEP_INTERVAL_SECONDS": "0",
        "SHUYU_SANDBOX_PREFIX": PREFIX,
        "SHUYU_LEDGER__BATCH_MAX_AGE_MS": "0",
    })
    try:
        _wait_console(hub)
        yield hub
    finally:
        hub.stop()
        _remove_test_volumes()


def _wait_console(hub: RealHub, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            try:
                if client.get(hub.console_url + "health").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
    raise RuntimeError(f"the console did not start:\n{hub.log_tail()}")


def _remove_test_volumes() -> None:
    try:
        client = docker.from_env()
    except docker.errors.DockerException:
        return
    for v in client.volumes.list(filters={"name": PREFIX}):
        v.remove(force=True)
    client.close()


@pytest.fixture(scope="session")
def console_admin(console_hub: RealHub) -> Iterator[HubAdmin]:
    admin = console_hub.admin()
    yield admin
    admin.close()


def make_account(hub: RealHub, admin: HubAdmin, name: str, group: str) -> Account:
    admin.create_user(name)
    admin.add_to_group(group, name)
    passwords = NativePasswords(f"sqlite:///{hub_db(hub)}")
    try:
        return Account(name, passwords.set_initial_password(name))
    finally:
        passwords.close()


def hub_db(hub: RealHub) -> Path:
    return Path(hub.log_path).parents[1] / "hub" / "jupyterhub.sqlite"


@pytest.fixture(scope="session")
def authority(console_hub: RealHub, console_admin: HubAdmin) -> Account:
    return make_account(console_hub, console_admin, "zhang.wei", "authority")


@pytest.fixture(scope="session")
def outsider(console_hub: RealHub, console_admin: HubAdmin) -> Account:
    return make_account(console_hub, console_admin, "reg.li", "regulators")


class BrowserSession:
    """A person's browser as plain HTTP: cookies kept, redirects followed."""

    def __init__(self, hub: RealHub):
        self.hub = hub
        self.http = httpx.Client(base_url=hub.public_url, follow_redirects=True, timeout=60.0,
                                 trust_env=False)

    def close(self) -> None:
        self.http.close()

    def login(self, account: Account) -> httpx.Response:
        """The hub's login form, then on to the console through the OAuth redirects."""
        page = self.http.get("/hub/login")
        page.raise_for_status()
        xsrf = next((c.value for c in self.http.cookies.jar if c.name == "_xsrf"), "")
        r = self.http.post("/hub/login", data={"username": account.name,
                                               "password": account.password, "_xsrf": xsrf},
                           params={"next": "/services/console/"})
        return r

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get("/services/console/" + path.lstrip("/"), **kw)

    def csrf(self, path: str) -> str:
        page = self.get(path)
        page.raise_for_status()
        found = re.search(r'name="_csrf" value="([^"]+)"', page.text)
        assert found, f"no form token on {path}"
        return found.group(1)

    def post(self, path: str, data: Any, **kw: Any) -> httpx.Response:
        """POST a form; `data` is a dict or a list of (name, value) pairs (repeated names)."""
        if isinstance(data, list):
            fields: dict[str, list[str]] = {}
            for name, value in data:
                fields.setdefault(name, []).append(value)
            data = fields
        return self.http.post("/services/console/" + path.lstrip("/"), data=data, **kw)


@pytest.fixture
def session(console_hub: RealHub) -> Iterator[BrowserSession]:
    s = BrowserSession(console_hub)
    yield s
    s.close()


def ledger_entries(world: World) -> list[dict[str, Any]]:
    """Every entry of the world's ledger, decoded, oldest first."""
    log = Log.open(log_config(world.settings))
    try:
        return [decode_entry(bytes(data)) for _, data, _ in log.store.iter_entries()]
    finally:
        log.close()


def docker_client() -> Any:
    return docker.from_env()
