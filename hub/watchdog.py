"""The sandbox watchdog: a hub-managed service (``python -m hub.watchdog``) that keeps running
sandboxes within their authorizations and the ledger free of open-ended sessions.

Every ``SHUYU_WATCHDOG_INTERVAL`` seconds (default 10, so a change takes effect well within a
minute) one pass:

1. records ``authorization.expired`` for agreements past their end (the catalog's expiry job);
2. asks the hub which users run (or are starting) a server; for each whose sandbox is no longer
   allowed (no authorization in force: suspended, revoked, expired; or no longer an analyst)
   it writes ``session.terminate`` for the open sessions, then asks the hub to stop the server
   (the hub's post-stop hook writes ``session.close``). Stopping reduces access, so a ledger
   failure is logged and the stop still happens; the close is reconciled later;
3. removes sandbox containers the hub no longer runs (a hub that lost its database, a crash
   between create and record) after ``session.terminate``; only this hub's containers: those
   labelled with its ``SHUYU_SANDBOX_PREFIX`` and a session of its own session book;
4. closes, as ``container_gone``, every open session whose container no longer runs.

The hub gives the service its API token (``JUPYTERHUB_API_TOKEN``) and URL; its role
(``shuyu-watchdog`` in ``hub/jupyterhub_config.py``) may list users and their groups and
servers, and stop servers, nothing else. It reads the shared settings (``SHUYU_DATA_DIR`` …).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import httpx

from hub.sessions import SessionBook, SessionLedgerError

log = logging.getLogger("shuyu.watchdog")
SANDBOX_LABEL = "org.shuyu.sandbox"
ANALYSTS_GROUP = "analysts"
ACTOR = "shuyu-watchdog"


@dataclass
class HubServer:
    user: str
    groups: tuple[str, ...]
    ready: bool
    pending: str | None


@dataclass
class PassReport:
    """What one pass did (for logs and tests)."""

    expired: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    orphans_removed: list[str] = field(default_factory=list)
    sessions_closed: list[str] = field(default_factory=list)


class HubClient:
    """The few hub API calls the watchdog makes, with its service token."""

    def __init__(self, api_url: str, token: str, timeout: float = 10.0):
        self.client = httpx.Client(base_url=api_url.rstrip("/") + "/", timeout=timeout,
                                   trust_env=False,
                                   headers={"Authorization": f"token {token}"})

    def active_servers(self) -> dict[str, HubServer]:
        r = self.client.get("users", params={"state": "active", "limit": 2000})
        r.raise_for_status()
        users = r.json()
        users = users.get("items", users) if isinstance(users, dict) else users
        out = {}
        for u in users:
            server = (u.get("servers") or {}).get("")
            if server is None:
                continue
            out[u["name"]] = HubServer(u["name"], tuple(u.get("groups") or ()),
                                       bool(server.get("ready")), server.get("pending"))
        return out

    def stop_server(self, user: str) -> int:
        r = self.client.delete(f"users/{user}/server")
        if r.status_code not in (202, 204, 400):
            r.raise_for_status()
        return r.status_code

    def close(self) -> None:
        self.client.close()


class Watchdog:
    def __init__(self, catalog: Any, book: SessionBook, hub: HubClient, docker_client: Any,
                 grace_seconds: float = 120.0, prefix: str = "shuyu"):
        self.catalog = catalog
        self.book = book
        self.hub = hub
        self.docker = docker_client
        self.grace_seconds = grace_seconds
        self.prefix = prefix

    def why_not_allowed(self, server: HubServer) -> str | None:
        from hub.catalog.exceptions import QueryNotAuthorized

        if ANALYSTS_GROUP not in server.groups:
            return f"{server.user} is no longer in the analysts group"
        try:
            self.catalog.check_user_can_work(server.user)
        except QueryNotAuthorized as e:
            return str(e)
        return None

    def _terminate(self, user: str, reason: str, **details: Any) -> None:
        for session in self.book.open_sessions(user):
            try:
                self.book.terminate(session, reason, ACTOR, **details)
            except SessionLedgerError as e:
                log.error("cannot record session.terminate for %s (stopping anyway): %s",
                          session.key, e)

    def stop_disallowed(self, servers: dict[str, HubServer], report: PassReport) -> None:
        for server in servers.values():
            reason = self.why_not_allowed(server)
            if reason is None or server.pending == "stop":
                continue
            log.warning("stopping %s's sandbox: %s", server.user, reason)
            self._terminate(server.user, reason, action="stop_server")
            status = self.hub.stop_server(server.user)
            if status != 400:
                report.stopped.append(server.user)

    def sandbox_containers(self) -> list[Any]:
        """This hub's sandbox containers (other hubs on the same engine have other prefixes)."""
        return self.docker.containers.list(all=True, filters={"label": [
            f"{SANDBOX_LABEL}=1", f"{SANDBOX_LABEL}.prefix={self.prefix}"]})

    def remove_orphans(self, servers: dict[str, HubServer], report: PassReport) -> set[str]:
        """Remove this hub's sandbox containers whose user it runs no server for; return the
        names of the running rest.

        A container is this hub's when its session label names a session in this hub's book
        (every sandbox is opened in the book before its container exists); others, such as
        another hub's on the same engine, are left alone.
        """
        running = set()
        now = datetime.now(timezone.utc)
        for container in self.sandbox_containers():
            session = self.book.find(container.labels.get(f"{SANDBOX_LABEL}.session", ""))
            if session is None:
                continue
            created = _parse_docker_time(container.attrs.get("Created"))
            young = created is not None and (now - created).total_seconds() < self.grace_seconds
            if session.user in servers or young:
                if container.status in ("running", "created", "restarting"):
                    running.add(container.name)
                continue
            log.warning("removing orphaned sandbox container %s (user %r)", container.name,
                        session.user)
            if session.is_open:
                try:
                    self.book.terminate(session, "container without a hub server", ACTOR,
                                        container=container.name, action="remove_container")
                except SessionLedgerError as e:
                    log.error("cannot record session.terminate for %s (removing anyway): %s",
                              session.key, e)
            container.remove(force=True)
            report.orphans_removed.append(container.name)
        return running

    def run_once(self) -> PassReport:
        report = PassReport()
        try:
            report.expired = [a.id for a in self.catalog.expire_due()]
        except Exception:  # noqa: BLE001 - expiry is also decided from the clock at each check
            log.exception("recording expired authorizations failed")
        servers = self.hub.active_servers()
        self.stop_disallowed(servers, report)
        running = self.remove_orphans(servers, report)
        try:
            closed = self.book.reconcile(running, self.grace_seconds, actor=ACTOR)
            report.sessions_closed = [s.key for s in closed]
        except SessionLedgerError as e:
            log.error("reconciling sessions failed (next pass retries): %s", e)
        return report


