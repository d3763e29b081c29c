"""The gateway's fast paths keep every decision: the plan cache and the cheap group counts.

These tests drive a real ``QueryService`` in this process (the real catalog, ledger and DuckDB
store of the test world), so they can see whether the plan cache answered. The HTTP tests cover
the same service behind the hub.
"""

from __future__ import annotations

import functools
from datetime import timedelta

import pytest

from hub.catalog.agreements import ScopeRequest
from hub.catalog.enums import AccessMode
from hub.catalog.exceptions import AuthorizationNotActive, ColumnsNotAuthorized
from hub.gateway import aggregation, policy
from hub.gateway.config import load_gateway_config
from hub.gateway.exceptions import QueryRefused
from hub.gateway.identity import HubUser
from hub.gateway.main import build_service
from hub.gateway.plancache import prepare
from hub.gateway.service import _UserCatalog
from tests.gateway.world import AUTHORITY, OPERATOR

JOIN = ("SELECT h.district, count(*) AS people, avg(h.household_size) AS hs FROM residents r "
        "JOIN households h ON r.household_id = h.household_id GROUP BY h.district")


def hub_user(name: str) -> HubUser:
    return HubUser(name, frozenset({"custom:shuyu:query"}), f"token-of-{name}", None)


@pytest.fixture(scope="module")
def service(world):
    config = load_gateway_config(hub_api_url="http://127.0.0.1:9/hub/api")
    svc = build_service(world.settings, config)
    yield svc
    svc.timings.close()
    svc.engine.close()
    svc.catalog.close()


@pytest.fixture(scope="module")
def households_auth(world) -> str:
    """hana: residents and households, both aggregate-only (重要), in one agreement."""
    catalog, log = world.open_catalog()
    try:
        catalog.add_analyst(AUTHORITY, "hana", OPERATOR, "Hana")
        now = catalog.now()
        return catalog.create_authorization(
            AUTHORITY, operator=OPERATOR, analysts=["hana"],
            scope=[ScopeRequest("residents", None, AccessMode.AGGREGATE_ONLY),
                   ScopeRequest("households", None, AccessMode.AGGREGATE_ONLY)],
            scenario="户籍与住户统计", use_class="public_governance",
            starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=30),
        ).id
    finally:
        catalog.close()
        log.close()


def test_a_suspension_takes_effect_at_once_despite_the_cache(service, world, ledger) -> None:
    auth = world.authorizations["row"]
    sql = ("SELECT industry, count(*) AS n FROM enterprises GROUP BY industry "
           "ORDER BY n DESC, industry")
    alice = hub_user("alice")
    first = service.run(alice, sql)
    hits = service.plans.hits
    again = service.run(alice, sql)
    assert service.plans.hits == hits + 1, "the second run should come from the plan cache"
    assert again.result_sha256 == first.result_sha256
    catalog, log = world.open_catalog()
    try:
        catalog.suspend(AUTHORITY, auth, "缓存测试")
        with pytest.raises(AuthorizationNotActive) as refused:
            service.run(alice, sql)
        assert "suspended" in refused.value.message and "缓存测试" in refused.value.message
        entry = ledger.last("query.denied", sql=sql)
        assert entry["actor"] == "alice" and entry["details"]["code"] == \
            "authorization_not_active"
        assert service.plans.hits == hits + 1
    finally:
        catalog.resume(AUTHORITY, auth, "测试结束")
        catalog.close()
        log.close()
    assert service.run(alice, sql).result_sha256 == first.result_sha256
    assert service.plans.hits == hits + 2  # resuming changed nothing the plan depends on


def test_a_narrower_scope_is_checked_afresh(service, world, households_auth) -> None:
    sql = "SELECT education, count(*) AS n FROM residents GROUP BY education"
    hana = hub_user("hana")
    service.run(hana, sql)
    hits = service.plans.hits
    service.run(hana, sql)
    assert service.plans.hits == hits + 1
    catalog, log = world.open_catalog()
    try:
        columns = [c.name for c in catalog.get_dataset("residents").columns
                   if c.name != "education"]
        catalog.change_scope(AUTHORITY, households_auth, reason="去掉学历",
                             set_scope=[ScopeRequest("residents", columns,
                                                     AccessMode.AGGREGATE_ONLY)])
        with pytest.raises(ColumnsNotAuthorized, match="education"):
            service.run(hana, sql)
        assert service.plans.hits == hits + 1
    finally:
        catalog.change_scope(AUTHORITY, households_auth, reason="恢复",
                             set_scope=[ScopeRequest("residents", None,
                                                     AccessMode.AGGREGATE_ONLY)])
        catalog.close()
        log.close()
    service.run(hana, sql)  # the whole scope again: the same grant, so its plan applies
    assert service.plans.hits == hits + 2


