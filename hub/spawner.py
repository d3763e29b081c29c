"""The hardened sandbox spawner: DockerSpawner on an internal network, gated by the catalog and
the ledger.

``configure_spawner(c, opts)`` is the layer ``hub/jupyterhub_config.py`` applies after its base
config. It makes :class:`ShuyuSpawner` the hub's spawner and installs the session hooks:

- ``pre_spawn_hook``: only members of the analysts group get a sandbox; the image must be the
  allowed one; the analyst must hold an authorization in force (``check_user_can_work``); then
  ``session.open`` is written to the ledger. Any refusal raises :class:`SandboxRefused` with a
  message for the analyst, and is itself recorded (``session.refused``). No ledger, no server.
- ``post_stop_hook``: ``session.close``. Hook errors are swallowed by JupyterHub, so a close
  that fails stays open in the session book and the watchdog (``hub/watchdog.py``) closes it.

Every container the spawner creates is checked first (``hub/sandbox_policy.py``): read-only
root with tmpfs home and /tmp, all capabilities dropped, no-new-privileges, pids / memory / CPU
limits, the internal network only, non-root user, no host path into the data directory and no
Docker socket, the per-user work volume. The sandbox network must exist and be internal, and
the host firewall (``deploy/firewall/shuyu-firewall.sh``) must be in place for its bridge;
else nothing starts.

Sandboxes reach the hub API, the proxy and the query gateway at the network's gateway address
(the host), so the hub, the proxy and the gateway listen on all addresses; the firewall lets the
sandbox bridge reach those three ports and nothing else on the host. The client calls the
gateway at its own port rather than through the proxy (one hop fewer per query); the gateway
answers there exactly what it answers behind the proxy, each request checked against the hub.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker.errors
from dockerspawner import DockerSpawner
from dockerspawner.dockerspawner import _deep_merge
from jupyterhub import orm
from traitlets import Float, Int, List, Unicode, default

from hub.sandbox_policy import (
    SANDBOX_USER,
    WORK_DIR,
    Limits,
    NetworkInfo,
    SandboxRefused,
    check_host_config,
    check_mounts,
    check_network,
    check_volume_options,
    hardened_host_config,
)
from hub.sessions import CloseReason, OpenRequest, SessionBook, SessionLedgerError

if TYPE_CHECKING:
    from hub.catalog.service import OpenedCatalog
    from hub.jupyterhub_config import HubOptions

REPO = Path(__file__).resolve().parents[1]
FIREWALL_SCRIPT = REPO / "deploy" / "firewall" / "shuyu-firewall.sh"
DEFAULT_IMAGE = "shuyu-sandbox:latest"
DEFAULT_NETWORK = "shuyu-sandbox"
ANALYSTS_GROUP = "analysts"
LABEL = "org.shuyu.sandbox"


REMOVAL_WAIT = 60.0  # seconds a start waits for the engine to finish removing an old container


class ShuyuSpawner(DockerSpawner):
    """DockerSpawner that creates only hardened sandbox containers (see the module docstring)."""

    data_dir = Unicode(
        help="The data directory (raw data, keys, ledger). No host path inside it, or holding "
        "it, is ever mounted into a sandbox; a configured mount that would be is refused.",
    ).tag(config=True)
    allowed_host_paths = List(
        Unicode(), [],
        help="Host directories sandboxes may bind-mount (read-only volumes of reference files, "
        "for instance). Empty: no host path at all, only named volumes.",
    ).tag(config=True)
    pids_limit = Int(256, help="Most processes (and threads) in one sandbox.").tag(config=True)
    tmp_size = Unicode("512m", help="Size of the /tmp tmpfs (Docker size: 512m, 1g).").tag(
        config=True)
    home_size = Unicode("256m", help="Size of the tmpfs over /home/analyst (the work volume "
                        "is mounted on top at /home/analyst/work).").tag(config=True)
    proxy_port = Int(
        8000, help="Port of the proxy, reached by sandboxes at the sandbox network's gateway "
        "address; the client's SHUYU_GATEWAY_URL is built from it.").tag(config=True)
    gateway_port = Int(
        0, help="Port of the query gateway, reached by sandboxes at the sandbox network's "
        "gateway address, where the gateway listens beside the proxy: the client's "
        "SHUYU_GATEWAY_URL points there, and the firewall check expects the port open. "
        "0: the client goes through the proxy.").tag(config=True)
    sandbox_url = Unicode(
        "", help="Base URL of the proxy as sandboxes reach it; empty: "
        "http://<sandbox network gateway>:<proxy_port>.").tag(config=True)
    firewall_check = List(
        Unicode(), [str(FIREWALL_SCRIPT), "check"],
        help="Command that exits 0 only when the host firewall confines the sandbox bridge; "
        "'--bridge B --gateway IP --ports P,Q' are appended. Empty list: no check (for hosts "
        "where the firewall is outside this machine's control, e.g. Kubernetes).",
    ).tag(config=True)
    sandbox_prefix = Unicode(
        "shuyu", help="Names this hub's sandboxes (containers <prefix>-sandbox-<user>, volumes "
        "<prefix>-work-<user>) and labels them, so that the watchdog of one hub never touches "
        "another's containers on a shared engine.").tag(config=True)
    firewall_check_seconds = Float(
        30.0, help="A passed firewall check is trusted for this long, seconds.").tag(config=True)

    _firewall_ok_until: dict[str, float] = {}
    _firewall_lock = threading.Lock()

    @default("image")
    def _default_image(self) -> str:
        return DEFAULT_IMAGE

    @default("network_name")
    def _default_network(self) -> str:
        return DEFAULT_NETWORK

    @property
    def limits(self) -> Limits:
        return Limits(memory=str(self.mem_limit or 2 << 30), cpus=float(self.cpu_limit or 1.0),
                      pids=self.pids_limit, tmp_size=self.tmp_size, home_size=self.home_size)

    @property
    def shuyu_session(self) -> str | None:
        return getattr(self, "_shuyu_session", None)

    @shuyu_session.setter
    def shuyu_session(self, key: str | None) -> None:
        self._shuyu_session = key

    # --- state (the session key survives a hub restart) ------------------------------------

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.shuyu_session = state.get("shuyu_session") or self.shuyu_session

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.shuyu_session:
            state["shuyu_session"] = self.shuyu_session
        return state

    # clear_state() leaves the session key alone: DockerSpawner.stop() clears the state before
    # the hub runs post_stop_hook, which needs the key to write session.close (and drops it).

    # --- checks before start -------------------------------------------------------------

    def allowed_image_names(self) -> list[str]:
        allowed = self._get_allowed_images()
        if allowed == "*":
            raise SandboxRefused("Sandboxes are misconfigured (any image allowed).",
                                 reason="image", log_message="allowed_images is '*'")
        return list(allowed) if allowed else [self.image]

    def requested_image(self) -> str:
        return str(self.user_options.get("image") or self.image)

    def check_image_allowed(self) -> str:
        image = self.requested_image()
        allowed = self.allowed_image_names()
        if image not in allowed:
            raise SandboxRefused(
                f"Your sandbox was not started: image {image!r} is not allowed; sandboxes run "
                f"{', '.join(allowed)} only.", reason="image", status_code=400)
        return image

    async def sandbox_network(self) -> NetworkInfo:
        try:
            inspected = await self.docker("inspect_network", self.network_name)
        except docker.errors.NotFound:
            inspected = None
        return check_network(self.network_name, inspected)

    def firewall_ports(self) -> list[int]:
        ports = {int(self.proxy_port), int(self.hub.port)}
        if self.gateway_port:
            ports.add(int(self.gateway_port))
        return sorted(ports)

    async def check_firewall(self, net: NetworkInfo) -> None:
        if not self.firewall_check:
            return
        ports = ",".join(str(p) for p in self.firewall_ports())
        key = f"{net.bridge} {net.gateway} {ports}"
        loop = asyncio.get_running_loop()
        if self._firewall_ok_until.get(key, 0) > loop.time():
            return
        cmd = [*self.firewall_check, "--bridge", net.bridge, "--gateway", net.gateway,
               "--ports", ports]
        proc = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True,
                                       timeout=30, check=False)
        if proc.returncode != 0:
            raise SandboxRefused(
                "Your sandbox was not started: the host firewall that isolates sandboxes is not "
                "in place. Tell the platform operator.", reason="firewall", status_code=503,
                log_message=f"firewall check failed ({' '.join(cmd)}): "
                f"{(proc.stderr or proc.stdout).strip()}")
        with self._firewall_lock:
            self._firewall_ok_until[key] = loop.time() + self.firewall_check_seconds

    async def ensure_work_volume(self, name: str) -> None:
        """Create the analyst's work volume owned by the sandbox user (the engine would make
        an empty root-owned one, which the non-root user cannot write)."""
        try:
            volume = await self.docker("inspect_volume", name)
        except docker.errors.NotFound:
            volume = await self.docker("create_volume", name=name, driver="local",
                                       labels={LABEL: "1", f"{LABEL}.user": self.user.name})
        check_volume_options(name, volume.get("Options"), Path(self.data_dir))
        mountpoint = Path(volume.get("Mountpoint") or "")
        uid, gid = (int(x) for x in SANDBOX_USER.split(":"))
        if mountpoint.is_dir():  # the hub runs beside the engine, as root
            stat = mountpoint.stat()
            if (stat.st_uid, stat.st_gid) != (uid, gid):
                os.chown(mountpoint, uid, gid)
                mountpoint.chmod(0o700)
            return
        raise SandboxRefused(
            "Your sandbox was not started: your work volume is not ready. Tell the platform "
            "operator.", reason="volume", status_code=503,
            log_message=f"volume {name}: mountpoint {mountpoint} is not on this host, so the "
            f"hub cannot give it to {SANDBOX_USER}; pre-create it with that owner")

    async def check_named_volumes(self, binds: dict[str, Any]) -> None:
        for source in binds:
            if source.startswith("/"):
                continue
            try:
                volume = await self.docker("inspect_volume", source)
            except docker.errors.NotFound:
                continue  # created empty by the engine at start
            check_volume_options(source, volume.get("Options"), Path(self.data_dir))

    # --- start and create ------------------------------------------------------------------

    def sandbox_base_url(self, net: NetworkInfo) -> str:
        return (self.sandbox_url or f"http://{net.gateway}:{self.proxy_port}").rstrip("/")

    def sandbox_gateway_url(self, net: NetworkInfo) -> str:
        """The gateway as the client reaches it: straight at its port on the sandbox network's
        gateway address, or through the proxy when no port is set or the proxy's address was
        configured (a proxy elsewhere, TLS in front of it)."""
        if self.gateway_port and not self.sandbox_url:
            return f"http://{net.gateway}:{self.gateway_port}/services/gateway/"
        return f"{self.sandbox_base_url(net)}/services/gateway/"

    async def start(self) -> Any:
        if not self.data_dir:
            raise SandboxRefused("Sandboxes are misconfigured (no data directory).",
                                 reason="config", log_message="ShuyuSpawner.data_dir is empty")
        self.check_image_allowed()
        net = await self.sandbox_network()
        await self.check_firewall(net)
        self.hub_connect_url = f"http://{net.gateway}:{self.hub.port}"
        base = self.sandbox_base_url(net)
        self.environment = {
            **self.environment,
            "SHUYU_GATEWAY_URL": self.sandbox_gateway_url(net),
            "SHUYU_REVIEW_URL": f"{base}/services/review/",
        }
        return await super().start()

    async def remove_object(self) -> None:
        """Remove the container and wait until it is gone.

        DockerSpawner treats "removal already in progress" (the engine auto-removing a container
        that just died) as done; creating the new container under the same name at that moment
        fails, so the start waits for the old one to disappear first.
        """
        await super().remove_object()
        deadline = asyncio.get_running_loop().time() + REMOVAL_WAIT
        while await self.get_object() is not None:
            if asyncio.get_running_loop().time() > deadline:
                raise SandboxRefused(
                    "The previous sandbox is still being removed; try again in a minute.",
                    reason="busy", status_code=503,
                    log_message=f"container {self.container_name} not removed "
                                f"after {REMOVAL_WAIT:.0f} s")
            await asyncio.sleep(0.2)

    async def _evaluated(self, value: Any) -> dict[str, Any]:
        value = self._eval_if_callable(value)
        if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
            value = await value
        return self._render_templates(dict(value or {}))

    async def create_object(self) -> dict[str, Any]:
        """Create the container with the hardened host config, after checking the final one."""
        extra_host = await self._evaluated(self.extra_host_config)
        extra_create = await self._evaluated(self.extra_create_kwargs)
        limits = self.limits
        host: dict[str, Any] = {
            "auto_remove": self.remove,
            "binds": self.volume_binds,
            "mounts": self.mount_binds,
            "mem_limit": limits.memory,
            "cpu_period": 100_000,
            "cpu_quota": int(limits.cpus * 100_000),
        }
        _deep_merge(host, extra_host)
        _deep_merge(host, hardened_host_config(self.network_name, limits))
        check_mounts(host["binds"], host["mounts"], Path(self.data_dir), self.allowed_host_paths)
        await self.check_named_volumes(host["binds"])
        for source, spec in host["binds"].items():
            if spec.get("bind") == WORK_DIR and not source.startswith("/"):
                await self.ensure_work_volume(source)
        check_host_config(host, self.network_name)
        create: dict[str, Any] = {
            "image": self.image,
            "environment": self.get_env(),
            "volumes": self.volume_mount_points,
            "name": self.container_name,
            "command": await self.get_command(),
            "ports": {f"{self.port}/tcp": None},
            "labels": {LABEL: "1", f"{LABEL}.user": self.user.name,
                       f"{LABEL}.prefix": self.sandbox_prefix,
                       f"{LABEL}.session": self.shuyu_session or ""},
        }
        _deep_merge(create, extra_create)
        create["user"] = SANDBOX_USER  # the image's non-root user, whatever was configured
        create["host_config"] = self.client.create_host_config(**host)
        return await self.docker("create_container", **create)


# --- the hooks -----------------------------------------------------------------------------


class SandboxServices:
    """The catalog and the session book of this hub process, opened on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._catalog: "OpenedCatalog | None" = None
        self._book: SessionBook | None = None

    def _open(self) -> tuple["OpenedCatalog", SessionBook]:
        from hub.catalog.service import open_catalog
        from shuyu_server.settings import load_settings

        with self._lock:
            if self._catalog is None or self._book is None:
                settings = load_settings()
                catalog = open_catalog(settings)
                self._book = SessionBook(settings.control_database_url, catalog.log)
                self._catalog = catalog
            return self._catalog, self._book

    def catalog(self) -> "OpenedCatalog":
        return self._open()[0]

    def book(self) -> SessionBook:
        return self._open()[1]

    def close(self) -> None:
        with self._lock:
            if self._book is not None:
                self._book.dispose()
            if self._catalog is not None:
                self._catalog.close()
            self._catalog = self._book = None


