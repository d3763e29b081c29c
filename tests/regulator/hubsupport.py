"""A real JupyterHub over a regulator history, with the ledger and regulator actions services.

``start_hub(history)`` runs ``tests/gateway/hubprocess.RealHub``: the hub starts, from the
production config, the gateway, the ledger service (``python -m ledger.service``, which owns the
log's sequencer and serves the console under ``/services/ledger/``) and the regulator actions
service (``/services/regulator/``). ``Person`` is a browser as plain HTTP that logs in through
the hub's login form and follows the OAuth redirects; accounts get NativeAuthenticator passwords
in the hub's own database, as the authority console makes them.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from hub.console.passwords import NativePasswords
from tests.gateway.hubprocess import HubAdmin, RealHub


@dataclass
class Account:
    name: str
    password: str


def start_hub(data_dir: Path) -> RealHub:
    hub = RealHub.start(data_dir, {"SHUYU_LEDGER__BATCH_MAX_AGE_MS": "0",
                                   "SHUYU_GATEWAY_AUTH_CACHE_SECONDS": "0",
                                   "SHUYU_SANDBOX_PREFIX": f"shuyu-test-{secrets.token_hex(3)}"})
    try:
        wait_for(hub, ["services/ledger/checkpoint", "services/regulator/health"])
    except BaseException:
        hub.stop()
        raise
    return hub


def wait_for(hub: RealHub, paths: list[str], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        for path in paths:
            while True:
                try:
                    if client.get(f"{hub.public_url}/{path}").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{path} did not answer:\n{hub.log_tail()}")
                time.sleep(0.25)


def make_account(hub: RealHub, admin: HubAdmin, name: str, group: str) -> Account:
    admin.create_user(name)
    admin.add_to_group(group, name)
    passwords = NativePasswords(f"sqlite:///{Path(hub.log_path).parents[1] / 'hub' / 'jupyterhub.sqlite'}")
    try:
        return Account(name, passwords.set_initial_password(name))
    finally:
        passwords.close()


class Person:
    """A browser as plain HTTP: cookies kept, redirects followed."""

    def __init__(self, hub: RealHub):
        self.hub = hub
        self.http = httpx.Client(base_url=hub.public_url, follow_redirects=True, timeout=60.0,
                                 trust_env=False)

    def close(self) -> None:
        self.http.close()

    def login(self, account: Account, next_url: str) -> httpx.Response:
        self.http.get("/hub/login").raise_for_status()
        xsrf = next((c.value for c in self.http.cookies.jar if c.name == "_xsrf"), "")
        return self.http.post("/hub/login", data={"username": account.name,
                                                  "password": account.password, "_xsrf": xsrf},
                              params={"next": next_url})

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, **kw)

    def post(self, path: str, data: Any, **kw: Any) -> httpx.Response:
        return self.http.post(path, data=data, **kw)


def form_token(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "the page has no form token"
    return found.group(1)