def test_a_plan_is_not_reused_on_another_state_of_the_store(service, households_auth) -> None:
    """The rewrite relies on facts about the data (unique keys); a load gives the store a new
    state (``tests/hub/test_domain_live.py`` shows the facts change with it)."""
    catalog = _UserCatalog(service.catalog, "hana", service.catalog.now())
    with service.engine.snapshot() as snap:
        checked = service.plans.check(JOIN, catalog, None, state=snap.state)
        service.plans.prepare(checked, functools.partial(service.engine.entity_unique,
                                                         snapshot=snap))
        assert service.plans.check(JOIN, catalog, None, state=snap.state).prepared is not None
    assert service.plans.check(JOIN, catalog, None, state="a later state").prepared is None


def test_plans_are_per_user_and_refusals_are_never_remembered(service) -> None:
    sql = "SELECT legal_form, count(*) AS n FROM enterprises GROUP BY legal_form"
    alice, carol = hub_user("alice"), hub_user("carol")
    service.run(alice, sql)
    service.run(alice, sql)
    hits, misses = service.plans.hits, service.plans.misses
    service.run(carol, sql)  # same SQL, another user and agreement: checked in full
    assert (service.plans.hits, service.plans.misses) == (hits, misses + 1)
    for _ in range(2):
        with pytest.raises(QueryRefused):
            service.run(carol, "SELECT * FROM read_csv('/etc/passwd')")
    assert (service.plans.hits, service.plans.misses) == (hits, misses + 3)


# --- group counts: a plain count where rows cannot repeat, exact either way -------------------


def group_counts(service, user: str, sql: str, authorization: str | None = None,
                 bitmaps: bool = False):
    """(prepared query, {group: (gateway counts…)}) before suppression, on one snapshot; with
    `bitmaps`, the engine's data sizes let repeated sides be counted as row bitmaps."""
    catalog = _UserCatalog(service.catalog, user, service.catalog.now())
    engine = service.engine
    with engine.snapshot() as snap:
        prepared = prepare(policy.plan_query(sql, catalog, authorization),
                           functools.partial(engine.entity_unique, snapshot=snap),
                           engine.sizes(snap) if bitmaps else None)
        table = engine.execute(prepared.sql, None, max_rows=10_000, max_bytes=1 << 24,
                               snapshot=snap).table
    counts = [r.column for r in prepared.rules]
    return prepared, {r["district"]: tuple(r[c] for c in counts) for r in table.to_pylist()}


def reference(service, sql: str) -> dict:
    rows = service.engine.execute(sql, None, max_rows=10_000, max_bytes=1 << 24).table
    return {r["district"]: tuple(v for k, v in r.items() if k != "district")
            for r in rows.to_pylist()}


def test_joined_rows_that_cannot_repeat_are_counted_plainly_and_exactly(
        service, households_auth) -> None:
    prepared, got = group_counts(service, "hana", JOIN)
    assert [r.dataset for r in prepared.rules] == ["residents", "households"]
    # households.household_id is unique, and an inner join gives every row a resident
    assert 'COUNT(*) AS "__shuyu_n0"' in prepared.sql
    assert 'COUNT(DISTINCT HASH("h"."__shuyu_entity"))' in prepared.sql
    want = reference(service, "SELECT h.district, count(DISTINCT r.resident_id), "
                     "count(DISTINCT h.household_id) FROM residents r JOIN households h "
                     "ON r.household_id = h.household_id GROUP BY h.district")
    assert got == want and len(got) > 1