SERVICES = SandboxServices()


def _refuse(book: SessionBook | None, user: str, error: SandboxRefused, **details: Any) -> None:
    if book is not None:
        book.record_refusal(user, error.message, error.reason, **details)
    raise error


def _live_authorizations(user: str) -> list[str]:
    from hub.catalog.exceptions import QueryNotAuthorized

    try:
        live = SERVICES.catalog().check_user_can_work(user)
    except QueryNotAuthorized as e:
        raise SandboxRefused(f"Your sandbox was not started: {e}", reason="authorization") from e
    return sorted(a.id for a in live)


@dataclass(frozen=True)
class SpawnFacts:
    """What the gate needs from the hub, read on the hub's event-loop thread.

    The hub's database session is not thread-safe, and the gate's slow part (catalog, ledger)
    runs in a worker thread. Reading the user's groups (a lazy load) or the server token from
    there raced the hub's own commits: a query arriving while the hub was committing failed
    with "session is in 'prepared' state" and the spawn with a 500. So everything from the hub
    is read first, here, and the worker gets plain values only.
    """

    user: str
    groups: frozenset[str]
    token_id: str
    server_name: str
    requested_image: str
    image: str  # the allowed image, or "" when ``image_refusal`` says why not
    image_refusal: SandboxRefused | None
    container: str
    details: dict[str, Any]

    @classmethod
    def of(cls, spawner: Any) -> "SpawnFacts":
        token = orm.APIToken.find(spawner.user.db, spawner.api_token)
        try:
            image, refusal = _allowed_image(spawner), None
        except SandboxRefused as e:
            image, refusal = "", e
        limits = {"memory": str(spawner.mem_limit), "cpus": spawner.cpu_limit,
                  "pids": getattr(spawner, "pids_limit", None)}
        return cls(
            user=spawner.user.name,
            groups=frozenset(g.name for g in spawner.user.groups),
            token_id=token.api_id if token is not None else "unknown",
            server_name=spawner.name,
            requested_image=_requested_image(spawner),
            image=image, image_refusal=refusal,
            # KubeSpawner (deploy/kubernetes): the container is a pod, the network the cluster's
            container=getattr(spawner, "container_name", None) or getattr(spawner, "pod_name", ""),
            details={"network": getattr(spawner, "network_name", "kubernetes"), "limits": limits},
        )


