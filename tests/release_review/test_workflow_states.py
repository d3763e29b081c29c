"""The request state machine as data: owners, audit events, reachability, every transition."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from hub.catalog.enums import Role
from release_review.exceptions import InvalidTransition, PermissionDenied
from release_review.service import check_transition
from release_review.states import (
    DECISION_STATUS,
    FINAL,
    INITIAL,
    STATUS_AUDIT_EVENT,
    STATUS_MEANING,
    STATUS_OWNER,
    TRANSITIONS,
    AuditEventType,
    Owner,
    ReleaseStatus,
    states_markdown,
)

S = ReleaseStatus
ROLES = (Role.ANALYST, Role.REVIEWER, Role.SERVICE, Role.REGULATOR, Role.AUTHORITY)
ALLOWED = [(current, target, role) for current, moves in TRANSITIONS.items()
           for target, roles in moves.items() for role in roles]


def test_every_status_has_an_owner_an_event_a_meaning_and_a_row() -> None:
    for status in ReleaseStatus:
        assert status in TRANSITIONS
        assert isinstance(STATUS_OWNER[status], Owner)
        assert isinstance(STATUS_AUDIT_EVENT[status], AuditEventType)
        assert STATUS_MEANING[status]


def test_final_statuses_are_owned_by_nobody_and_lead_nowhere() -> None:
    for status in ReleaseStatus:
        assert (status in FINAL) == (TRANSITIONS[status] == {})
        assert (status in FINAL) == (STATUS_OWNER[status] is Owner.NOBODY)


def test_each_status_enters_with_its_own_ledger_event() -> None:
    events = list(STATUS_AUDIT_EVENT.values())
    assert len(events) == len(set(events))
    assert all(e.value.startswith("release.") for e in AuditEventType)


def test_every_status_is_reachable_from_the_initial_one() -> None:
    seen, todo = {INITIAL}, [INITIAL]
    while todo:
        for target in TRANSITIONS[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    assert seen == set(ReleaseStatus)


def test_owners_are_the_roles_that_move_the_status() -> None:
    owner_role = {Owner.AUTHOR: Role.ANALYST, Owner.REVIEWER: Role.REVIEWER,
                  Owner.SYSTEM: Role.SERVICE}
    for status, owner in STATUS_OWNER.items():
        if owner is Owner.NOBODY:
            continue
        movers = {r for roles in TRANSITIONS[status].values() for r in roles}
        assert owner_role[owner] in movers, status


def test_decisions_lead_to_statuses_reviewers_may_set() -> None:
    for decision, status in DECISION_STATUS.items():
        assert any(Role.REVIEWER in TRANSITIONS[s].get(status, ()) for s in (S.CHECKED,
                                                                               S.IN_REVIEW))


@pytest.mark.parametrize(("current", "target", "role"), ALLOWED,
                         ids=[f"{c}->{t}:{r}" for c, t, r in ALLOWED])
def test_each_allowed_transition_passes_the_check(current, target, role) -> None:
    check_transition(current, target, role, "rel-x")


@pytest.mark.parametrize(("current", "target"), list(itertools.product(S, S)))
def test_every_other_move_is_refused_with_a_reason(current, target) -> None:
    allowed = TRANSITIONS[current].get(target)
    for role in ROLES:
        if allowed and role in allowed:
            continue
        expected = PermissionDenied if allowed else InvalidTransition
        with pytest.raises(expected) as e:
            check_transition(current, target, role, "rel-x")
        assert "rel-x" in e.value.message
        if expected is InvalidTransition and current != target:
            assert f"from {current} it may become" in e.value.message


def test_the_reference_page_is_generated_from_the_tables() -> None:
    page = Path(__file__).resolve().parents[2] / "docs" / "reference" / "release-states.md"
    assert page.read_text(encoding="utf-8") == states_markdown(), (
        "docs/reference/release-states.md is stale: run python scripts/release_states.py")
    for current, moves in TRANSITIONS.items():
        for target in moves:
            assert f"{current} --> {target}: {STATUS_AUDIT_EVENT[target]}" in page.read_text()