def test_a_left_join_counts_the_outer_side_distinctly(service, households_auth) -> None:
    sql = ("SELECT h.district, count(*) AS n FROM households h LEFT JOIN residents r "
           "ON h.household_id = r.household_id GROUP BY h.district")
    prepared, got = group_counts(service, "hana", sql)
    assert [r.dataset for r in prepared.rules] == ["households", "residents"]
    assert 'COUNT(DISTINCT HASH("h"."__shuyu_entity"))' in prepared.sql
    assert 'COUNT("r"."__shuyu_entity")' in prepared.sql
    want = reference(service, "SELECT h.district, count(DISTINCT h.household_id), "
                     "count(DISTINCT r.resident_id) FROM households h LEFT JOIN residents r "
                     "ON h.household_id = r.household_id GROUP BY h.district")
    assert got == want


def test_keys_that_are_not_unique_or_not_in_clear_keep_distinct_counts(service) -> None:
    catalog = _UserCatalog(service.catalog, "alice", service.catalog.now())
    facts = service.engine.entity_unique
    plan = policy.plan_query(
        "SELECT r.district, count(*) AS n FROM residents r JOIN social_insurance s "
        "ON r.resident_id = s.resident_id GROUP BY r.district", catalog)
    assert aggregation.not_repeated(plan, facts) == {"s"}  # each contribution: one resident
    assert aggregation.not_repeated(plan, lambda d, c: False) == set()
    mixed = policy.plan_query(
        "SELECT e.industry, sum(s.wage) AS w FROM social_insurance s JOIN enterprises e "
        "ON s.credit_code = e.credit_code GROUP BY e.industry", catalog)
    assert mixed.grants["enterprises"].access_mode is not AccessMode.AGGREGATE_ONLY
    # enterprises is row-level, so credit codes are compared as pseudonyms: never a key here
    assert aggregation.not_repeated(mixed, lambda d, c: True) == set()


def test_a_side_with_no_match_adds_no_entity_to_the_count(service) -> None:
    """Residents who never paid a contribution join to a NULL contribution row. The NULL is no
    person: it must not count towards social_insurance's group size (count(DISTINCT hash(x))
    counts hash(NULL) as one more person, which lets a group one short of the minimum out)."""
    sql = ("SELECT r.district, count(*) AS n FROM residents r LEFT JOIN social_insurance s "
           "ON r.resident_id = s.resident_id GROUP BY r.district")
    prepared, got = group_counts(service, "alice", sql)
    assert [r.dataset for r in prepared.rules] == ["residents", "social_insurance"]
    want = reference(service, "SELECT r.district, count(DISTINCT r.resident_id), "
                     "count(DISTINCT s.resident_id) FROM residents r LEFT JOIN social_insurance "
                     "s ON r.resident_id = s.resident_id GROUP BY r.district")
    assert got == want and len(got) > 1
    assert 'COUNT(DISTINCT HASH("s"."__shuyu_entity"))' in prepared.sql  # not unique in s
    assert any(r_count > s_count for r_count, s_count in got.values())  # NULL rows were there


def test_a_dataset_without_identifiers_counts_only_its_own_rows(service) -> None:
    """Without an identifier, a dataset's group size is its rows; the rows an outer join adds
    for it (all NULL: residents who never paid a contribution) are not its rows."""
    import dataclasses

    from hub.catalog.enums import IdentifierClass

    sql = ("SELECT r.district, count(*) AS n FROM residents r LEFT JOIN social_insurance s "
           "ON r.resident_id = s.resident_id GROUP BY r.district")
    catalog = _UserCatalog(service.catalog, "alice", service.catalog.now())
    plan = policy.plan_query(sql, catalog)
    record = plan.records["social_insurance"]
    plan.records["social_insurance"] = dataclasses.replace(record, columns=tuple(
        dataclasses.replace(c, identifier_class=IdentifierClass.OTHER)
        if c.identifier_class is IdentifierClass.DIRECT_IDENTIFIER else c
        for c in record.columns))
    prepared = prepare(plan, service.engine.entity_unique)
    assert 'COUNT("s"."__shuyu_entity")' in prepared.sql
    assert 'TRUE AS "__shuyu_entity"' in prepared.sql

    def run(query: str) -> list[dict]:
        return service.engine.execute(query, None, max_rows=10_000,
                                      max_bytes=1 << 24).table.to_pylist()

    got = {r["district"]: r[prepared.rules[1].column] for r in run(prepared.sql)}
    want = {r["district"]: r["n"] for r in run(
        "SELECT r.district, count(s.month) AS n FROM residents r LEFT JOIN social_insurance s "
        "ON r.resident_id = s.resident_id GROUP BY r.district")}
    rows = {r["district"]: r["n"] for r in run(sql)}
    assert got == want and len(got) > 1
    assert any(rows[d] > want[d] for d in want)  # the outer join added NULL rows


