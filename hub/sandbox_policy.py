"""What a sandbox container may be: the checks the spawner runs on every container it creates.

Pure functions over the arguments the spawner is about to hand to Docker, so they are tested
without an engine. Each raises :class:`SandboxRefused` with a message for the analyst and a
``reason`` label for logs and metrics:

- ``check_mounts``: no host path inside the data directory (raw data, keys, ledger) or holding
  it, no Docker socket, no host path outside an explicit allow-list; named volumes only;
- ``check_host_config``: read-only root, every capability dropped, no-new-privileges, not
  privileged, no devices, pids / memory / CPU limits, the internal network and nothing else;
- ``check_network``: the sandbox network exists, is internal (no route out) and has a gateway.

The hardening itself is :func:`hardened_host_config`; the checks read the final arguments, so a
later layer of configuration that weakens them is refused rather than obeyed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from jupyterhub.spawner import SpawnException

DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock", "/run/containerd",
                  "/var/run/containerd")
SANDBOX_USER = "1000:1000"
HOME = "/home/analyst"
WORK_DIR = f"{HOME}/work"


class SandboxRefused(SpawnException):
    """A sandbox was not started because policy forbids it; the message is shown to the user."""

    def __init__(self, message: str, *, reason: str, log_message: str = "",
                 status_code: int = 403):
        super().__init__(message, reason=reason, log_message=log_message,
                         status_code=status_code)
        self.jupyterhub_message = message


@dataclass(frozen=True)
class Limits:
    """Resources of one sandbox: memory (Docker size string), CPUs, processes, tmpfs sizes."""

    memory: str = "2g"
    cpus: float = 1.0
    pids: int = 256
    tmp_size: str = "512m"
    home_size: str = "256m"


def hardened_host_config(network: str, limits: Limits) -> dict[str, Any]:
    """The Docker host config every sandbox runs with (see sandbox_image/README.md)."""
    return {
        "read_only": True,
        "tmpfs": {
            "/tmp": f"rw,nosuid,nodev,noexec,size={limits.tmp_size}",
            HOME: f"rw,nosuid,nodev,noexec,size={limits.home_size},uid=1000,gid=1000,mode=0700",
        },
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "privileged": False,
        "pids_limit": limits.pids,
        "network_mode": network,
        "ipc_mode": "private",
        "init": False,
    }


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _resolved(path: str) -> Path:
    return Path(os.path.realpath(path))


def check_mounts(binds: Mapping[str, Mapping[str, Any]], mounts: Iterable[Any],
                 data_dir: Path, allowed_host_paths: Iterable[str] = ()) -> None:
    """Refuse any host path that exposes raw data, keys or the Docker socket.

    `binds` is DockerSpawner's ``volume_binds`` ({source: {"bind": target, "mode": m}}),
    `mounts` its ``mount_binds`` (docker Mount objects or dicts). A source that does not start
    with ``/`` is a named volume and passes here (``check_volume_options`` looks inside it).
    """
    data_root = _resolved(str(data_dir))
    allowed = [_resolved(p) for p in allowed_host_paths]
    sources = [(src, spec.get("bind", "?")) for src, spec in binds.items()]
    for m in mounts:
        kind = _field(m, "type") or "volume"
        if kind == "bind":
            sources.append((_field(m, "source"), _field(m, "target")))
        elif kind not in ("volume", "tmpfs"):
            raise SandboxRefused(
                "Your sandbox was not started: its configuration asks for a mount of type "
                f"{kind!r}, which sandboxes may not have. Tell the platform operator.",
                reason="mount", log_message=f"refused mount type {kind!r}")
    for source, target in sources:
        check_mount_source(str(source), str(target), data_root, allowed)


def _field(mount: Mapping[str, Any], key: str) -> Any:
    """docker.types.Mount spells its keys "Type", "Source"…; config dicts "type", "source"."""
    return mount.get(key, mount.get(key.capitalize()))


def check_mount_source(source: str, target: str, data_root: Path,
                       allowed: list[Path]) -> None:
    if not source.startswith("/"):
        return
    path = _resolved(source)
    why = None
    if _inside(path, data_root) or _inside(data_root, path):
        why = f"host path {source} overlaps the data directory {data_root}"
    elif any(_inside(path, _resolved(s)) or _inside(_resolved(s), path) for s in DOCKER_SOCKETS):
        why = f"host path {source} exposes the container engine"
    elif not any(_inside(path, a) for a in allowed):
        why = f"host path {source} is not on the list of paths sandboxes may mount"
    if why:
        raise SandboxRefused(
            "Your sandbox was not started: its configuration would mount a host directory "
            f"({target}) that sandboxes may not see. Tell the platform operator.",
            reason="mount", log_message=f"refused mount {source} -> {target}: {why}")


def check_volume_options(name: str, options: Mapping[str, Any] | None, data_dir: Path) -> None:
    """A named volume backed by a host directory (``-o bind``) counts as that directory."""
    device = (options or {}).get("device")
    if device and str(device).startswith("/"):
        check_mount_source(str(device), f"volume {name}", _resolved(str(data_dir)),
                           [_resolved(str(device))])


REQUIRED = {
    "read_only": True,
    "privileged": False,
}


def check_host_config(host: Mapping[str, Any], network: str) -> None:
    """The final host config must keep every hardening flag; else nothing starts."""
    problems = [f"{k} must be {v!r}" for k, v in REQUIRED.items() if host.get(k) != v]
    caps = [c.upper() for c in host.get("cap_drop") or []]
    if "ALL" not in caps:
        problems.append("every capability must be dropped (cap_drop ALL)")
    if host.get("cap_add"):
        problems.append(f"no capability may be added (cap_add {host['cap_add']})")
    if not any(str(o).startswith("no-new-privileges") and not str(o).endswith("false")
               for o in host.get("security_opt") or []):
        problems.append("no-new-privileges must be set")
    if any("unconfined" in str(o) for o in host.get("security_opt") or []):
        problems.append("seccomp/apparmor must not be unconfined")
    for key in ("pids_limit", "mem_limit", "cpu_quota"):
        if not host.get(key) or int(_size(host[key])) <= 0:
            problems.append(f"{key} must be a positive limit")
    if host.get("network_mode") != network:
        problems.append(f"network must be {network!r}, not {host.get('network_mode')!r}")
    for key in ("devices", "device_requests", "port_bindings", "links", "extra_hosts",
                "volumes_from"):
        if host.get(key):
            problems.append(f"{key} must be empty")
    for key in ("pid_mode", "userns_mode", "uts_mode", "cgroupns"):
        if str(host.get(key) or "").lower() == "host":
            problems.append(f"{key} must not be 'host'")
    if str(host.get("ipc_mode") or "").lower() in ("host", "shareable"):
        problems.append("ipc_mode must be private")
    if problems:
        raise SandboxRefused(
            "Your sandbox was not started: the platform's sandbox settings are not safe. "
            "Tell the platform operator.",
            reason="hardening", log_message="refused host config: " + "; ".join(problems))


def _size(value: Any) -> float:
    text = str(value).strip().lower()
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    if text and text[-1] == "b":
        text = text[:-1]
    if text and text[-1] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)


@dataclass(frozen=True)
class NetworkInfo:
    """The sandbox network as the host sees it."""

    name: str
    bridge: str
    subnet: str
    gateway: str


def check_network(name: str, inspected: Mapping[str, Any] | None) -> NetworkInfo:
    """The network `name` (``docker network inspect`` output) must be internal with a gateway."""
    if inspected is None:
        raise SandboxRefused(
            "Your sandbox was not started: the sandbox network is missing. Tell the platform "
            "operator (make up creates it).", reason="network", status_code=503,
            log_message=f"docker network {name!r} does not exist")
    if inspected.get("Internal") is not True:
        raise SandboxRefused(
            "Your sandbox was not started: the sandbox network is not isolated. Tell the "
            "platform operator.", reason="network", status_code=503,
            log_message=f"docker network {name!r} is not internal (created without --internal)")
    configs = (inspected.get("IPAM") or {}).get("Config") or []
    ipv4 = [c for c in configs if c.get("Gateway") and ":" not in c.get("Gateway", "")]
    if not ipv4:
        raise SandboxRefused(
            "Your sandbox was not started: the sandbox network has no gateway address.",
            reason="network", status_code=503,
            log_message=f"docker network {name!r} has no IPv4 gateway in its IPAM config")
    options = inspected.get("Options") or {}
    bridge = options.get("com.docker.network.bridge.name") or f"br-{inspected['Id'][:12]}"
    return NetworkInfo(name, bridge, ipv4[0].get("Subnet", ""), ipv4[0]["Gateway"])
