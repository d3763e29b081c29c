"""Shared pieces of the review workflow tests (no tests of its own).

A ``ReviewEnv`` is the review service over the session's real data domain
(``tests.gateway.world``: synthetic Kunming data in DuckDB, the catalog and authorizations),
with a ledger, a control database, a quarantine and a package store of the test's own. The
author's queries are real: they run through the gateway's ``QueryService`` (policy, DuckDB,
pseudonyms) as the hub would have let them, and land in the test's ledger as ``query`` entries,
which is where the review service finds what a request comes from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.csv as pacsv

from hub.catalog.service import CatalogService
from hub.catalog.storage import SqlAlchemyCatalogStore
from hub.domain import DomainReader, open_readonly
from hub.gateway.config import load_gateway_config
from hub.gateway.engine import Engine
from hub.gateway.identity import HubUser
from hub.gateway.pseudonyms import PseudonymKeys
from hub.gateway.service import QueryService
from ledger.entry import decode_entry
from ledger.log import Log, LogConfig, init_log
from release_review.checks.base import Thresholds
from release_review.permissions import ReviewUser
from release_review.policies import SubmittedFile
from release_review.quarantine import ContentStore
from release_review.service import DOMAIN_MEMORY, DOMAIN_THREADS, ReleaseReviewService
from release_review.storage import SqlAlchemyReviewStore
from tests.gateway.world import World

ALICE = ReviewUser("alice", frozenset({"analysts"}), "test")
BOB = ReviewUser("bob", frozenset({"analysts"}), "test")
CAROL = ReviewUser("carol", frozenset({"analysts"}), "test")
RITA = ReviewUser("rita", frozenset({"reviewers"}), "test")
ROB = ReviewUser("rob", frozenset({"reviewers"}), "test")
REGINA = ReviewUser("regina", frozenset({"regulators"}), "test")
BY_DISTRICT = "SELECT stop_district, count(*) AS trips FROM bus_trips GROUP BY stop_district"
BY_SEX = "SELECT sex, count(*) AS people FROM residents GROUP BY sex"


def read_catalog(world: World) -> CatalogService:
    """The world's catalog, for reads only (the review service changes nothing in it)."""
    return CatalogService(SqlAlchemyCatalogStore(world.settings.control_database_url, None))  # type: ignore[arg-type]


@dataclass
class ReviewEnv:
    world: World
    dir: Path
    log: Log
    service: ReleaseReviewService
    queries: QueryService
    catalog: CatalogService
    closers: list[Callable[[], None]] = field(default_factory=list)

    def entries(self, kind: str | None = None) -> list[dict[str, Any]]:
        head = self.log.store.head().size
        found = [decode_entry(bytes(d)) for _, d, _ in self.log.store.entries(0, head)]
        return [e for e in found if kind is None or e["type"] == kind]

    def query(self, user: str, sql: str, authorization: str = "row") -> pa.Table:
        """Run `sql` as `user` through the gateway's service (ledgered like any query)."""
        hub_user = HubUser(user, frozenset({"custom:shuyu:query"}), "tok-" + user, None,
                           ("analysts",))
        outcome = self.queries.run(hub_user, sql, self.world.authorizations[authorization])
        pages = [self.queries.page(hub_user, outcome.query_id, n)
                 for n in range(len(outcome.pages))]
        return pa.concat_tables([pa.ipc.open_stream(p).read_all() for p in pages])

    def raw_sql(self, sql: str) -> pa.Table:
        con = open_readonly(self.world.settings.domain_dir)
        try:
            return con.sql(sql).to_arrow_table()
        finally:
            con.close()

    def csv_file(self, name: str, table: pa.Table, released: bool = True) -> SubmittedFile:
        path = self.dir / "out" / name
        path.parent.mkdir(exist_ok=True)
        pacsv.write_csv(table, path)
        return self.file_at(path, released, "text/csv")

    def text_file(self, name: str, text: str | bytes, released: bool = True,
                  media_type: str = "text/plain") -> SubmittedFile:
        path = self.dir / "out" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
        return self.file_at(path, released, media_type)

    def file_at(self, path: Path, released: bool = True, media_type: str = "") -> SubmittedFile:
        stored = self.service.upload(ALICE, [path.read_bytes()])
        return SubmittedFile(path.name, stored.sha256, stored.size, media_type, released)

    def close(self) -> None:
        for close in reversed(self.closers):
            close()


def ledger_config(directory: Path, ledger_url: str | None = None) -> LogConfig:
    return LogConfig(ledger_dir=directory / "ledger", keys_dir=directory / "keys",
                     database_url=ledger_url or f"sqlite:///{directory / 'ledger' / 'ledger.db'}",
                     origin="shuyu.test/review", batch_max_age=0.0)


def open_env(world: World, directory: Path, control_url: str | None = None,
             min_approvals: int = 1, ledger_url: str | None = None,
             init: bool = True) -> ReviewEnv:
    """A review service over `directory`; `init=False` opens an existing ledger as it is (a
    fresh process: no cached signing key)."""
    config = ledger_config(directory, ledger_url)
    if init:
        init_log(config)
    log = Log.open(config)
    catalog = read_catalog(world)
    store = SqlAlchemyReviewStore(control_url or f"sqlite:///{directory / 'control.db'}", log)
    store.create()
    settings = world.settings
    engine = Engine(settings.domain_dir, memory_limit=DOMAIN_MEMORY, threads=DOMAIN_THREADS,
                    timeout=60)
    gateway = QueryService(catalog, engine, PseudonymKeys(settings.pseudonym_keys_dir), log,
                           load_gateway_config(hub_api_url="http://127.0.0.1:9/hub/api"))

    def dp_lane() -> Any:
        from release_review.dp.budget import BudgetStore
        from release_review.dp.engine import DpEngine
        from release_review.dp.release import DpLane

        budgets = BudgetStore(control_url or f"sqlite:///{directory / 'control.db'}", log)
        return DpLane(catalog, budgets, DpEngine(settings.domain_dir, reader))

    # as open_service: one reader for the checks and the DP lane
    reader = DomainReader(settings.domain_dir, memory_limit=DOMAIN_MEMORY,
                          threads=DOMAIN_THREADS)
    service = ReleaseReviewService(
        store, catalog, log, ContentStore(directory / "quarantine"),
        ContentStore(directory / "packages"), reader.connect, dp_lane, Thresholds(),
        min_approvals)
    env = ReviewEnv(world, directory, log, service, gateway, catalog)
    env.closers += [log.close, catalog.close, engine.close, reader.close, service.close]
    return env
