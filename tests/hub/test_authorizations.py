"""Authorization agreements: creation rules, status transitions, expiry, term, scope, analysts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from hub.catalog.agreements import ScopeRequest
from hub.catalog.enums import AccessMode, Role, UseClass
from hub.catalog.events import Actor, AuditEventType
from hub.catalog.exceptions import (
    InvalidInput,
    InvalidTransition,
    NotAuthorizable,
    NotFound,
    PermissionDenied,
    PolicyRefused,
)
from hub.catalog.policies import add_years
from hub.catalog.states import (
    AUTHORIZATION_INITIAL,
    AUTHORIZATION_STATUS_MEANING,
    AUTHORIZATION_TRANSITIONS,
    DATA_REQUEST_INITIAL,
    DATA_REQUEST_TRANSITIONS,
    AuthorizationStatus,
    DataRequestStatus,
    check_authorization_transition,
)
from tests.hub import test_catalog_support as support
from tests.hub.test_catalog_support import (
    ALICE,
    AUTHORITY,
    OPERATOR,
    OTHER_OPERATOR,
    REGULATOR,
    Env,
    create_agreement,
    sample_catalog,
)

env = support.env  # the fixture, on SQLite and PostgreSQL

S = AuthorizationStatus


@pytest.fixture
def cat(env: Env) -> Env:
    sample_catalog(env)
    return env


def stored(env: Env) -> list:
    return [a.to_json() for a in env.service.list_authorizations()]


# --- the status tables ---------------------------------------------------------------------


def reachable(table: dict, start) -> set:
    seen, todo = {start}, [start]
    while todo:
        for nxt in table[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


@pytest.mark.parametrize(
    "table, enum, initial",
    [(AUTHORIZATION_TRANSITIONS, AuthorizationStatus, AUTHORIZATION_INITIAL),
     (DATA_REQUEST_TRANSITIONS, DataRequestStatus, DATA_REQUEST_INITIAL)],
)
def test_every_status_is_in_the_table_and_reachable(table, enum, initial) -> None:
    assert set(table) == set(enum)
    assert reachable(table, initial) == set(enum)
    for moves in table.values():
        for transition in moves.values():
            assert transition.roles, "every transition names who may make it"
            assert isinstance(transition.event, AuditEventType)


def test_every_authorization_status_has_a_meaning() -> None:
    assert set(AUTHORIZATION_STATUS_MEANING) == set(AuthorizationStatus)


@pytest.mark.parametrize("current", list(AuthorizationStatus))
@pytest.mark.parametrize("target", list(AuthorizationStatus))
def test_check_transition_allows_exactly_the_table(current, target) -> None:
    allowed = AUTHORIZATION_TRANSITIONS[current].get(target)
    for role in Role:
        if allowed and role in allowed.roles:
            assert check_authorization_transition(current, target, role, "a") is allowed
        elif allowed:
            with pytest.raises(PermissionDenied, match=f"the {role} role may not"):
                check_authorization_transition(current, target, role, "a")
        else:
            with pytest.raises(InvalidTransition):
                check_authorization_transition(current, target, role, "a")


# --- creating -------------------------------------------------------------------------------


def test_create_authorization_records_self_contained_terms(cat: Env) -> None:
    auth = create_agreement(cat)
    assert auth.status is S.ACTIVE and auth.operator == OPERATOR
    assert auth.analysts == {"alice", "bob"} and auth.min_group_size == 10
    assert auth.use_class is UseClass.PUBLIC_GOVERNANCE
    residents = auth.scope_for("residents")
    assert residents.access_mode is AccessMode.ROW_LEVEL and residents.epsilon == 2.0
    assert residents.columns == {"district", "birth_year", "ethnicity", "resident_id"}
    enterprises = auth.scope_for("enterprises")
    assert enterprises.access_mode is AccessMode.AGGREGATE_ONLY and enterprises.epsilon == 1.0
    assert len(enterprises.columns) == 4
    entry = cat.last("authorization.created")
    assert entry["authorization"] == auth.id and entry["operator"] == OPERATOR
    assert entry["actor"] == "zhang.wei" and entry["role"] == "authority"
    d = entry["details"]
    assert d["scenario"] == "人口与产业分布分析" and d["use_class"] == "public_governance"
    assert d["use_class_label"] == "公共治理/公益"
    assert d["starts_at"] == "2026-03-01T01:00:00Z" and d["ends_at"] == "2027-03-01T01:00:00Z"
    assert d["analysts"] == ["alice", "bob"] and d["min_group_size"] == 10
    assert d["scope"][1] == {"dataset": "residents", "access_mode": "row_level", "epsilon": 2.0,
                             "columns": ["birth_year", "district", "ethnicity", "resident_id"]}
    facts = {f["dataset"]: f for f in d["datasets"]}
    assert facts["residents"]["grade"] == "general"
    assert facts["residents"]["registration_code"] == "KM-GA-0001"
    assert facts["enterprises"]["acquired_on"] == "2026-02-03"


@pytest.mark.parametrize(
    "dataset, error, message",
    [
        ("power_grid", NotAuthorizable, "graded 核心 .*core data cannot be authorized"),
        ("court_cases", NotAuthorizable, "不予开放 .*cannot be authorized"),
        ("bus_trips", NotAuthorizable, "政务数据共享 from 云南省交通运输厅; record"),
        ("nowhere", NotFound, "dataset 'nowhere' is not in the catalog"),
    ],
)
def test_unauthorizable_datasets_are_refused_with_the_reason(cat: Env, dataset, error, message
                                                             ) -> None:
    size = cat.log.store.head().size
    with pytest.raises(error, match=message):
        create_agreement(cat, scope=[ScopeRequest("enterprises"), ScopeRequest(dataset)])
    assert stored(cat) == []
    if error is NotAuthorizable:
        refused = cat.entries()[size:]
        assert [e["type"] for e in refused] == ["catalog.action_refused"]
        assert refused[0]["details"]["code"] == "dataset_not_authorizable"
        assert refused[0]["details"]["action"] == "create authorization"


def test_shared_data_becomes_authorizable_once_consent_is_recorded(cat: Env) -> None:
    cat.service.record_consent(AUTHORITY, "bus_trips", "云交函〔2026〕12号")
    auth = create_agreement(cat, scope=[ScopeRequest("bus_trips", ("line",))])
    assert auth.datasets == ("bus_trips",)


def test_important_data_is_aggregate_only_and_needs_a_security_officer(cat: Env) -> None:
    with pytest.raises(PolicyRefused, match="重要 .*only be authorized aggregate_only"):
        create_agreement(cat, scope=[ScopeRequest("contributions", None, AccessMode.ROW_LEVEL)])
    auth = create_agreement(cat, scope=[ScopeRequest("contributions")])
    assert auth.scope_for("contributions").access_mode is AccessMode.AGGREGATE_ONLY
    with pytest.raises(PolicyRefused, match="no named 数据安全负责人"):
        create_agreement(cat, operator=OTHER_OPERATOR, analysts=["carol"],
                         scope=[ScopeRequest("contributions")])
    assert len(stored(cat)) == 1


def test_term_is_at_most_five_years(cat: Env) -> None:
    start = cat.clock()
    ok = create_agreement(cat, ends_at=add_years(start, 5))
    assert ok.ends_at - ok.starts_at >= timedelta(days=5 * 365)
    with pytest.raises(PolicyRefused, match="longer than 5 years .*最长不超过5年"):
        create_agreement(cat, ends_at=add_years(start, 5) + timedelta(seconds=1))
    with pytest.raises(InvalidInput, match="before or when it starts"):
        create_agreement(cat, ends_at=start)
    with pytest.raises(PolicyRefused, match="ended already"):
        create_agreement(cat, starts_at=start - timedelta(days=30),
                         ends_at=start - timedelta(days=1))
    with pytest.raises(InvalidInput, match="has no time zone"):
        create_agreement(cat, ends_at=datetime(2027, 1, 1))
    assert [a["id"] for a in stored(cat)] == [ok.id]


def test_leap_day_terms_end_on_28_february() -> None:
    leap = datetime(2028, 2, 29, tzinfo=timezone.utc)
    assert add_years(leap, 5) == datetime(2033, 2, 28, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "overrides, error, message",
    [
        (dict(analysts=["carol"]), PolicyRefused, "works for operator '滇池数据服务有限公司'"),
        (dict(analysts=["zed"]), NotFound, "analyst 'zed' does not exist"),
        (dict(analysts=[]), InvalidInput, "at least one analyst"),
        (dict(analysts=["alice", "alice"]), InvalidInput, "listed more than once"),
        (dict(scope=[]), InvalidInput, "at least one dataset"),
        (dict(scope=[ScopeRequest("enterprises"), ScopeRequest("enterprises")]), InvalidInput,
         "listed more than once"),
        (dict(scope=[ScopeRequest("residents", ("district", "salary"))]), InvalidInput,
         "has no column\\(s\\) salary"),
        (dict(scope=[ScopeRequest("residents", ())]), InvalidInput, "names no columns"),
        (dict(scope=[ScopeRequest("residents", None, None, 0)]), InvalidInput,
         "greater than 0 and at most 20"),
        (dict(scope=[ScopeRequest("residents", None, None, float("nan"))]), InvalidInput,
         "epsilon"),
        (dict(scope=[ScopeRequest("residents", None, "everything")]), InvalidInput,
         "access mode 'everything' is not one of"),
        (dict(min_group_size=1), InvalidInput, "from 2 to 100000"),
        (dict(use_class="profit"), InvalidInput, "use class 'profit' is not one of"),
        (dict(scenario=""), InvalidInput, "scenario .* is required"),
        (dict(operator="nobody"), NotFound, "operator 'nobody' does not exist"),
    ],
)
def test_bad_agreements_are_refused_and_nothing_is_stored(cat: Env, overrides, error, message
                                                          ) -> None:
    with pytest.raises(error, match=message):
        create_agreement(cat, **overrides)
    assert stored(cat) == []


def test_only_the_authority_creates_agreements(cat: Env) -> None:
    for actor in (REGULATOR, ALICE, Actor("rev", Role.REVIEWER)):
        with pytest.raises(PermissionDenied):
            cat.service.create_authorization(
                actor, operator=OPERATOR, analysts=["alice"], scope=[ScopeRequest("enterprises")],
                scenario="x", use_class="产业发展", starts_at=cat.clock(),
                ends_at=cat.clock() + timedelta(days=1))
    assert stored(cat) == []


# --- suspension, resumption, revocation, expiry ----------------------------------------------


def test_suspend_resume_revoke_with_ledger_entries(cat: Env) -> None:
    auth = create_agreement(cat)
    svc = cat.service
    assert svc.suspend(AUTHORITY, auth.id, "security review").status is S.SUSPENDED
    entry = cat.last("authorization.suspended")
    assert entry["details"]["from"] == "active" and entry["details"]["to"] == "suspended"
    assert entry["details"]["reason"] == "security review"
    assert entry["details"]["analysts"] == ["alice", "bob"]
    assert entry["details"]["scope"][0]["dataset"] == "enterprises"
    assert svc.resume(AUTHORITY, auth.id, "review passed").status is S.ACTIVE
    assert cat.last("authorization.resumed")["details"]["reason"] == "review passed"
    revoked = svc.revoke(AUTHORITY, auth.id, "breach of terms")
    assert revoked.status is S.REVOKED and revoked.status_reason == "breach of terms"
    for action in (svc.suspend, svc.resume, svc.revoke):
        with pytest.raises(InvalidTransition, match="revoked"):
            action(AUTHORITY, auth.id, "again")
    assert svc.get_authorization(auth.id).status is S.REVOKED
    with pytest.raises(InvalidInput, match="reason is required"):
        svc.suspend(AUTHORITY, create_agreement(cat).id, " ")


def test_a_regulator_suspension_is_lifted_only_by_a_regulator(cat: Env) -> None:
    auth = create_agreement(cat)
    cat.service.suspend(REGULATOR, auth.id, "audit finding 2026-07")
    assert cat.last("authorization.suspended")["role"] == "regulator"
    with pytest.raises(PermissionDenied, match="only a regulator may resume it"):
        cat.service.resume(AUTHORITY, auth.id, "we disagree")
    assert cat.service.get_authorization(auth.id).status is S.SUSPENDED
    with pytest.raises(PermissionDenied, match="the regulator role may not make .* revoked"):
        cat.service.revoke(REGULATOR, auth.id, "x")
    assert cat.service.resume(REGULATOR, auth.id, "finding closed").status is S.ACTIVE


def test_analysts_cannot_change_their_own_agreement(cat: Env) -> None:
    auth = create_agreement(cat)
    with pytest.raises(PermissionDenied):
        cat.service.suspend(ALICE, auth.id, "x")
    with pytest.raises(PermissionDenied, match="registered analyst"):
        cat.service.suspend(Actor("alice", Role.REGULATOR), auth.id, "x")
    assert cat.service.get_authorization(auth.id).status is S.ACTIVE


def test_expiry_is_computed_from_the_clock_and_recorded_by_the_job(cat: Env) -> None:
    auth = create_agreement(cat)
    cat.clock.at = auth.ends_at
    svc = cat.service
    assert svc.get_authorization(auth.id).status is S.ACTIVE  # not recorded yet…
    assert svc.get_authorization(auth.id).effective_status(cat.clock()) is S.EXPIRED  # …but over
    assert [a.id for a in svc.list_authorizations(S.EXPIRED)] == [auth.id]
    assert svc.list_authorizations(S.ACTIVE) == []
    with pytest.raises(InvalidTransition, match="is expired and cannot become suspended"):
        svc.suspend(AUTHORITY, auth.id, "too late")
    expired = svc.expire_due()
    assert [a.id for a in expired] == [auth.id] and expired[0].status is S.EXPIRED
    entry = cat.last("authorization.expired")
    assert entry["role"] == "service" and entry["details"]["reason"].startswith("term ended at")
    assert svc.expire_due() == []
    with pytest.raises(PolicyRefused, match="is expired: its term can no longer be changed"):
        svc.extend(AUTHORITY, auth.id, auth.ends_at + timedelta(days=30), "renew")


def test_expiry_cannot_be_recorded_early(cat: Env) -> None:
    auth = create_agreement(cat)
    with pytest.raises(PolicyRefused, match="cannot expire before its end"):
        cat.service.transition(AUTHORITY, auth.id, S.EXPIRED, "early")
    assert cat.service.expire_due() == []


def test_suspended_agreements_expire_too(cat: Env) -> None:
    auth = create_agreement(cat)
    cat.service.suspend(AUTHORITY, auth.id, "pause")
    cat.clock.advance(days=400)
    assert [a.id for a in cat.service.expire_due()] == [auth.id]
    assert cat.last("authorization.expired")["details"]["from"] == "suspended"


# --- term, scope and analysts ----------------------------------------------------------------


def test_extend_within_five_years(cat: Env) -> None:
    auth = create_agreement(cat)
    longer = cat.service.extend(AUTHORITY, auth.id, add_years(auth.starts_at, 5), "renewed")
    assert longer.ends_at == add_years(auth.starts_at, 5)
    entry = cat.last("authorization.extended")
    assert entry["details"]["old_end"] == "2027-03-01T01:00:00Z"
    assert entry["details"]["new_end"] == "2031-03-01T01:00:00Z"
    with pytest.raises(PolicyRefused, match="longer than 5 years"):
        cat.service.extend(AUTHORITY, auth.id, longer.ends_at + timedelta(days=1), "more")
    with pytest.raises(InvalidInput, match="must end later"):
        cat.service.extend(AUTHORITY, auth.id, longer.ends_at - timedelta(days=1), "shorter")
    assert cat.service.get_authorization(auth.id).ends_at == longer.ends_at


def test_scope_changes_record_before_and_after(cat: Env) -> None:
    auth = create_agreement(cat)
    svc = cat.service
    changed = svc.change_scope(
        AUTHORITY, auth.id, reason="add social insurance",
        set_scope=[ScopeRequest("contributions", ("month", "amount"), None, 0.5)],
        remove=["enterprises"])
    assert changed.datasets == ("contributions", "residents")
    assert changed.scope_for("contributions").columns == {"month", "amount"}
    entry = cat.last("authorization.scope_changed")["details"]
    assert entry["added"] == ["contributions"] and entry["removed"] == ["enterprises"]
    assert [s["dataset"] for s in entry["before"]] == ["enterprises", "residents"]
    assert [s["dataset"] for s in entry["scope"]] == ["contributions", "residents"]
    narrowed = svc.change_scope(AUTHORITY, auth.id, reason="least privilege",
                                set_scope=[ScopeRequest("residents", ("district",))])
    assert narrowed.scope_for("residents").columns == {"district"}
    assert narrowed.scope_for("residents").access_mode is AccessMode.ROW_LEVEL  # kept
    assert cat.last("authorization.scope_changed")["details"]["changed"] == ["residents"]


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(remove=["contributions"]), InvalidInput, "not in the scope"),
        (dict(remove=["residents", "enterprises"]), InvalidInput, "would cover no dataset"),
        (dict(set_scope=[ScopeRequest("enterprises")]), InvalidInput, "would not change"),
        (dict(set_scope=[ScopeRequest("power_grid")]), NotAuthorizable, "核心"),
        (dict(set_scope=[ScopeRequest("contributions", None, AccessMode.ROW_LEVEL)]),
         PolicyRefused, "aggregate_only"),
    ],
)
def test_bad_scope_changes_are_refused(cat: Env, kwargs, error, message) -> None:
    auth = create_agreement(cat)
    before = stored(cat)
    with pytest.raises(error, match=message):
        cat.service.change_scope(AUTHORITY, auth.id, reason="x", **kwargs)
    assert stored(cat) == before


def test_revoked_agreements_keep_their_scope(cat: Env) -> None:
    auth = create_agreement(cat)
    cat.service.revoke(AUTHORITY, auth.id, "ended early")
    with pytest.raises(PolicyRefused, match="is revoked: its scope can no longer be changed"):
        cat.service.change_scope(AUTHORITY, auth.id, reason="x", remove=["enterprises"])


def test_change_analysts(cat: Env) -> None:
    auth = create_agreement(cat, analysts=["alice"])
    svc = cat.service
    team = svc.change_analysts(AUTHORITY, auth.id, reason="new hire", add=["bob"])
    assert team.analysts == {"alice", "bob"}
    assert cat.last("authorization.analysts_changed")["details"]["added"] == ["bob"]
    team = svc.change_analysts(AUTHORITY, auth.id, reason="left", remove=["alice"])
    assert team.analysts == {"bob"}
    with pytest.raises(PolicyRefused, match="works for operator"):
        svc.change_analysts(AUTHORITY, auth.id, reason="x", add=["carol"])
    with pytest.raises(InvalidInput, match="would have no analyst"):
        svc.change_analysts(AUTHORITY, auth.id, reason="x", remove=["bob"])
    with pytest.raises(InvalidInput, match="not analysts of"):
        svc.change_analysts(AUTHORITY, auth.id, reason="x", remove=["alice"])
    assert svc.get_authorization(auth.id).analysts == {"bob"}


def test_listing_filters(cat: Env) -> None:
    one = create_agreement(cat)
    cat.clock.advance(minutes=1)  # listings are in order of creation
    two = create_agreement(cat, analysts=["bob"], scope=[ScopeRequest("contributions")])
    svc = cat.service
    assert [a.id for a in svc.list_authorizations(analyst="alice")] == [one.id]
    assert [a.id for a in svc.list_authorizations(dataset="contributions")] == [two.id]
    assert [a.id for a in svc.list_authorizations(operator=OPERATOR)] == [one.id, two.id]
    assert svc.list_authorizations(operator=OTHER_OPERATOR) == []
    svc.suspend(AUTHORITY, two.id, "x")
    assert [a.id for a in svc.list_authorizations(S.SUSPENDED)] == [two.id]


def test_the_states_page_is_generated_from_the_tables() -> None:
    from click.testing import CliRunner

    from hub.catalog.states import states_markdown
    from shuyu_server.cli import cli

    page = CliRunner().invoke(cli, ["authority", "states"]).stdout
    assert page == states_markdown()
    for table in (AUTHORIZATION_TRANSITIONS, DATA_REQUEST_TRANSITIONS):
        for current, moves in table.items():
            for target, step in moves.items():
                assert f"    {current} --> {target}: {step.event} (" in page
            if not moves:
                assert f"    {current} --> [*]" in page
    for status, meaning in AUTHORIZATION_STATUS_MEANING.items():
        assert f"- `{status}`: {meaning}" in page
