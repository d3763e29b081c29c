"""The spawn gate (hub/spawner.py ``pre_spawn_hook``) against a real hub database, a real
catalog and a real ledger: the worker thread that checks the catalog and writes the ledger never
touches the hub's database session, which is not thread-safe (a query from the worker while the
hub committed failed the spawn with "session is in 'prepared' state")."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import pytest
from jupyterhub import orm
from sqlalchemy import event

import hub.spawner as spawner_module
from hub.sandbox_policy import SandboxRefused
from hub.spawner import ANALYSTS_GROUP, DEFAULT_IMAGE, SandboxServices, pre_spawn_hook
from ledger.entry import decode_entry
from tests.gateway.world import World, build_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("hook") / "data", scale=300)


@pytest.fixture
def services(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxServices]:
    for key in [k for k in __import__("os").environ if k.startswith("SHUYU_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("SHUYU_DATA_DIR", str(world.data_dir))
    services = SandboxServices()
    monkeypatch.setattr(spawner_module, "SERVICES", services)
    yield services
    services.close()


class HubDB:
    """A real JupyterHub database whose every statement is checked for the thread it runs on."""

    def __init__(self, path: Path):
        self.factory = orm.new_session_factory(f"sqlite:///{path}")
        self.threads: list[int] = []
        event.listen(self.factory.kw["bind"], "before_cursor_execute", self._seen)

    def _seen(self, *args: Any) -> None:
        self.threads.append(threading.get_ident())

    def user(self, name: str, groups: list[str]) -> str:
        """Make the user, in ``groups``, with a server token; return the token."""
        db = self.factory()
        if not db.query(orm.OAuthClient).filter_by(identifier="jupyterhub").count():
            db.add(orm.OAuthClient(identifier="jupyterhub"))
        user = orm.User(name=name)
        db.add(user)
        for g in groups:
            group = orm.Group.find(db, g) or orm.Group(name=g)
            user.groups.append(group)
        db.commit()
        token = user.new_api_token(scopes=[])
        db.close()
        return token

    def spawner(self, name: str, token: str) -> SimpleNamespace:
        """A KubeSpawner-shaped spawner; its user is expired, as after any rollback in the hub,
        so reading the user's groups queries the database again."""
        db = self.factory()
        orm_user = orm.User.find(db, name)
        db.expire(orm_user)
        hub_user = _HubUser(db, orm_user)
        self.threads.clear()
        return SimpleNamespace(user=hub_user, api_token=token, name="", image=DEFAULT_IMAGE,
                               mem_limit="2G", cpu_limit=1.0, pod_name=f"jupyter-{name}",
                               environment={}, user_options={},
                               orm_spawner=SimpleNamespace(user_options={}))


class _HubUser:
    """Like ``jupyterhub.user.User``: the hub's session plus attributes read through the ORM."""

    def __init__(self, db: Any, orm_user: orm.User):
        self.db, self.orm_user = db, orm_user

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.orm_user, attr)


def ledger_entries(services: SandboxServices) -> list[dict]:
    log = services.catalog().log
    return [decode_entry(bytes(d)) for _, d, _ in log.store.iter_entries()]


def test_the_gate_reads_the_hub_on_its_own_thread_only(tmp_path: Path,
                                                      services: SandboxServices) -> None:
    hub = HubDB(tmp_path / "jupyterhub.sqlite")
    token = hub.user("alice", [ANALYSTS_GROUP])
    spawner = hub.spawner("alice", token)
    asyncio.run(pre_spawn_hook(spawner))  # the event loop runs on this thread
    assert hub.threads, "the gate read the user's groups and token from the hub database"
    assert set(hub.threads) == {threading.get_ident()}
    key = spawner.environment["SHUYU_SESSION"]
    [opened] = [e for e in ledger_entries(services)
                if e["type"] == "session.open" and e["session"] == key]
    assert opened["actor"] == "alice"
    api_id = orm.APIToken.find(hub.factory(), token).api_id
    assert opened["details"]["token_id"] == api_id
    assert opened["details"]["limits"]["memory"] == "2G"


def test_a_refusal_reads_the_hub_on_its_own_thread_only(tmp_path: Path,
                                                       services: SandboxServices) -> None:
    hub = HubDB(tmp_path / "jupyterhub.sqlite")
    token = hub.user("rita", ["reviewers"])
    spawner = hub.spawner("rita", token)
    with pytest.raises(SandboxRefused) as err:
        asyncio.run(pre_spawn_hook(spawner))  # the event loop runs on this thread
    assert err.value.reason == "role"
    assert hub.threads and set(hub.threads) == {threading.get_ident()}
    assert any(e["type"] == "session.refused" and e["actor"] == "rita"
               for e in ledger_entries(services))
