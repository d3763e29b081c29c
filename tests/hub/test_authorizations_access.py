"""The query-time check: within scope and term, or refused with a reason that says why."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from hub.catalog.agreements import ScopeRequest
from hub.catalog.enums import AccessMode, Grade, IdentifierClass, OpenAttribute, UseClass
from hub.catalog.exceptions import (
    AmbiguousAuthorization,
    AuthorizationNotActive,
    ColumnsNotAuthorized,
    DatasetWithdrawn,
    NoAuthorization,
    OutsideTerm,
    QueryNotAuthorized,
)
from tests.hub import test_catalog_support as support
from tests.hub.test_catalog_support import (
    AUTHORITY,
    CONTRIBUTIONS,
    OPERATOR,
    REGULATOR,
    RESIDENTS,
    Env,
    create_agreement,
    sample_catalog,
)

env = support.env  # the fixture, on SQLite and PostgreSQL


@pytest.fixture
def cat(env: Env) -> Env:
    sample_catalog(env)
    return env


def refused(env: Env, error: type, *args, **kwargs) -> QueryNotAuthorized:
    with pytest.raises(error) as info:
        env.service.check_user_can_query(*args, **kwargs)
    assert not env.service.user_can_query(*args, **kwargs)
    return info.value


def test_grant_within_scope_and_term(cat: Env) -> None:
    auth = create_agreement(cat)
    grant = cat.service.check_user_can_query("alice", "residents", ["district", "birth_year"])
    assert cat.service.user_can_query("alice", "residents", ["district", "birth_year"])
    assert grant.authorization == auth.id and grant.operator == OPERATOR
    assert grant.access_mode is AccessMode.ROW_LEVEL and grant.epsilon == 2.0
    assert grant.min_group_size == 10 and grant.use_class is UseClass.PUBLIC_GOVERNANCE
    assert grant.column_names == ("resident_id", "district", "birth_year", "ethnicity")
    assert grant.requested_columns == ("district", "birth_year")
    assert grant.column("resident_id").identifier_class is IdentifierClass.DIRECT_IDENTIFIER
    assert grant.column("district").group_by_allowed
    assert grant.column("name") is None
    assert grant.grade is Grade.GENERAL and grant.registration_code == "KM-GA-0001"
    assert grant.version == "2026.02" and grant.acquired_on.isoformat() == "2026-02-01"
    assert grant.ends_at == auth.ends_at
    assert grant.to_json()["columns"][1]["name"] == "district"
    no_columns = cat.service.check_user_can_query("bob", "enterprises")
    assert no_columns.access_mode is AccessMode.AGGREGATE_ONLY
    assert no_columns.requested_columns == ()


def test_refusals_name_what_was_refused(cat: Env) -> None:
    create_agreement(cat)
    e = refused(cat, ColumnsNotAuthorized, "alice", "residents", ["district", "name"])
    assert e.columns == ["name"] and "column(s) name are outside the scope" in str(e)
    assert e.status == 403 and e.code == "columns_not_authorized"
    e = refused(cat, ColumnsNotAuthorized, "alice", "residents", ["salary"])
    assert "dataset 'residents' has no column(s) salary" in str(e)
    e = refused(cat, NoAuthorization, "alice", "contributions", ["month"])
    assert str(e) == "alice has no authorization that covers dataset 'contributions'"
    e = refused(cat, NoAuthorization, "carol", "residents", ["district"])
    assert e.user == "carol" and e.dataset == "residents"
    e = refused(cat, NoAuthorization, "alice", "nowhere", [])
    assert "dataset 'nowhere' is not in the catalog" in str(e)
    refused(cat, NoAuthorization, "mallory", "residents", [])


def test_suspension_revocation_and_resumption_take_effect_at_once(cat: Env) -> None:
    auth = create_agreement(cat)
    svc = cat.service
    svc.suspend(REGULATOR, auth.id, "incident 17")
    e = refused(cat, AuthorizationNotActive, "alice", "residents", ["district"])
    assert e.authorization == auth.id and e.authorization_status == "suspended"
    assert f"authorization {auth.id} is suspended (incident 17)" in str(e)
    svc.resume(REGULATOR, auth.id, "closed")
    assert svc.user_can_query("alice", "residents", ["district"])
    svc.revoke(AUTHORITY, auth.id, "breach")
    e = refused(cat, AuthorizationNotActive, "bob", "enterprises", [])
    assert e.authorization_status == "revoked"


def test_term_is_enforced_from_the_clock(cat: Env) -> None:
    start = cat.clock() + timedelta(days=10)
    auth = create_agreement(cat, starts_at=start, ends_at=start + timedelta(days=30))
    e = refused(cat, OutsideTerm, "alice", "residents", ["district"])
    assert "yet" in str(e) and "starts at 2026-03-11T01:00:00Z" in str(e)
    assert cat.service.user_can_query("alice", "residents", ["district"], at=start)
    cat.clock.at = auth.ends_at - timedelta(seconds=1)
    assert cat.service.user_can_query("alice", "residents", ["district"])
    cat.clock.at = auth.ends_at
    e = refused(cat, AuthorizationNotActive, "alice", "residents", ["district"])
    assert e.authorization_status == "expired" and "expired at" in str(e)
    assert cat.service.get_authorization(auth.id).status == "active"  # not yet recorded


def test_extension_lets_queries_continue(cat: Env) -> None:
    auth = create_agreement(cat)
    cat.service.extend(AUTHORITY, auth.id, auth.ends_at + timedelta(days=90), "renewed")
    cat.clock.at = auth.ends_at + timedelta(days=1)
    assert cat.service.user_can_query("alice", "residents", ["district"])


def test_regrading_after_the_agreement_is_enforced_at_query_time(cat: Env) -> None:
    create_agreement(cat)
    svc = cat.service
    svc.register_dataset(AUTHORITY, replace(RESIDENTS, grade=Grade.IMPORTANT))
    grant = svc.check_user_can_query("alice", "residents", ["district"])
    assert grant.access_mode is AccessMode.AGGREGATE_ONLY  # 重要: forced
    assert grant.notes == ("dataset is graded 重要 (important data): served aggregate-only",)
    svc.register_dataset(AUTHORITY, replace(RESIDENTS, grade=Grade.CORE))
    e = refused(cat, DatasetWithdrawn, "alice", "residents", ["district"])
    assert "核心" in str(e)
    svc.register_dataset(AUTHORITY, replace(RESIDENTS, open_attribute=OpenAttribute.NOT_OPEN))
    e = refused(cat, DatasetWithdrawn, "alice", "residents", ["district"])
    assert "不予开放" in str(e)
    grants = svc.grants_for_user("alice")
    assert [g.dataset for g in grants] == ["enterprises"]  # withdrawn dataset left out


def test_important_data_grant_carries_aggregate_only(cat: Env) -> None:
    create_agreement(cat, scope=[ScopeRequest("contributions", None, None, 0.5)],
                     min_group_size=25)
    grant = cat.service.check_user_can_query("alice", "contributions", ["month", "amount"])
    assert grant.access_mode is AccessMode.AGGREGATE_ONLY and grant.min_group_size == 25
    assert grant.epsilon == 0.5 and grant.grade is Grade.IMPORTANT
    assert grant.column_names == CONTRIBUTIONS.column_names


def test_several_active_agreements_must_be_told_apart(cat: Env) -> None:
    one = create_agreement(cat)
    two = create_agreement(cat, scenario="另一个场景", use_class="产业发展")
    e = refused(cat, AmbiguousAuthorization, "alice", "enterprises", [])
    assert sorted(e.authorizations) == sorted([one.id, two.id])
    grant = cat.service.check_user_can_query("alice", "enterprises", [], authorization=two.id)
    assert grant.use_class is UseClass.INDUSTRY_DEVELOPMENT
    cat.service.suspend(AUTHORITY, one.id, "pause")
    assert cat.service.check_user_can_query("alice", "enterprises").authorization == two.id
    e = refused(cat, AuthorizationNotActive, "alice", "enterprises", [], authorization=one.id)
    e = refused(cat, NoAuthorization, "alice", "enterprises", [], authorization="auth-nope")
    assert "authorization auth-nope does not give alice access" in str(e)


def test_pre_spawn_check_and_grants(cat: Env) -> None:
    assert not cat.service.user_can_work("alice")
    with pytest.raises(NoAuthorization, match="alice holds no authorization"):
        cat.service.check_user_can_work("alice")
    auth = create_agreement(cat)
    assert [a.id for a in cat.service.check_user_can_work("alice")] == [auth.id]
    grants = cat.service.grants_for_user("bob")
    assert {(g.dataset, g.access_mode) for g in grants} == {
        ("enterprises", AccessMode.AGGREGATE_ONLY), ("residents", AccessMode.ROW_LEVEL)}
    cat.service.suspend(AUTHORITY, auth.id, "pause")
    with pytest.raises(AuthorizationNotActive, match="no authorization in force"):
        cat.service.check_user_can_work("alice")
    assert not cat.service.user_can_work("alice")