# --- the repeated side as a bitmap of its rows --------------------------------------------------


def test_a_repeated_side_with_a_unique_entity_is_counted_as_a_bitmap_of_rows(
        service, households_auth) -> None:
    prepared, got = group_counts(service, "hana", JOIN, bitmaps=True)
    assert 'COUNT(*) AS "__shuyu_n0"' in prepared.sql
    assert 'BIT_COUNT(BITSTRING_AGG("H"."__SHUYU_ROW", 0, ' in prepared.sql.upper()
    assert '"shuyu_ds_households".main."households"' in prepared.sql
    want = reference(service, "SELECT h.district, count(DISTINCT r.resident_id), "
                     "count(DISTINCT h.household_id) FROM residents r JOIN households h "
                     "ON r.household_id = h.household_id GROUP BY h.district")
    assert got == want and len(got) > 1


def test_the_bitmap_needs_a_bound_on_the_groups_that_fits_the_budget(
        service, households_auth, monkeypatch: pytest.MonkeyPatch) -> None:
    with service.engine.snapshot() as snap:
        sizes = service.engine.sizes(snap)
        rows = sizes.rows("households")
        districts = sizes.distinct("households", "district")
        assert rows == reference_rows(service, "households") and districts > 1
        catalog = _UserCatalog(service.catalog, "hana", service.catalog.now())
        plan = policy.plan_query(JOIN, catalog)
        assert aggregation.group_bound(plan, sizes, 10**9) == districts + 1  # NULL too
        assert aggregation.group_bound(plan, sizes, districts) is None  # over the limit
    # a budget too small for one bitmap per group and thread: the distinct count
    per_group = (rows + 7) // 8
    monkeypatch.setattr(aggregation, "BITMAP_BUDGET", per_group * service.engine.threads * districts)
    prepared, got = group_counts(service, "hana", JOIN, bitmaps=True)
    assert "BITSTRING_AGG" not in prepared.sql.upper()
    assert 'COUNT(DISTINCT HASH("h"."__shuyu_entity"))' in prepared.sql
    monkeypatch.setattr(aggregation, "BITMAP_BUDGET", per_group * service.engine.threads
                        * (districts + 1))
    prepared, again = group_counts(service, "hana", JOIN, bitmaps=True)
    assert "BITSTRING_AGG" in prepared.sql.upper() and again == got


def test_grouping_by_an_expression_gives_no_bound(service, households_auth) -> None:
    catalog = _UserCatalog(service.catalog, "hana", service.catalog.now())
    plan = policy.plan_query(
        "SELECT h.household_size + 1 AS s, count(*) AS n FROM residents r JOIN households h "
        "ON r.household_id = h.household_id GROUP BY h.household_size + 1", catalog)
    with service.engine.snapshot() as snap:
        assert aggregation.group_bound(plan, service.engine.sizes(snap), 10**9) is None


def reference_rows(service, dataset: str) -> int:
    table = service.engine.execute(f"SELECT count(*) AS n FROM main.{dataset}", None,
                                   max_rows=1, max_bytes=1 << 20).table
    return table.column(0)[0].as_py()


# --- the repeated side decided by a bound, exact when it cannot decide ------------------------


def most_residents_per_household(service) -> int:
    table = service.engine.execute(
        "SELECT max(n) FROM (SELECT count(*) AS n FROM main.residents "
        "WHERE household_id IS NOT NULL GROUP BY household_id)", None, max_rows=1,
        max_bytes=1 << 20).table
    return table.column(0)[0].as_py()


