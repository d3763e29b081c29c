"""A real JupyterHub for tests: a subprocess on loopback ports, the gateway as its managed service.

``RealHub.start(data_dir, …)`` writes a small config that loads ``hub/jupyterhub_config.py``
(the production base config) and adds only a test administrator service with a random token,
then runs ``jupyterhub`` with the real configurable-http-proxy on random free 127.0.0.1 ports.
The hub itself starts the gateway (``python -m hub.gateway``) over the data directory. The
harness waits until the proxy routes ``/services/gateway/health`` to a live gateway.

``HubAdmin`` drives the hub's REST API with the administrator token: users, groups and API
tokens are made exactly as an operator of the system would make them.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
BASE_CONFIG = REPO / "hub" / "jupyterhub_config.py"
START_TIMEOUT = 90.0


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


TEST_CONFIG = """\
c = get_config()  # noqa: F821
load_subconfig({base!r})  # noqa: F821
c.JupyterHub.services.append({{"name": "test-admin", "api_token": {token!r}}})
c.JupyterHub.load_roles.append({{
    "name": "test-admin", "services": ["test-admin"],
    "scopes": ["admin:users", "admin:groups", "tokens", "list:users", "read:users"],
}})
c.JupyterHub.log_level = "INFO"
"""


@dataclass
class RealHub:
    process: subprocess.Popen
    public_url: str
    api_url: str
    admin_token: str
    log_path: Path
    gateway_port: int = 0

    @property
    def gateway_url(self) -> str:
        return f"{self.public_url}/services/gateway/"

    @property
    def console_url(self) -> str:
        return f"{self.public_url}/services/console/"

    @property
    def ledger_url(self) -> str:
        return f"{self.public_url}/services/ledger/"

    @classmethod
    def start(cls, data_dir: Path, gateway_env: dict[str, str] | None = None) -> "RealHub":
        port, api_port, proxy_api_port, gateway_port, console_port, ledger_port, actions_port = (
            free_ports(7))
        token = secrets.token_hex(32)
        run_dir = data_dir / "hub-run"
        run_dir.mkdir(parents=True, exist_ok=True)
        config = run_dir / "test_jupyterhub_config.py"
        config.write_text(TEST_CONFIG.format(base=str(BASE_CONFIG), token=token))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SHUYU_", "JUPYTERHUB_"))}
        env.update({
            "SHUYU_DATA_DIR": str(data_dir),
            "SHUYU_HUB_PORT": str(port),
            "SHUYU_HUB_API_PORT": str(api_port),
            "SHUYU_HUB_PROXY_API_PORT": str(proxy_api_port),
            "SHUYU_GATEWAY_PORT": str(gateway_port),
            "SHUYU_CONSOLE_PORT": str(console_port),
            "SHUYU_LEDGER__PORT": str(ledger_port),
            "SHUYU_REGULATOR_PORT": str(actions_port),
            "SHUYU_HUB_SANDBOXES": "off",  # no spawner layer: these tests need no Docker
            "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}",
            **(gateway_env or {}),
        })
        log_path = run_dir / "jupyterhub.log"
        log = open(log_path, "wb")
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "jupyterhub"), "-f", str(config)],
            cwd=run_dir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        hub = cls(process, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/hub/api", token,
                  log_path, int(env["SHUYU_GATEWAY_PORT"]))
        try:
            hub._wait_ready()
        except BaseException:
            hub.stop()
            raise
        return hub

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"jupyterhub exited with {self.process.returncode}:\n"
                                       f"{self.log_tail()}")
                try:
                    hub = client.get(self.api_url + "/")
                    gw = client.get(self.gateway_url + "health")
                    if hub.status_code == 200 and gw.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.25)
        raise RuntimeError(f"jupyterhub or the gateway did not start within {START_TIMEOUT:.0f} s"
                           f":\n{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def admin(self) -> "HubAdmin":
        return HubAdmin(self.api_url, self.admin_token)


class HubAdmin:
    """The hub's REST API as an administrator uses it."""

    def __init__(self, api_url: str, token: str):
        self.client = httpx.Client(base_url=api_url, timeout=10.0, trust_env=False,
                                   headers={"Authorization": f"token {token}"})

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        r = self.client.request(method, path, **kw)
        if r.status_code >= 400:
            raise RuntimeError(f"hub {method} {path}: {r.status_code} {r.text}")
        return r.json() if r.content else None

    def create_user(self, name: str) -> None:
        r = self.client.post(f"/users/{name}")
        if r.status_code not in (201, 409):
            raise RuntimeError(f"hub POST /users/{name}: {r.status_code} {r.text}")

    def add_to_group(self, group: str, *users: str) -> None:
        self._call("POST", f"/groups/{group}/users", json={"users": list(users)})

    def remove_from_group(self, group: str, *users: str) -> None:
        self._call("DELETE", f"/groups/{group}/users", json={"users": list(users)})

    def create_token(self, user: str, scopes: list[str] | None = None,
                     note: str = "test") -> tuple[str, str]:
        body: dict[str, Any] = {"note": note}
        if scopes is not None:
            body["scopes"] = scopes
        model = self._call("POST", f"/users/{user}/tokens", json=body)
        return model["token"], model["id"]

    def revoke_token(self, user: str, token_id: str) -> None:
        self._call("DELETE", f"/users/{user}/tokens/{token_id}")

    def close(self) -> None:
        self.client.close()
