"""Session fixtures shared by the gateway and client tests (loaded by ``tests/conftest.py``).

One real data domain (``world.build_world``) and one real JupyterHub that runs the gateway as a
managed service over it, for the whole session. Users and API tokens are made through the hub's
REST API. The gateway runs with small limits so that the tests reach them with small data: a
row limit of 2,000, pages of 16 KiB, a 4 s query timeout, and no identity cache (every request
asks the hub).

``Gateway`` is a thin HTTP helper; ``LedgerReader`` reads the entries the gateway wrote.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from ledger.cli import log_config
from ledger.entry import decode_entry
from ledger.log import Log
from tests.gateway.hubprocess import HubAdmin, RealHub
from tests.gateway.world import World, build_world

ROW_LIMIT = 2000
PAGE_BYTES = 16 * 1024
QUERY_TIMEOUT = 4
SANDBOX_IP = "127.0.0.2"  # a loopback address of its own, standing in for the sandbox bridge's
ANALYSTS = ("alice", "bob", "carol", "dave", "erin", "frank", "gina")
OTHERS = ("zed",)


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("SHUYU_")}
    try:
        return build_world(tmp_path_factory.mktemp("gateway-world"), scale=3000)
    finally:
        os.environ.update(saved)


@pytest.fixture(scope="session")
def hub(world: World) -> Iterator[RealHub]:
    running = RealHub.start(world.data_dir, {
        "SHUYU_GATEWAY_AUTH_CACHE_SECONDS": "0",
        "SHUYU_GATEWAY_MAX_ROWS": str(ROW_LIMIT),
        "SHUYU_GATEWAY_PAGE_BYTES": str(PAGE_BYTES),
        "SHUYU_GATEWAY_QUERY_TIMEOUT_SECONDS": str(QUERY_TIMEOUT),
        "SHUYU_LEDGER__BATCH_MAX_AGE_MS": "0",
        # as with sandboxes: the gateway also listens on another address at its port
        "SHUYU_GATEWAY_SANDBOX_IP": SANDBOX_IP,
    })
    yield running
    running.stop()


@pytest.fixture(scope="session")
def hub_admin(hub: RealHub) -> Iterator[HubAdmin]:
    admin = hub.admin()
    for user in ANALYSTS + OTHERS:
        admin.create_user(user)
    admin.add_to_group("analysts", *ANALYSTS)
    yield admin
    admin.close()


@pytest.fixture(scope="session")
def tokens(hub_admin: HubAdmin) -> dict[str, str]:
    """One hub API token per user, made through the hub's REST API (default scopes)."""
    return {user: hub_admin.create_token(user, note="session")[0] for user in ANALYSTS + OTHERS}


class Gateway:
    """The gateway's HTTP API through the hub's proxy."""

    def __init__(self, hub: RealHub, tokens: dict[str, str]):
        self.hub = hub
        self.tokens = tokens
        self.http = httpx.Client(base_url=hub.gateway_url, timeout=60.0, trust_env=False)

    def headers(self, user: str | None = None, token: str | None = None) -> dict[str, str]:
        token = token if token is not None else self.tokens[user] if user else None
        return {"Authorization": f"token {token}"} if token is not None else {}

    def query(self, user: str, sql: str, authorization: str | None = None,
              token: str | None = None) -> httpx.Response:
        body: dict[str, Any] = {"sql": sql}
        if authorization:
            body["authorization"] = authorization
        return self.http.post("queries", json=body, headers=self.headers(user, token))

    def page(self, user: str, meta: dict[str, Any], n: int) -> httpx.Response:
        return self.http.get(meta["page_url"].format(page=n), headers=self.headers(user))

    def rows(self, user: str, sql: str, authorization: str | None = None) -> tuple[dict, Any]:
        """(metadata, pyarrow table) of an allowed query; fails the test otherwise."""
        import pyarrow as pa

        r = self.query(user, sql, authorization)
        assert r.status_code == 200, r.text
        meta = r.json()
        tables = []
        for n in range(meta["pages"]):
            page = self.page(user, meta, n)
            assert page.status_code == 200, page.text
            tables.append(pa.ipc.open_stream(page.content).read_all())
        return meta, pa.concat_tables(tables)

    def get(self, user: str, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, headers=self.headers(user), **kw)


@pytest.fixture(scope="session")
def gateway(hub: RealHub, tokens: dict[str, str]) -> Iterator[Gateway]:
    gw = Gateway(hub, tokens)
    yield gw
    gw.http.close()


@dataclass
class LedgerReader:
    world: World

    def entries(self) -> list[dict[str, Any]]:
        log = Log.open(log_config(self.world.settings))
        try:
            return [decode_entry(bytes(data)) for _, data, _ in log.store.iter_entries()]
        finally:
            log.close()

    def last(self, kind: str, **details: Any) -> dict[str, Any]:
        for entry in reversed(self.entries()):
            if entry["type"] == kind and all(entry["details"].get(k) == v
                                             for k, v in details.items()):
                return entry
        raise AssertionError(f"no {kind} entry with {details} in the ledger")


@pytest.fixture(scope="session")
def ledger(world: World) -> LedgerReader:
    return LedgerReader(world)


@pytest.fixture(scope="session")
def domain_dir(world: World) -> Path:
    return world.settings.domain_dir
