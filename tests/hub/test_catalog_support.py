"""Fixtures and factories for the catalog and authorization tests (no tests of its own).

`env` is a catalog service over a real control database and a real ledger, once on SQLite and
once on PostgreSQL (marked ``postgres``), with a clock the tests move by hand. `sample_catalog`
registers a small catalog in known states: datasets of every grade and open attribute, two
operators and their analysts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest

from hub.catalog.agreements import ScopeRequest
from hub.catalog.enums import AccessMode, Grade, IdentifierClass, OpenAttribute, Role
from hub.catalog.events import Actor
from hub.catalog.records import AuthorizationRecord, ColumnRecord, DatasetRecord
from hub.catalog.service import CatalogService
from hub.catalog.storage import SqlAlchemyCatalogStore
from ledger.entry import decode_entry
from ledger.log import Log, LogConfig, init_log

START = datetime(2026, 3, 1, 1, 0, tzinfo=timezone.utc)
AUTHORITY = Actor("zhang.wei", Role.AUTHORITY, "test")
REGULATOR = Actor("audit.office", Role.REGULATOR, "test")
ALICE = Actor("alice", Role.ANALYST, "test")
BOB = Actor("bob", Role.ANALYST, "test")
CAROL = Actor("carol", Role.ANALYST, "test")
OPERATOR = "云数科技有限公司"
OTHER_OPERATOR = "滇池数据服务有限公司"
CREDIT_CODE = "91350100M000100Y43"


class MovableClock:
    """The service's clock; tests move it forward to cross term boundaries."""

    def __init__(self, at: datetime = START):
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> datetime:
        self.at = self.at + timedelta(**delta)
        return self.at


@dataclass
class Env:
    service: CatalogService
    log: Log
    clock: MovableClock
    config: LogConfig
    control_url: str

    def entries(self) -> list[dict[str, Any]]:
        size = self.log.store.head().size
        return [decode_entry(bytes(data)) for _, data, _ in self.log.store.entries(0, size)]

    def types(self) -> list[str]:
        return [e["type"] for e in self.entries()]

    def last(self, kind: str) -> dict[str, Any]:
        found = [e for e in self.entries() if e["type"] == kind]
        assert found, f"no {kind} entry in the ledger"
        return found[-1]

    def close(self) -> None:
        self.service.close()
        self.log.close()


def ledger_config(tmp_path: Path, database_url: str) -> LogConfig:
    return LogConfig(
        ledger_dir=tmp_path / "ledger",
        keys_dir=tmp_path / "keys",
        database_url=database_url,
        origin="test.shuyu.local/ledger",
        batch_max_age=0.0,
    )


