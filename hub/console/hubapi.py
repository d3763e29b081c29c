"""The hub's REST API as the console uses it, with the console's own service token.

The console's role (``shuyu-console`` in ``hub/jupyterhub_config.py``) lets it create users,
put them in the analysts group, read users and stop analysts' servers; nothing else. Every
failure becomes ``HubUnavailable`` (not reachable) or ``HubRefused`` (an error answer), with
the request named and never the token.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import httpx

from hub.console.errors import HubRefused, HubUnavailable

STOP_TIMEOUT = 120.0


class HubApi:
    def __init__(self, api_url: str, token: str, timeout: float = 10.0,
                 client: httpx.Client | None = None):
        self.api_url = api_url.rstrip("/")
        self._http = client or httpx.Client(
            timeout=timeout, trust_env=False, headers={"Authorization": f"token {token}"})

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, ok: tuple[int, ...] = (200, 201, 202, 204),
              **kw: Any) -> httpx.Response:
        try:
            r = self._http.request(method, f"{self.api_url}{path}", **kw)
        except httpx.HTTPError as e:
            raise HubUnavailable(f"cannot reach the hub for {method} {path} "
                                 f"({type(e).__name__}); nothing was changed there") from None
        if r.status_code not in ok:
            raise HubRefused(f"the hub refused {method} {path}: {r.status_code} "
                             f"{_message(r)}")
        return r

    def get_user(self, name: str) -> dict[str, Any] | None:
        r = self._call("GET", f"/users/{quote(name, safe='')}", ok=(200, 404))
        return r.json() if r.status_code == 200 else None

    def create_user(self, name: str) -> bool:
        """Create the hub user; False when it existed already."""
        r = self._call("POST", f"/users/{quote(name, safe='')}", ok=(201, 409))
        return r.status_code == 201

    def add_to_group(self, group: str, user: str) -> None:
        self._call("POST", f"/groups/{quote(group, safe='')}/users", json={"users": [user]})

    def running_servers(self, name: str) -> list[str]:
        """Names of the user's servers that run or are starting ("" is the default one)."""
        user = self.get_user(name)
        if user is None:
            return []
        return sorted((user.get("servers") or {}).keys())

    def stop_servers(self, name: str, timeout: float = STOP_TIMEOUT) -> list[str]:
        """Stop every server of the user and wait until the hub says they are gone."""
        servers = self.running_servers(name)
        for server in servers:
            path = f"/users/{quote(name, safe='')}/server"
            if server:
                path = f"/users/{quote(name, safe='')}/servers/{quote(server, safe='')}"
            self._call("DELETE", path, ok=(202, 204, 400, 404))
        deadline = time.monotonic() + timeout
        while servers and self.running_servers(name):
            if time.monotonic() > deadline:
                raise HubRefused(f"the hub did not stop {name}'s server within {timeout:.0f} s")
            time.sleep(0.5)
        return servers


def _message(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text[:200]
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"][:200]
    return str(body)[:200]