def _open_session(facts: SpawnFacts, authorizations: list[str], image: str) -> str:
    """``session.open`` for a ShuyuSpawner, or for KubeSpawner."""
    req = OpenRequest(
        user=facts.user, token_id=facts.token_id, server_name=facts.server_name, image=image,
        container=facts.container, authorizations=authorizations, details=facts.details,
    )
    return SERVICES.book().open(req).key


def _allowed_image(spawner: Any) -> str:
    if isinstance(spawner, ShuyuSpawner):
        return spawner.check_image_allowed()
    image = str(spawner.image)  # KubeSpawner: the image is the configured one (no profiles)
    allowed = os.environ.get("SHUYU_SANDBOX_IMAGE", DEFAULT_IMAGE)
    if image != allowed:
        raise SandboxRefused(f"Your sandbox was not started: image {image!r} is not allowed.",
                             reason="image", status_code=400)
    return image


def _requested_image(spawner: Any) -> str:
    if isinstance(spawner, ShuyuSpawner):
        return spawner.requested_image()
    return str(spawner.image)


def _check_spawn(facts: SpawnFacts) -> tuple[list[str], str]:
    """Blocking part of the gate (catalog and ledger): run in a worker thread, on plain facts."""
    try:
        book = SERVICES.book()
    except Exception as e:  # noqa: BLE001 - any failure to open the ledger or catalog
        raise SandboxRefused(
            "Your sandbox was not started: the platform cannot check authorizations or write "
            "the audit ledger now. Try again later.", reason="ledger", status_code=503,
            log_message=f"cannot open the catalog or the ledger: {e}") from e
    try:
        if ANALYSTS_GROUP not in facts.groups:
            raise SandboxRefused(
                "Sandboxes are for analysts. Reviewers, regulators and the authority work in "
                "their own services and have no data access here.", reason="role")
        if facts.image_refusal is not None:
            raise facts.image_refusal
        authorizations = _live_authorizations(facts.user)
    except SandboxRefused as e:
        _refuse(book, facts.user, e, image=facts.requested_image)
    try:
        return authorizations, _open_session(facts, authorizations, facts.image)
    except SessionLedgerError as e:
        raise SandboxRefused(
            "Your sandbox was not started: the audit ledger cannot be written, and no sandbox "
            "starts unrecorded. Try again later.", reason="ledger", status_code=503,
            log_message=str(e)) from e


