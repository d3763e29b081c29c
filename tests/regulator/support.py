"""A small real platform history for the regulator console tests (no tests of its own).

``build_history(directory)`` makes the gateway tests' world (a real ledger, catalog, operators
and authorization agreements written by the catalog service) at a small scale, then appends, with
the platform's own entry builders, what a few days of work leave in the ledger:

- queries and refused queries (``hub.gateway.audit.QueryRecord``) by alice, bob and carol on
  three days;
- release requests with their outcomes (``release_review.events.AuditEvent``): one released
  product under the ``row`` agreement, one rejected, one withdrawn;
- two privacy-budget charges under ``agg`` (the DP lane's ``budget.charged`` shape).

``console_app(history)`` is the ledger service with the console, identity given by the hub's
OAuth client configured from test values; ``regulator_client`` overrides only the regulator
check (STYLE.md §11: auth is the one dependency tests override) and carries a session cookie so
that the CSRF tokens of forms are real.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from hub.catalog.enums import Role
from hub.catalog.events import Actor
from hub.gateway.audit import QueryRecord
from hub.gateway.identity import HubUser
from ledger.cli import log_config
from ledger.log import Log, LogConfig
from ledger.service.auth import SESSION_COOKIE, ConsoleUser
from release_review.events import AuditEvent
from release_review.states import AuditEventType as R
from tests.gateway.world import OPERATOR, World, build_world

DAYS = ("2026-03-02", "2026-03-03", "2026-03-05")
TEST_ENV = {
    "JUPYTERHUB_API_URL": "http://127.0.0.1:9/hub/api",  # never called: auth is overridden
    "JUPYTERHUB_API_TOKEN": "test-service-token-0123456789abcdef",
    "JUPYTERHUB_CLIENT_ID": "service-ledger",
    "JUPYTERHUB_SERVICE_NAME": "ledger",
}


@dataclass
class History:
    world: World
    config: LogConfig
    vkey: str
    released_index: int
    query_counts: dict[tuple[str, str], int]  # (day, analyst) -> queries that ran
    denied_counts: dict[str, int]  # day -> refused queries

    @property
    def auth(self) -> dict[str, str]:
        return self.world.authorizations


def _at(day: str, n: int) -> str:
    return f"{day}T{8 + n // 60:02d}:{n % 60:02d}:00.000Z"


def _query(user: str, auth: str, n: int, denied: bool, day: str) -> dict[str, Any]:
    rec = QueryRecord(query_id=f"q-{day}-{user}-{n}", user=HubUser(user, frozenset(), "tok-1", None),
                      sql="SELECT district, count(*) FROM residents GROUP BY district",
                      source="10.0.0.5", authorization=auth, datasets=["residents"],
                      columns={"residents": ["district"]})
    if denied:
        entry = rec.denied("column not in scope", "scope", 1.5)
    else:
        entry = rec.ran(rows=12, groups_suppressed=0, truncated=False, result_sha256="ab" * 32,
                        result_bytes=512, pages=1, duration_ms=3.0)
    entry["at"] = _at(day, n)
    return entry


def _release(kind: R, rid: str, auth: str, day: str, n: int, **details: Any) -> dict[str, Any]:
    actor = Actor("svc-review" if kind is R.RELEASE_RELEASE else "alice",
                  Role.SERVICE if kind is R.RELEASE_RELEASE else Role.ANALYST)
    at = datetime.fromisoformat(_at(day, n).replace("Z", "+00:00"))
    return AuditEvent(kind, actor, at, rid, auth, "enterprises",
                      {"title": f"产品 {rid}", "round": 1, **details}).to_entry()


def _budget(auth: str, day: str, n: int, eps: float, after: float) -> dict[str, Any]:
    return {"type": "budget.charged", "at": _at(day, n), "actor": "carol", "role": "analyst",
            "authorization": auth, "dataset": "water_use", "release": f"dp-{n}",
            "details": {"spent": {"epsilon": eps, "rho": None, "delta": 0.0},
                        "budget": {"total_epsilon": 2.0, "remaining_epsilon": 2.0 - after}}}


def build_history(directory: Path) -> History:
    world = build_world(directory, scale=300)
    cfg = log_config(world.settings)
    auth = world.authorizations
    queries: dict[tuple[str, str], int] = {}
    denied: dict[str, int] = {}
    events = []
    for d, day in enumerate(DAYS):
        for n in range(3 + d):
            for user, a in (("alice", auth["row"]), ("carol", auth["agg"])):
                events.append(_query(user, a, n, False, day))
                queries[(day, user)] = queries.get((day, user), 0) + 1
        events.append(_query("bob", auth["row"], 30, True, day))
        denied[day] = denied.get(day, 0) + 1
    events += [
        _release(R.RELEASE_SUBMIT, "rel-1", auth["row"], DAYS[0], 40),
        _release(R.RELEASE_APPROVE, "rel-1", auth["row"], DAYS[1], 41),
        _release(R.RELEASE_SUBMIT, "rel-2", auth["row"], DAYS[1], 42),
        _release(R.RELEASE_REJECT, "rel-2", auth["row"], DAYS[1], 43),
        _release(R.RELEASE_SUBMIT, "rel-3", auth["agg"], DAYS[2], 44),
        _release(R.RELEASE_WITHDRAW, "rel-3", auth["agg"], DAYS[2], 45),
        _budget(auth["agg"], DAYS[1], 46, 0.5, 0.5),
        _budget(auth["agg"], DAYS[2], 47, 0.25, 0.75),
    ]
    log = Log.open(cfg)
    try:
        log.append_many(events)
        released = log.append(_release(
            R.RELEASE_RELEASE, "rel-1", auth["row"], DAYS[2], 48,
            files=[{"name": "企业统计.csv", "sha256": "cd" * 32, "size": 100}],
            sources=[{"dataset": "enterprises", "registration_code": "R-1", "grade": "一般"}]))
        vkey = log.verifier().vkey()
    finally:
        log.close()
    return History(world, cfg, vkey, released, queries, denied)


def console_app(history: History, monkeypatch: Any, prefix: str = "") -> Any:
    for k, v in TEST_ENV.items():
        monkeypatch.setenv(k, v)
    from ledger.service.main import create_app

    return create_app(history.config, sequencer=False, prefix=prefix)


def regulator_client(app: Any, name: str = "rita") -> TestClient:
    from ledger.service.pages.common import require_regulator

    app.dependency_overrides[require_regulator] = lambda: ConsoleUser(name, ("regulators",))
    client = TestClient(app)
    oauth = app.state.console.oauth
    client.cookies.set(SESSION_COOKIE, oauth.sessions.sign(f"token-of-{name}"))
    return client


def operator_name() -> str:
    return OPERATOR


def now_utc() -> datetime:
    return datetime.now(timezone.utc)
