"""``QueryService``: the gateway's one business-logic layer (routes only call it).

``run`` takes one query from a hub-verified user through the whole path:

1. policy: the catalog's query-time check (scope, term, suspension, read afresh on every
   query) and the SQL policy (``policy.plan_query``: syntax, columns, access mode); a refusal is
   appended to the ledger as ``query.denied`` and raised. The SQL policy's work is remembered
   per SQL text and grant state (``plancache``), never the check itself;
2. governed rewrite: the aggregation rule's entity counts (``aggregation.add_group_counts``) and
   the per-dataset projections with keyed pseudonyms (``sources.render``), remembered with the
   plan;
3. execution in DuckDB with time, row and size limits (``engine.Engine``), suppressing small
   groups batch by batch. Steps 1–3 run on one state of the domain store, leased when the
   query arrives: the rewrite's facts (unique keys) and the query both come from it, and the
   remembered rewrite is keyed by it, so a dataset loaded meanwhile never mixes with them;
4. paging and hashing (``results``), then the ``query`` entry in the ledger, and only after the
   ledger confirmed it, the pages become fetchable. If the ledger cannot record the query, the
   result is dropped and ``NotRecorded`` is raised (fail closed).

Each phase is timed (``timings``); with ``timings_log`` set, one line per query says where its
time went.

Listing and describing datasets go through the catalog's own checks and change nothing.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, Sequence

from hub.catalog import access
from hub.catalog.enums import AccessMode, IdentifierClass
from hub.catalog.exceptions import QueryNotAuthorized
from hub.catalog.records import DatasetRecord, Grant
from hub.catalog.service import CatalogService
from hub.domain import Snapshot
from hub.gateway import aggregation, policy, sources
from hub.gateway.audit import QueryRecord
from hub.gateway.config import GatewayConfig
from hub.gateway.engine import Engine, Execution
from hub.gateway.exceptions import (
    DomainUnavailable,
    GatewayError,
    KeysUnavailable,
    NotRecorded,
    QueryFailed,
    QueryRefused,
    QueryTimeout,
    ResultTooLarge,
)
from hub.gateway.identity import HubUser
from hub.gateway.plancache import PlanCache, Prepared
from hub.gateway.pseudonyms import PseudonymKeyError, PseudonymKeys
from hub.gateway.results import Page, ResultStore, paginate, result_sha256
from hub.gateway.timings import Stopwatch, TimingsLog
from ledger.exceptions import LedgerError


class Ledger(Protocol):
    """Where query entries go (``ledger.log.Log`` satisfies it): durable or raises."""

    def append(self, event: dict[str, Any]) -> int: ...


@dataclass
class QueryOutcome:
    """What the analyst learns about a query that ran (the rows come as pages)."""

    query_id: str
    authorization: str | None
    datasets: list[str]
    access_modes: dict[str, str]
    columns: list[tuple[str, str]]
    rows: int
    pages: list[int]
    groups_suppressed: int
    truncated: bool
    row_limit: int
    result_sha256: str
    ledger_index: int
    first_page: Page | None
    duration_ms: float
    notes: list[str] = field(default_factory=list)


class _RecordCapture:
    """The catalog store as ``access.check_user_can_query`` reads it, keeping the dataset record
    that the check read, so the policy gets it from the same read (and snapshot)."""

    def __init__(self, store: Any):
        self.store = store
        self.record: DatasetRecord | None = None

    def query_context(self, user: str, dataset: str) -> tuple[DatasetRecord | None, list]:
        self.record, candidates = self.store.query_context(user, dataset)
        return self.record, candidates


class _UserCatalog:
    """The catalog as the policy sees it for one user at one instant (one request).

    The check of a dataset without columns (status, term, suspension, scope: the full
    query-time check) is read from the catalog once per request, with the dataset's record
    from the same read; both are remembered for this request only. Checks naming columns
    always go to the catalog.
    """

    def __init__(self, catalog: CatalogService, user: str, at: datetime):
        self.catalog, self.user, self.at = catalog, user, at
        self._grants: dict[tuple[str, str | None], Grant] = {}
        self._records: dict[str, DatasetRecord] = {}

    def grant(self, dataset: str, columns: Sequence[str], authorization: str | None) -> Grant:
        if columns:
            return self.catalog.check_user_can_query(self.user, dataset, columns, self.at,
                                                     authorization)
        key = (dataset, authorization)
        grant = self._grants.get(key)
        if grant is None:
            store = _RecordCapture(self.catalog.store)
            grant = access.check_user_can_query(store, self.user, dataset, (), self.at,
                                                authorization)
            self._grants[key] = grant
            if store.record is not None:
                self._records[dataset] = store.record
        return grant

    def dataset(self, name: str) -> DatasetRecord:
        record = self._records.get(name)
        if record is None:
            record = self._records[name] = self.catalog.get_dataset(name)
        return record


class QueryService:
    def __init__(
        self,
        catalog: CatalogService,
        engine: Engine,
        keys: PseudonymKeys,
        ledger: Ledger,
        config: GatewayConfig,
    ):
        self.catalog = catalog
        self.engine = engine
        self.keys = keys
        self.ledger = ledger
        self.config = config
        self.results = ResultStore(config.result_ttl_seconds, config.result_cache_bytes)
        self.plans = PlanCache(config.plan_cache_entries, engine.entity_unique)
        self.timings = TimingsLog(config.timings_log)
        aggregation.warm_up()

    # --- queries -----------------------------------------------------------------------------

    def run(self, user: HubUser, sql: str, authorization: str | None = None,
            source: str | None = None) -> QueryOutcome:
        watch = Stopwatch()
        try:
            snapshot, unavailable = self.engine.acquire(), None
        except DomainUnavailable as e:  # raised after the policy check, ledgered as a failure
            snapshot, unavailable = None, e
        try:
            return self._run(user, sql, authorization, source, watch, snapshot, unavailable)
        finally:
            if snapshot is not None:
                self.engine.release(snapshot)

    def _run(self, user: HubUser, sql: str, authorization: str | None, source: str | None,
             watch: Stopwatch, snapshot: Snapshot | None,
             unavailable: DomainUnavailable | None) -> QueryOutcome:
        record = QueryRecord(uuid.uuid4().hex, user, sql, source, authorization)
        try:
            checked = self.plans.check(sql, _UserCatalog(self.catalog, user.name,
                                                         self.catalog.now()), authorization,
                                       state=snapshot.state if snapshot else None)
        except (QueryRefused, QueryNotAuthorized) as e:
            self._append(record.denied(e.message, e.code, watch.elapsed_ms()),
                         "this refused query")
            raise
        plan = checked.plan
        self._describe_plan(record, plan)
        watch.lap("policy")
        try:
            if snapshot is None:
                raise unavailable  # type: ignore[misc]
            prepared = self.plans.prepare(checked, functools.partial(
                self.engine.entity_unique, snapshot=snapshot), self.engine.sizes(snapshot))
            watch.lap("prepare")
            execution = self._execute(prepared, snapshot)
        except (QueryFailed, QueryTimeout, ResultTooLarge, DomainUnavailable,
                KeysUnavailable) as e:
            self._append(record.ran(rows=0, groups_suppressed=0, truncated=False,
                                    result_sha256=None, result_bytes=0, pages=0,
                                    duration_ms=watch.elapsed_ms(),
                                    error=(e.code, e.message)),
                         "this failed query")
            raise
        watch.lap("engine")
        pages = paginate(execution.table, self.config.page_bytes)
        digest = result_sha256(pages)
        duration = watch.elapsed_ms()
        watch.lap("pages")
        index = self._append(record.ran(
            rows=execution.table.num_rows, groups_suppressed=execution.removed,
            truncated=execution.truncated, result_sha256=digest,
            result_bytes=sum(len(p) for p in pages), pages=len(pages), duration_ms=duration),
            "this query, so its result is withheld")
        watch.lap("ledger")
        self.results.put(record.query_id, user.name, pages)
        self.timings.write(record.query_id, watch, cached=checked.prepared is not None,
                           rows=execution.table.num_rows)
        return QueryOutcome(
            query_id=record.query_id, authorization=plan.authorization,
            datasets=list(plan.datasets), access_modes=plan.access_modes(),
            columns=[(f.name, str(f.type)) for f in execution.table.schema],
            rows=execution.table.num_rows, pages=[len(p) for p in pages],
            groups_suppressed=execution.removed, truncated=execution.truncated,
            row_limit=self.config.max_rows, result_sha256=digest, ledger_index=index,
            first_page=pages[0] if len(pages) == 1 and len(pages[0]) <= (
                self.config.inline_page_bytes) else None,
            duration_ms=duration, notes=_notes(plan, record, execution, self.config.max_rows),
        )

    def page(self, user: HubUser, query_id: str, number: int) -> Page:
        return self.results.page(query_id, user.name, number)

    def _execute(self, prepared: Prepared, snapshot: Snapshot) -> Execution:
        params = None
        if prepared.keyed:
            try:
                params = list(self.keys.pads_for(prepared.plan.authorization or ""))
            except PseudonymKeyError as e:
                raise KeysUnavailable(str(e)) from None
        rules = list(prepared.rules)
        try:
            return self.engine.execute(
                prepared.sql, params, max_rows=self.config.max_rows,
                max_bytes=self.config.max_result_bytes,
                transform=lambda batch: aggregation.suppress(batch, rules),
                aggregate=prepared.plan.aggregate, snapshot=snapshot,
            )
        except aggregation.ExactCountNeeded:
            assert prepared.exact is not None  # ``prepare`` pairs every bounded rule with it
            return self._execute(prepared.exact, snapshot)

    @staticmethod
    def _describe_plan(record: QueryRecord, plan: policy.Plan) -> None:
        record.authorization = plan.authorization or record.authorization
        record.datasets = list(plan.datasets)
        record.columns = {d: list(c) for d, c in sorted(plan.columns.items())}
        record.access_modes = plan.access_modes()
        record.pseudonymized = {
            d: [c for c in cols if (g := plan.grants[d].column(c)) is not None
                and g.identifier_class is IdentifierClass.DIRECT_IDENTIFIER]
            for d, cols in sorted(plan.columns.items())
        }
        record.pseudonymized = {d: c for d, c in record.pseudonymized.items()
                                if c and sources.pseudonymizes(plan)}
        record.min_group_size = {
            d: g.min_group_size for d, g in sorted(plan.grants.items())
            if g.access_mode is AccessMode.AGGREGATE_ONLY
        }

    def _append(self, event: dict[str, Any], what: str) -> int:
        try:
            return self.ledger.append(event)
        except LedgerError as e:
            raise NotRecorded(f"the ledger could not record {what}: {e}") from None

    # --- datasets ------------------------------------------------------------------------------

    def grants(self, user: HubUser, authorization: str | None = None
               ) -> list[tuple[Grant, DatasetRecord]]:
        grants = self.catalog.grants_for_user(user.name, None, authorization)
        return [(g, self.catalog.get_dataset(g.dataset)) for g in grants]

    def describe(self, user: HubUser, name: str, authorization: str | None = None
                 ) -> tuple[Grant, DatasetRecord]:
        grant = self.catalog.check_user_can_query(user.name, name, (), None, authorization)
        return grant, self.catalog.get_dataset(name)


def _notes(plan: policy.Plan, record: QueryRecord, execution: Execution, limit: int) -> list[str]:
    notes = [n for g in plan.grants.values() for n in g.notes]
    for dataset, cols in record.pseudonymized.items():
        notes.append(f"{dataset}: {', '.join(cols)} appear only as keyed pseudonyms")
    if record.min_group_size:
        sizes = ", ".join(f"{d} {k}" for d, k in record.min_group_size.items())
        notes.append(f"groups with fewer distinct people/entities than the minimum group size "
                     f"({sizes}) were removed: {execution.removed}")
    if execution.truncated:
        notes.append(f"the result was cut at the row limit of {limit:,} rows")
    return notes


__all__ = ["QueryService", "QueryOutcome", "GatewayError"]