async def pre_spawn_hook(spawner: Any) -> None:
    """Refuse without an authorization in force; write ``session.open``; set the client's env."""
    facts = SpawnFacts.of(spawner)  # on the hub's thread: the hub's session is used here only
    try:
        authorizations, key = await asyncio.to_thread(_check_spawn, facts)
    except SandboxRefused as e:
        if e.reason == "image":  # the hub keeps user options for the next start: drop them
            spawner.user_options = {}
            spawner.orm_spawner.user_options = {}
        raise
    spawner.shuyu_session = key
    env = dict(spawner.environment)
    env["SHUYU_AUTHORIZATIONS"] = ",".join(authorizations)
    env["SHUYU_SESSION"] = key
    if len(authorizations) == 1:
        env["SHUYU_AUTHORIZATION"] = authorizations[0]
    else:
        env.pop("SHUYU_AUTHORIZATION", None)
    spawner.environment = env


async def post_stop_hook(spawner: Any) -> None:
    """Write ``session.close``; a failure leaves the session for reconciliation."""
    key = getattr(spawner, "shuyu_session", None)
    if not key:
        return
    try:
        await asyncio.to_thread(SERVICES.book().close, key, CloseReason.STOPPED)
    except Exception:  # noqa: BLE001 - the hub would swallow it; the book keeps it open
        spawner.log.exception("session %s could not be closed in the ledger; the watchdog will "
                              "reconcile it", key)
        return
    spawner.shuyu_session = None