def open_env(control_url: str, config: LogConfig, clock: MovableClock) -> Env:
    log = Log.open(config)
    store = SqlAlchemyCatalogStore(control_url, log)
    store.create()
    return Env(CatalogService(store, clock), log, clock, config, control_url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    pg = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    environment = new_env(tmp_path, pg)
    yield environment
    environment.close()


def new_env(tmp_path: Path, pg_url: str | None = None) -> Env:
    """A fresh ledger and catalog: on SQLite files under `tmp_path`, or on `pg_url`."""
    control = pg_url or f"sqlite:///{tmp_path / 'control.db'}"
    ledger_url = pg_url or f"sqlite:///{tmp_path / 'ledger' / 'ledger.db'}"
    config = ledger_config(tmp_path, ledger_url)
    init_log(config)
    return open_env(control, config, MovableClock())


# --- the sample catalog ----------------------------------------------------------------------


def col(name: str, cls: IdentifierClass, group_by: bool = False, kind: str = "VARCHAR"
        ) -> ColumnRecord:
    return ColumnRecord(name, kind, cls, group_by)


D, Q, S, OT = (IdentifierClass.DIRECT_IDENTIFIER, IdentifierClass.QUASI_IDENTIFIER,
              IdentifierClass.SENSITIVE, IdentifierClass.OTHER)

RESIDENTS = DatasetRecord(
    name="residents", provider="昆明市公安局", grade=Grade.GENERAL,
    open_attribute=OpenAttribute.CONDITIONAL, title="居民基本信息",
    columns=(col("resident_id", D), col("name", D), col("district", Q, True),
             col("birth_year", Q, True, "INTEGER"), col("ethnicity", S, True),
             col("education", OT, True)),
    version="2026.02", acquired_on=date(2026, 2, 1), registration_code="KM-GA-0001",
)
ENTERPRISES = DatasetRecord(
    name="enterprises", provider="昆明市市场监督管理局", grade=Grade.GENERAL,
    open_attribute=OpenAttribute.UNCONDITIONAL, title="企业登记信息",
    columns=(col("credit_code", OT), col("industry", OT, True), col("district", OT, True),
             col("registered_capital", OT, False, "DOUBLE")),
    version="2026.02", acquired_on=date(2026, 2, 3), registration_code="KM-SJ-0002",
)
CONTRIBUTIONS = DatasetRecord(
    name="contributions", provider="昆明市人力资源和社会保障局", grade=Grade.IMPORTANT,
    open_attribute=OpenAttribute.CONDITIONAL, title="社保缴费",
    columns=(col("resident_id", D), col("credit_code", OT), col("month", OT, True, "DATE"),
             col("amount", S, False, "DOUBLE")),
    version="2026.01", acquired_on=date(2026, 1, 31), registration_code="KM-RS-0003",
)
GRID = DatasetRecord(
    name="power_grid", provider="云南电网", grade=Grade.CORE,
    open_attribute=OpenAttribute.CONDITIONAL,
    columns=(col("substation", OT, True), col("load_mw", OT, False, "DOUBLE")),
)
CASES = DatasetRecord(
    name="court_cases", provider="昆明市中级人民法院", grade=Grade.GENERAL,
    open_attribute=OpenAttribute.NOT_OPEN,
    columns=(col("case_no", D), col("category", OT, True)),
)
TRIPS = DatasetRecord(
    name="bus_trips", provider="昆明公交集团", grade=Grade.GENERAL,
    open_attribute=OpenAttribute.CONDITIONAL, shared_source="云南省交通运输厅",
    columns=(col("card_id", D), col("line", OT, True), col("boarded_at", OT, False, "TIMESTAMP")),
)
SAMPLE = (RESIDENTS, ENTERPRISES, CONTRIBUTIONS, GRID, CASES, TRIPS)


def sample_catalog(env: Env) -> None:
    svc = env.service
    for spec in SAMPLE:
        svc.register_dataset(AUTHORITY, spec)
    svc.create_operator(AUTHORITY, OPERATOR, CREDIT_CODE, security_officer="王安")
    svc.create_operator(AUTHORITY, OTHER_OPERATOR)
    svc.add_analyst(AUTHORITY, "alice", OPERATOR, "Alice Li")
    svc.add_analyst(AUTHORITY, "bob", OPERATOR, "Bob Chen")
    svc.add_analyst(AUTHORITY, "carol", OTHER_OPERATOR, "Carol Wu")


def create_agreement(env: Env, **overrides: Any) -> AuthorizationRecord:
    """An active agreement for alice and bob over residents (some columns) and enterprises."""
    args: dict[str, Any] = dict(
        operator=OPERATOR,
        analysts=["alice", "bob"],
        scope=[
            ScopeRequest("residents", ("district", "birth_year", "ethnicity", "resident_id"),
                         AccessMode.ROW_LEVEL, 2.0),
            ScopeRequest("enterprises"),
        ],
        scenario="人口与产业分布分析",
        use_class="公共治理/公益",
        starts_at=env.clock(),
        ends_at=env.clock() + timedelta(days=365),
    )
    args.update(overrides)
    return env.service.create_authorization(AUTHORITY, **args)


def catalog_json(specs: tuple[DatasetRecord, ...] = SAMPLE) -> dict[str, Any]:
    """The catalog.json form of `specs` (using Chinese labels, as a generator might)."""
    return {
        "format": "shuyu-catalog/1",
        "datasets": [
            {
                "name": s.name, "title": {"zh": s.title, "en": ""}, "provider": s.provider,
                "description": s.description, "grade": s.grade.label,
                "open_attribute": s.open_attribute.label, "update_frequency": "monthly",
                "version": s.version,
                "acquired_on": s.acquired_on.isoformat() if s.acquired_on else None,
                "registration_code": s.registration_code, "shared_source": s.shared_source,
                "columns": [
                    {"name": c.name, "type": c.type, "identifier_class": str(c.identifier_class),
                     "group_by_allowed": c.group_by_allowed, "label": c.label}
                    for c in s.columns
                ],
            }
            for s in specs
        ],
    }


def write_catalog(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path
