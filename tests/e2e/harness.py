"""The whole system for end-to-end tests: real Docker, a real hub with the hardened spawner.

``SandboxNet.create()`` makes an internal Docker network of the test's own (its bridge
interface named ``shuyu-e<hex>``) and ``apply_firewall`` confines it with the production script
``deploy/firewall/shuyu-firewall.sh``. ``SystemHub.start()`` runs ``jupyterhub -f`` the
production config (``hub/jupyterhub_config.py``: the hub-managed services, among them the
ledger service with the sequencer, and the sandbox layer of ``hub/spawner.py``) plus a test
administrator service, on free ports, with the proxy and the hub listening on all addresses as
in production. Accounts are made before the hub
starts, with ``hub.accounts.ensure_account`` as ``make up`` makes them.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.gateway.hubprocess import free_ports

REPO = Path(__file__).resolve().parents[2]
BASE_CONFIG = REPO / "hub" / "jupyterhub_config.py"
FIREWALL = REPO / "deploy" / "firewall" / "shuyu-firewall.sh"
TEST_LABEL = "org.shuyu.test=e2e"
START_TIMEOUT = 120.0

TEST_CONFIG = """\
c = get_config()  # noqa: F821
load_subconfig({base!r})  # noqa: F821
c.JupyterHub.services.append({{"name": "test-admin", "api_token": {token!r}}})
c.JupyterHub.load_roles.append({{
    "name": "test-admin", "services": ["test-admin"],
    "scopes": ["admin:users", "admin:groups", "admin:servers", "tokens", "list:users",
               "read:users", "admin:server_state"],
}})
c.JupyterHub.log_level = "INFO"
"""


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                          check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])} failed: {proc.stderr.strip()}")
    return proc


def children_of(pid: int) -> list[int]:
    """The pids whose parent is `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def alive(pids: list[int]) -> list[int]:
    """Those of `pids` that still run (zombies count as ended)."""
    running = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            running.append(pid)
    return running


@dataclass
class SandboxNet:
    name: str
    bridge: str
    gateway: str
    subnet: str

    @classmethod
    def create(cls, internal: bool = True, prefix: str = "e") -> "SandboxNet":
        tag = secrets.token_hex(4)
        name, bridge = f"shuyu-test-{prefix}{tag}", f"shuyu-{prefix}{tag}"
        flags = ["--internal"] if internal else []
        docker("network", "create", *flags, "--label", TEST_LABEL,
               "-o", f"com.docker.network.bridge.name={bridge}", name)
        ipam = docker("network", "inspect", name, "-f",
                      "{{(index .IPAM.Config 0).Gateway}} {{(index .IPAM.Config 0).Subnet}}")
        gateway, subnet = ipam.stdout.split()
        return cls(name, bridge, gateway, subnet)

    def firewall(self, verb: str, ports: list[int] | None = None) -> subprocess.CompletedProcess:
        args = [str(FIREWALL), verb, "--bridge", self.bridge]
        if verb != "remove":
            args += ["--gateway", self.gateway, "--ports", ",".join(map(str, ports or []))]
        return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)

    def remove(self) -> None:
        self.firewall("remove")
        containers = docker("ps", "-aq", "--filter", f"network={self.name}", check=False)
        for cid in containers.stdout.split():
            docker("rm", "-f", cid, check=False)
        docker("network", "rm", self.name, check=False)


@dataclass
class Ports:
    public: int
    api: int
    proxy_api: int
    gateway: int
    ledger: int
    review: int
    console: int
    regulator: int

    @classmethod
    def free(cls) -> "Ports":
        return cls(*free_ports(8))


class Process:
    """A child process in its own session, logging to a file."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, log_path: Path):
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 80) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 30) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def base_env(data_dir: Path, ports: Ports, net: SandboxNet, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHUYU_", "JUPYTERHUB_"))}
    env.update({
        "SHUYU_DATA_DIR": str(data_dir),
        "SHUYU_HUB_IP": "0.0.0.0",
        "SHUYU_HUB_PORT": str(ports.public),
        "SHUYU_HUB_API_PORT": str(ports.api),
        "SHUYU_HUB_PROXY_API_PORT": str(ports.proxy_api),
        "SHUYU_GATEWAY_PORT": str(ports.gateway),
        "SHUYU_LEDGER__PORT": str(ports.ledger),
        "SHUYU_REVIEW_PORT": str(ports.review),
        "SHUYU_CONSOLE_PORT": str(ports.console),
        "SHUYU_REGULATOR_PORT": str(ports.regulator),
        "SHUYU_LEDGER__BATCH_MAX_AGE_MS": "0",
        "SHUYU_SANDBOX_NETWORK": net.name,
        "SHUYU_SANDBOX_MEMORY": "1G",
        "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}",
        **extra,
    })
    return env


@dataclass
class SystemHub:
    """The hub and every service it manages (gateway, review, console, ledger, regulator,
    watchdog), configured as in production."""

    hub: Process
    ports: Ports
    net: SandboxNet
    admin_token: str
    data_dir: Path
    extra_env: dict[str, str]

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.public}"

    @property
    def api_url(self) -> str:
        return f"{self.public_url}/hub/api"

    @classmethod
    def start(cls, data_dir: Path, net: SandboxNet, extra_env: dict[str, str] | None = None,
              ports: Ports | None = None) -> "SystemHub":
        ports = ports or Ports.free()
        token = secrets.token_hex(32)
        run_dir = data_dir / "hub-run"
        run_dir.mkdir(parents=True, exist_ok=True)
        config = run_dir / "e2e_jupyterhub_config.py"
        config.write_text(TEST_CONFIG.format(base=str(BASE_CONFIG), token=token))
        env = base_env(data_dir, ports, net, extra_env or {})
        hub = Process([str(Path(sys.executable).parent / "jupyterhub"), "-f", str(config)], env,
                      run_dir, run_dir / "jupyterhub.log")
        system = cls(hub, ports, net, token, data_dir, dict(extra_env or {}))
        try:
            system.wait_ready()
        except BaseException:
            system.stop()
            raise
        return system

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        urls = [self.api_url + "/", f"{self.public_url}/services/gateway/health",
                f"{self.public_url}/services/ledger/checkpoint"]
        with httpx.Client(timeout=3.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                if not self.hub.alive():
                    raise RuntimeError(f"jupyterhub exited:\n{self.hub.log_tail()}")
                try:
                    if all(client.get(u).status_code == 200 for u in urls):
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
        raise RuntimeError(f"the system did not start in {START_TIMEOUT:.0f} s:\n"
                           f"{self.hub.log_tail()}")

    def crash(self) -> list[int]:
        """SIGKILL the hub's process group: no clean-up runs. The managed services run in
        sessions of their own; their pids are returned (they must end with the hub). The proxy
        is left out: JupyterHub keeps it across hub restarts (the new hub takes it over or
        replaces it through its pid file)."""
        services: list[int] = []
        if self.hub.alive():
            services = [p for p in children_of(self.hub.proc.pid)
                        if b"configurable-http-proxy" not in _cmdline(p)]
            os.killpg(self.hub.proc.pid, signal.SIGKILL)
            self.hub.proc.wait(timeout=30)
        return services

    def restarted(self) -> "SystemHub":
        """The same hub again (same data, ports, network and settings)."""
        return SystemHub.start(self.data_dir, self.net, self.extra_env, self.ports)

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.api_url + "/", timeout=30.0, trust_env=False,
                            headers={"Authorization": f"token {self.admin_token}"})

    def server(self, user: str) -> dict[str, Any] | None:
        with self.admin() as client:
            r = client.get(f"users/{user}")
            r.raise_for_status()
            return (r.json().get("servers") or {}).get("")

    def stop(self) -> None:
        self.hub.stop(timeout=60)
