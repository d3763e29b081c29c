"""Shared pieces of the DP lane tests (no tests of its own).

The lane runs against the session's real data domain (``tests.gateway.world``: synthetic
Kunming data in DuckDB, the catalog and its authorizations in SQLite), read only, with its own
budget database (SQLite or PostgreSQL) and its own real ledger per test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hub.catalog.service import CatalogService
from hub.catalog.storage import SqlAlchemyCatalogStore
from ledger.entry import decode_entry
from ledger.log import Log, LogConfig, init_log
from release_review.dp.budget import BudgetStore
from release_review.dp.engine import DpEngine
from release_review.dp.release import DpLane
from release_review.dp.spec import CheckedQuery
from tests.gateway.world import World

SI_MONTHLY = {"dataset": "social_insurance", "group_by": ["payment_status"],
              "measures": [{"op": "count"}, {"op": "sum", "column": "wage", "bounds": [0, 30000]}],
              "epsilon": 0.5, "max_rows_per_person": 12}


def ledger_config(directory: Path) -> LogConfig:
    return LogConfig(ledger_dir=directory / "ledger", keys_dir=directory / "keys",
                     database_url=f"sqlite:///{directory / 'ledger' / 'ledger.db'}",
                     origin="shuyu.test/dp", batch_max_age=0.0)


def read_catalog(world: World) -> CatalogService:
    """The world's catalog, for reads only (no ledger: nothing is changed through it)."""
    return CatalogService(SqlAlchemyCatalogStore(world.settings.control_database_url, None))  # type: ignore[arg-type]


@dataclass
class Lane:
    lane: DpLane
    log: Log
    config: LogConfig
    budgets: BudgetStore
    engine: DpEngine
    world: World

    def entries(self) -> list[dict]:
        head = self.log.store.head().size
        return [decode_entry(data) for _, data, _ in self.log.store.entries(0, head)]

    def close(self) -> None:
        self.budgets.close()
        self.engine.close()
        self.log.close()


def open_lane(world: World, directory: Path, control_url: str | None = None) -> Lane:
    config = ledger_config(directory)
    if not config.key_path.exists():
        init_log(config)
    log = Log.open(config)
    url = control_url or f"sqlite:///{directory / 'budgets.db'}"
    budgets = BudgetStore(url, log)
    engine = DpEngine(world.settings.domain_dir)
    return Lane(DpLane(read_catalog(world), budgets, engine), log, config, budgets, engine, world)


def checked(world: World, raw: dict, user: str = "alice", auth: str = "row") -> CheckedQuery:
    """Steps 1-2 of a release (parse, catalog and grant checks) without budgets or engine."""
    lane = DpLane(read_catalog(world), None, None)  # type: ignore[arg-type]
    return lane.check(raw, author=user, authorization_id=world.authorizations[auth])
