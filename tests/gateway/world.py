"""A complete, real data domain for the gateway tests (no tests of its own).

``build_world(directory, scale)`` makes, under one data directory laid out as the shared
settings expect: a ledger (real signing key, SQLite), synthetic Kunming data from the generator
loaded into the DuckDB domain store (each load in the ledger), the catalog imported from the
generator's ``catalog.json``, an operator with a security officer and analysts, and these
authorization agreements:

- ``row``: alice, bob — enterprises and bus_trips row-level (bus_trips without ``fare``), plus
  residents and social_insurance, which are 重要 and therefore aggregate-only, with a small
  column scope for residents (no name or mobile);
- ``agg``: carol — water_use aggregate-only (一般 data, aggregate by agreement), min group 25,
  and enterprises row-level (so her pseudonyms differ from alice's);
- ``second``: bob — enterprises row-level again (bob must name the authorization he works under);
- ``late``: dave — enterprises, but the term starts next year.

Users: alice, bob, carol, dave, frank (analysts; frank gets a short agreement in a test), erin
(an analyst of another operator, with no agreement), zhang.wei (the authority's user).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hub.catalog.agreements import ScopeRequest
from hub.catalog.enums import AccessMode, Role
from hub.catalog.events import Actor
from hub.catalog.importer import import_catalog, load_catalog_file
from hub.catalog.service import CatalogService
from hub.catalog.storage import SqlAlchemyCatalogStore
from hub.domain import DomainStore
from hub.synthetic.generate import Options, write_dataset_dir
from ledger.cli import log_config
from ledger.log import Log, init_log
from shuyu_server.settings import Settings, load_settings

AUTHORITY = Actor("zhang.wei", Role.AUTHORITY, "test")
OPERATOR = "云数科技有限公司"
OTHER_OPERATOR = "滇池数据服务有限公司"
RESIDENT_COLUMNS = ("resident_id", "sex", "birth_year", "ethnicity", "education",
                    "marital_status", "household_id", "district_code", "district", "birth_date")
BUS_TRIP_COLUMNS = ("trip_id", "card_id", "card_type", "board_time", "route", "stop_id",
                    "stop_name", "stop_district")


@dataclass
class World:
    data_dir: Path
    settings: Settings
    source: Path
    authorizations: dict[str, str]

    def open_catalog(self) -> tuple[CatalogService, Log]:
        log = Log.open(log_config(self.settings))
        store = SqlAlchemyCatalogStore(self.settings.control_database_url, log)
        return CatalogService(store), log


def build_world(data_dir: Path, scale: int = 3000, seed: int = 7,
                source: Path | None = None) -> World:
    settings = load_settings(data_dir=data_dir)
    settings.ledger.batch_max_age_ms = 0.0
    init_log(log_config(settings))
    if source is None:
        source = data_dir / "generated"
        write_dataset_dir(source, Options(scale, seed))
    log = Log.open(log_config(settings))
    try:
        DomainStore(settings.domain_dir).load_catalog_dir(source, audit=log.append)
        store = SqlAlchemyCatalogStore(settings.control_database_url, log)
        store.create()
        service = CatalogService(store)
        import_catalog(service, AUTHORITY, load_catalog_file(source / "catalog.json"))
        auths = _agreements(service)
    finally:
        log.close()
    return World(data_dir, settings, source, auths)


def _agreements(service: CatalogService) -> dict[str, str]:
    service.create_operator(AUTHORITY, OPERATOR, "91350100M000100Y43", "李安全")
    service.create_operator(AUTHORITY, OTHER_OPERATOR, None, "王安全")
    for user in ("alice", "bob", "carol", "dave", "frank"):
        service.add_analyst(AUTHORITY, user, OPERATOR, user.title())
    service.add_analyst(AUTHORITY, "erin", OTHER_OPERATOR, "Erin")
    now = service.now()
    term = dict(starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=365))
    row = service.create_authorization(
        AUTHORITY, operator=OPERATOR, analysts=["alice", "bob"],
        scope=[
            ScopeRequest("enterprises", None, AccessMode.ROW_LEVEL),
            ScopeRequest("bus_trips", BUS_TRIP_COLUMNS, AccessMode.ROW_LEVEL),
            ScopeRequest("residents", RESIDENT_COLUMNS, AccessMode.AGGREGATE_ONLY),
            ScopeRequest("social_insurance", None, AccessMode.AGGREGATE_ONLY),
        ],
        scenario="企业用工与社保缴纳统计", use_class="public_governance", **term,
    )
    agg = service.create_authorization(
        AUTHORITY, operator=OPERATOR, analysts=["carol"],
        scope=[ScopeRequest("water_use", None, AccessMode.AGGREGATE_ONLY),
               ScopeRequest("enterprises", None, AccessMode.ROW_LEVEL)],
        scenario="居民用水分析", use_class="industry_development", min_group_size=25, **term,
    )
    second = service.create_authorization(
        AUTHORITY, operator=OPERATOR, analysts=["bob"],
        scope=[ScopeRequest("enterprises", None, AccessMode.ROW_LEVEL)],
        scenario="市场主体活跃度分析", use_class="public_governance", **term,
    )
    next_year = datetime(now.year + 1, 6, 1, tzinfo=timezone.utc)
    late = service.create_authorization(
        AUTHORITY, operator=OPERATOR, analysts=["dave"],
        scope=[ScopeRequest("enterprises", None, AccessMode.ROW_LEVEL)],
        scenario="市场主体分析", use_class="public_governance",
        starts_at=next_year, ends_at=next_year + timedelta(days=300),
    )
    return {"row": row.id, "agg": agg.id, "second": second.id, "late": late.id}