def test_a_repeated_side_is_counted_by_a_bound_when_its_groups_are_large(
        service, households_auth, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each household stands in at most M rows (its residents), so a district of n rows holds
    at least ceil(n / M) households: a plain count decides the rule for large groups."""
    monkeypatch.setattr(aggregation, "BOUND_MARGIN", 1)
    most = most_residents_per_household(service)
    assert most > 1
    prepared, got = group_counts(service, "hana", JOIN, bitmaps=True)
    assert [(r.dataset, r.repeats) for r in prepared.rules] == [("residents", 1),
                                                                ("households", most)]
    assert 'COUNT(*) AS "__shuyu_n1"' in prepared.sql
    assert "BITSTRING_AGG" not in prepared.sql.upper() and "DISTINCT" not in prepared.sql.upper()
    assert prepared.exact is not None and prepared.exact.exact is None
    assert all(r.repeats == 1 for r in prepared.exact.rules)
    assert "BITSTRING_AGG" in prepared.exact.sql.upper()
    want = reference(service, "SELECT h.district, count(DISTINCT r.resident_id), "
                     "count(*) FROM residents r JOIN households h "
                     "ON r.household_id = h.household_id GROUP BY h.district")
    assert got == want and len(got) > 1
    households = reference(service, "SELECT h.district, count(DISTINCT h.household_id) "
                           "FROM residents r JOIN households h "
                           "ON r.household_id = h.household_id GROUP BY h.district")
    for district, (_, rows) in got.items():  # the bound holds on the data
        assert -(-rows // most) <= households[district][0] <= rows


def test_the_bound_is_not_used_when_groups_may_be_small(
        service, households_auth) -> None:
    """Without the margin (the test world is small), the bitmap as before."""
    prepared, _ = group_counts(service, "hana", JOIN, bitmaps=True)
    assert all(r.repeats == 1 for r in prepared.rules) and prepared.exact is None
    assert "BITSTRING_AGG" in prepared.sql.upper()


@pytest.mark.parametrize("sql, exact_too", [
    # 富民县 has 57 rows: with at most 7 per household, 9 to 57 households (minimum 10)
    (JOIN.replace("AS hs", "AS mean_size"), True),
    ("SELECT h.district, h.household_size, count(*) AS n FROM residents r JOIN households h "
     "ON r.household_id = h.household_id GROUP BY h.district, h.household_size", True),
    ("SELECT h.district, count(*) AS n FROM households h LEFT JOIN residents r "
     "ON h.household_id = r.household_id GROUP BY h.district", True),
    # every group far above 9 x 7 rows: the bound decides them all
    ("SELECT count(*) AS n, avg(h.household_size) AS s FROM residents r JOIN households h "
     "ON r.household_id = h.household_id", False),
    ("SELECT r.sex, count(*) AS n FROM households h JOIN residents r "
     "ON r.household_id = h.household_id WHERE h.household_size >= 2 GROUP BY r.sex", False),
])
def test_a_bounded_query_returns_what_the_exact_one_does(
        service, households_auth, monkeypatch: pytest.MonkeyPatch, sql: str,
        exact_too: bool) -> None:
    """Whether the bound decides every group or a group sends the query to the exact count,
    the analyst gets exactly the groups (and the suppressed count) of the exact rewrite."""
    monkeypatch.setattr(aggregation, "BOUND_MARGIN", 0)  # the bound wherever there is one
    hana = hub_user("hana")
    ran: list[str] = []
    execute = service.engine.execute

    def spy(query, *args, **kwargs):  # type: ignore[no-untyped-def]
        ran.append(query)
        return execute(query, *args, **kwargs)

    monkeypatch.setattr(service.engine, "execute", spy)
    outcome = service.run(hana, sql)
    monkeypatch.undo()
    counted = [q for q in ran if "__shuyu_n" in q]
    assert len(counted) == (2 if exact_too else 1)
    assert "BITSTRING" not in counted[0].upper()
    if exact_too:
        assert "BITSTRING" in counted[1].upper() or "DISTINCT" in counted[1].upper()
    exact = service.run(hana, "/* exact */ " + sql)  # another text: planned afresh, no bound
    assert page_rows(service, hana, outcome) == page_rows(service, hana, exact)
    assert outcome.groups_suppressed == exact.groups_suppressed


def page_rows(service, user: HubUser, outcome) -> list[dict]:  # type: ignore[no-untyped-def]
    import pyarrow as pa

    rows = []
    for number in range(len(outcome.pages)):
        rows += pa.ipc.open_stream(service.page(user, outcome.query_id, number)).read_all() \
            .to_pylist()
    return sorted(rows, key=lambda r: tuple(str(v) for v in r.values()))
