"""Data requests: analysts ask for data outside the scope; the authority approves or refuses."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hub.catalog.agreements import ScopeRequest
from hub.catalog.enums import AccessMode, Grade, Role
from hub.catalog.events import Actor
from hub.catalog.exceptions import (
    InvalidInput,
    InvalidTransition,
    NotAuthorizable,
    PermissionDenied,
    PolicyRefused,
)
from hub.catalog.states import DataRequestStatus
from tests.hub import test_catalog_support as support
from tests.hub.test_catalog_support import (
    ALICE,
    AUTHORITY,
    BOB,
    CAROL,
    ENTERPRISES,
    REGULATOR,
    Env,
    create_agreement,
    sample_catalog,
)

env = support.env  # the fixture, on SQLite and PostgreSQL
R = DataRequestStatus


@pytest.fixture
def cat(env: Env) -> Env:
    sample_catalog(env)
    return env


def test_request_for_columns_then_approval_widens_the_scope(cat: Env) -> None:
    auth = create_agreement(cat)
    svc = cat.service
    assert not svc.user_can_query("alice", "residents", ["education"])
    req = svc.create_data_request(ALICE, auth.id, "residents", ["education"],
                                  "education by district for the school-planning study")
    assert req.status is R.PENDING and req.columns == ("education",)
    created = cat.last("data_request.created")
    assert created["actor"] == "alice" and created["role"] == "analyst"
    assert created["authorization"] == auth.id and created["dataset"] == "residents"
    assert created["details"]["request"]["reason"].startswith("education by district")
    assert created["details"]["scope_now"]["access_mode"] == "row_level"
    assert created["details"]["dataset_facts"]["grade"] == "general"

    before = cat.log.store.head().size
    decided, widened = svc.approve_data_request(AUTHORITY, req.id, "needed for the scenario")
    assert decided.status is R.APPROVED and decided.decided_by == "zhang.wei"
    assert decided.decided_at == cat.clock() and decided.access_mode is AccessMode.ROW_LEVEL
    assert "education" in widened.scope_for("residents").columns
    assert svc.user_can_query("alice", "residents", ["education", "district"])
    new = cat.entries()[before:]
    assert [e["type"] for e in new] == ["data_request.approved", "authorization.scope_changed"]
    assert new[1]["details"]["data_request"] == req.id
    assert new[1]["details"]["changed"] == ["residents"]
    assert new[1]["details"]["reason"] == f"data request {req.id} approved: needed for the scenario"


def test_request_for_a_new_dataset_gets_the_mode_and_budget_decided(cat: Env) -> None:
    auth = create_agreement(cat)
    req = cat.service.create_data_request(BOB, auth.id, "contributions", [], "wage study")
    assert req.columns == ("resident_id", "credit_code", "month", "amount")
    with pytest.raises(PolicyRefused, match="aggregate_only"):
        cat.service.approve_data_request(AUTHORITY, req.id, "ok", access_mode="row_level")
    assert cat.service.get_data_request(req.id).status is R.PENDING
    _, widened = cat.service.approve_data_request(AUTHORITY, req.id, "ok", epsilon=0.25)
    scope = widened.scope_for("contributions")
    assert scope.access_mode is AccessMode.AGGREGATE_ONLY and scope.epsilon == 0.25
    assert cat.last("data_request.approved")["details"]["granted"]["epsilon"] == 0.25


def test_refuse_and_withdraw(cat: Env) -> None:
    auth = create_agreement(cat)
    svc = cat.service
    one = svc.create_data_request(ALICE, auth.id, "residents", ["name"], "names for mailing")
    refused = svc.refuse_data_request(AUTHORITY, one.id, "direct identifiers are not needed")
    assert refused.status is R.REFUSED
    assert refused.decision_reason == "direct identifiers are not needed"
    entry = cat.last("data_request.refused")
    assert entry["details"]["request"]["decision_reason"] == "direct identifiers are not needed"
    assert not svc.user_can_query("alice", "residents", ["name"])
    with pytest.raises(InvalidTransition, match="is refused and cannot become approved"):
        svc.approve_data_request(AUTHORITY, one.id, "changed my mind")
    cat.clock.advance(minutes=1)  # listings are in order of request
    two = svc.create_data_request(ALICE, auth.id, "residents", ["education"], "study")
    with pytest.raises(PermissionDenied, match="only alice, who made data request"):
        svc.withdraw_data_request(BOB, two.id, "not mine")
    with pytest.raises(PermissionDenied, match="the authority role may not make"):
        svc.withdraw_data_request(AUTHORITY, two.id, "x")
    assert svc.withdraw_data_request(ALICE, two.id, "no longer needed").status is R.WITHDRAWN
    assert [r.id for r in svc.list_data_requests(R.WITHDRAWN)] == [two.id]
    assert [r.id for r in svc.list_data_requests(authorization=auth.id)] == [one.id, two.id]


@pytest.mark.parametrize(
    "actor, dataset, columns, error, message",
    [
        (ALICE, "residents", ["district"], InvalidInput, "already within the scope"),
        (ALICE, "residents", ["salary"], InvalidInput, "has no column\\(s\\) salary"),
        (ALICE, "power_grid", [], NotAuthorizable, "核心"),
        (ALICE, "court_cases", [], NotAuthorizable, "不予开放"),
        (CAROL, "residents", ["education"], PermissionDenied, "carol is not an analyst of"),
        (AUTHORITY, "residents", ["education"], PermissionDenied, "may not request data"),
        (Actor("bob", Role.REVIEWER), "residents", ["education"], PermissionDenied,
         "registered analyst"),
    ],
)
def test_bad_requests_are_refused_and_nothing_is_stored(cat: Env, actor, dataset, columns,
                                                        error, message) -> None:
    auth = create_agreement(cat)
    with pytest.raises(error, match=message):
        cat.service.create_data_request(actor, auth.id, dataset, columns, "because")
    assert cat.service.list_data_requests() == []


def test_requests_need_a_reason_an_active_agreement_and_no_duplicate(cat: Env) -> None:
    auth = create_agreement(cat)
    svc = cat.service
    with pytest.raises(InvalidInput, match="reason for the request is required"):
        svc.create_data_request(ALICE, auth.id, "residents", ["education"], "")
    svc.create_data_request(ALICE, auth.id, "residents", ["education", "name"], "study")
    with pytest.raises(InvalidInput, match="for the same data is already pending"):
        svc.create_data_request(ALICE, auth.id, "residents", ["education"], "again")
    svc.suspend(REGULATOR, auth.id, "incident")
    with pytest.raises(PolicyRefused, match="is suspended; data can be requested only"):
        svc.create_data_request(BOB, auth.id, "contributions", [], "x")
    assert len(svc.list_data_requests()) == 1


def test_approval_is_refused_when_the_agreement_ended_or_the_data_was_regraded(cat: Env) -> None:
    auth = create_agreement(cat, scope=[ScopeRequest("residents", ("district",))])
    svc = cat.service
    req = svc.create_data_request(ALICE, auth.id, "enterprises", [], "industry mix")
    svc.register_dataset(AUTHORITY, replace(ENTERPRISES, grade=Grade.CORE))
    with pytest.raises(NotAuthorizable, match="核心"):
        svc.approve_data_request(AUTHORITY, req.id, "ok")
    svc.register_dataset(AUTHORITY, ENTERPRISES)
    svc.revoke(AUTHORITY, auth.id, "ended")
    with pytest.raises(PolicyRefused, match="is revoked: its scope can no longer be changed"):
        svc.approve_data_request(AUTHORITY, req.id, "ok")
    assert svc.get_data_request(req.id).status is R.PENDING
    assert svc.get_authorization(auth.id).datasets == ("residents",)
    assert svc.refuse_data_request(AUTHORITY, req.id, "agreement revoked").status is R.REFUSED


def test_only_the_authority_decides(cat: Env) -> None:
    auth = create_agreement(cat)
    req = cat.service.create_data_request(ALICE, auth.id, "residents", ["education"], "study")
    for actor in (ALICE, BOB, REGULATOR):
        with pytest.raises(PermissionDenied):
            cat.service.approve_data_request(actor, req.id, "self-approval")
    assert cat.service.get_data_request(req.id).status is R.PENDING
    refusals = [e for e in cat.entries() if e["type"] == "catalog.action_refused"]
    assert [r["actor"] for r in refusals] == ["alice", "bob", "audit.office"]