# --- the config layer ----------------------------------------------------------------------


def configure_spawner(c: Any, opts: "HubOptions", env: dict[str, str] | None = None) -> None:
    """Make the hardened DockerSpawner the hub's spawner (see the module docstring).

    Environment (optional): ``SHUYU_SANDBOX_IMAGE`` (default shuyu-sandbox:latest),
    ``SHUYU_SANDBOX_NETWORK`` (shuyu-sandbox), ``SHUYU_SANDBOX_MEMORY`` (2G),
    ``SHUYU_SANDBOX_CPUS`` (1.0), ``SHUYU_SANDBOX_PIDS`` (256), ``SHUYU_SANDBOX_PREFIX`` (names:
    ``<prefix>-sandbox-<user>`` containers, ``<prefix>-work-<user>`` volumes; default shuyu),
    ``SHUYU_SANDBOX_FIREWALL_CHECK`` (``0`` skips the firewall check: only where the firewall
    is enforced elsewhere).
    """
    env = dict(os.environ if env is None else env)
    image = env.get("SHUYU_SANDBOX_IMAGE", DEFAULT_IMAGE)
    c.JupyterHub.spawner_class = ShuyuSpawner
    # sandboxes reach the hub API and the proxy at the sandbox network's gateway address
    c.JupyterHub.hub_ip = "0.0.0.0"
    c.JupyterHub.ip = opts.listen_ip
    c.JupyterHub.cleanup_servers = True
    c.ShuyuSpawner.data_dir = str(opts.data_dir)
    c.ShuyuSpawner.image = image
    c.ShuyuSpawner.allowed_images = [image]
    c.ShuyuSpawner.pull_policy = "never"
    c.ShuyuSpawner.remove = True
    c.ShuyuSpawner.network_name = env.get("SHUYU_SANDBOX_NETWORK", DEFAULT_NETWORK)
    c.ShuyuSpawner.use_internal_ip = True
    prefix = env.get("SHUYU_SANDBOX_PREFIX", "shuyu")
    c.ShuyuSpawner.sandbox_prefix = prefix
    c.ShuyuSpawner.name_template = prefix + "-sandbox-{username}"
    c.ShuyuSpawner.volumes = {prefix + "-work-{username}": WORK_DIR}
    c.ShuyuSpawner.notebook_dir = WORK_DIR
    c.ShuyuSpawner.mem_limit = env.get("SHUYU_SANDBOX_MEMORY", "2G").upper()
    c.ShuyuSpawner.cpu_limit = float(env.get("SHUYU_SANDBOX_CPUS", "1.0"))
    c.ShuyuSpawner.pids_limit = int(env.get("SHUYU_SANDBOX_PIDS", "256"))
    c.ShuyuSpawner.proxy_port = opts.port
    c.ShuyuSpawner.gateway_port = opts.gateway_port
    c.ShuyuSpawner.sandbox_url = opts.sandbox_url
    c.ShuyuSpawner.start_timeout = 120
    c.ShuyuSpawner.http_timeout = 90
    if env.get("SHUYU_SANDBOX_FIREWALL_CHECK", "1") == "0":
        c.ShuyuSpawner.firewall_check = []
    c.Spawner.disable_user_config = True
    c.Spawner.default_url = "/lab/tree/Welcome.ipynb"
    c.Spawner.pre_spawn_hook = pre_spawn_hook
    c.Spawner.post_stop_hook = post_stop_hook
    configure_watchdog(c, opts)


WATCHDOG_SERVICE = "watchdog"
WATCHDOG_SCOPES = ["list:users", "read:users:name", "read:users:groups", "read:servers",
                   "servers"]


def configure_watchdog(c: Any, opts: "HubOptions") -> None:
    """The sandbox watchdog (hub/watchdog.py) as a hub-managed service with a narrow role."""
    services = c.JupyterHub.services if "services" in c.JupyterHub else []
    c.JupyterHub.services = [
        *[s for s in services if s.get("name") != WATCHDOG_SERVICE],
        {"name": WATCHDOG_SERVICE, "command": [sys.executable, "-m", "hub.watchdog"],
         "environment": dict(opts.passthrough), "display": False},
    ]
    roles = c.JupyterHub.load_roles if "load_roles" in c.JupyterHub else []
    c.JupyterHub.load_roles = [
        *[r for r in roles if r.get("name") != "shuyu-watchdog"],
        {"name": "shuyu-watchdog", "description": "Stops sandboxes whose authorization ended.",
         "services": [WATCHDOG_SERVICE], "scopes": list(WATCHDOG_SCOPES)},
    ]