def _parse_docker_time(text: str | None) -> datetime | None:
    if not text:
        return None
    head = text.rstrip("Z").split(".")[0]
    try:
        return datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def main() -> None:
    from shuyu_server.lifecycle import end_with_hub

    end_with_hub()
    import docker

    from hub.catalog.service import open_catalog
    from shuyu_server.settings import load_settings

    logging.basicConfig(level=logging.INFO,
                        format="[%(levelname)1.1s %(asctime)s shuyu.watchdog] %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not one line per hub request
    interval = float(os.environ.get("SHUYU_WATCHDOG_INTERVAL", "10"))
    grace = float(os.environ.get("SHUYU_WATCHDOG_GRACE", "120"))
    settings = load_settings()
    catalog = open_catalog(settings)
    book = SessionBook(settings.control_database_url, catalog.log)
    hub = HubClient(os.environ["JUPYTERHUB_API_URL"], os.environ["JUPYTERHUB_API_TOKEN"])
    dog = Watchdog(catalog, book, hub, docker.from_env(), grace,
                   os.environ.get("SHUYU_SANDBOX_PREFIX", "shuyu"))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log.info("watching sandboxes every %.0f s", interval)
    while not stop.is_set():
        started = time.monotonic()
        try:
            report = dog.run_once()
            if report.stopped or report.orphans_removed or report.sessions_closed:
                log.info("pass: %s", report)
        except httpx.TransportError as e:  # the hub restarting: try again next pass
            log.warning("watchdog pass skipped, hub API not reachable: %s", e)
        except Exception:  # noqa: BLE001 - a failed pass must not end the watchdog
            log.exception("watchdog pass failed")
        stop.wait(max(0.5, interval - (time.monotonic() - started)))
    hub.close()
    book.dispose()
    catalog.close()


if __name__ == "__main__":
    main()
