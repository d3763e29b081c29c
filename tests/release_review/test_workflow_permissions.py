"""Who may act (permissions) and what the request's state allows (policies), as pairs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from hub.catalog.enums import AccessMode, Role, UseClass
from hub.catalog.records import AuthorizationRecord, DatasetScope
from hub.catalog.states import AuthorizationStatus
from release_review import permissions as perm
from release_review import policies as pol
from release_review.exceptions import InvalidInput, PermissionDenied, PolicyRefused
from release_review.permissions import ReviewUser
from release_review.records import CheckRecord, ReleaseRequest, RequestKind, VoteRecord
from release_review.states import Decision, ReleaseStatus

NOW = datetime(2026, 5, 1, tzinfo=timezone.utc)
ALICE = ReviewUser("alice", frozenset({"analysts"}))
BOB = ReviewUser("bob", frozenset({"analysts"}))
RITA = ReviewUser("rita", frozenset({"reviewers"}))
ROB = ReviewUser("rob", frozenset({"reviewers"}))
REG = ReviewUser("reg", frozenset({"regulators"}))
TWO_HATS = ReviewUser("eve", frozenset({"analysts", "reviewers"}))
NOBODY = ReviewUser("zed", frozenset())


def request(status=ReleaseStatus.CHECKED, grade="important", author="alice", round=1,
            required=2) -> ReleaseRequest:
    return ReleaseRequest("rel-1", author, "auth-1", "op", "场景", "t", "p", "", RequestKind.FILES,
                          status, round, grade, required, (), (), NOW, NOW)


def vote(reviewer: str, decision=Decision.APPROVE, round=1) -> VoteRecord:
    return VoteRecord("rel-1", round, reviewer, decision, "", NOW)


def check(verdict: str, artifact: str | None = "t.csv") -> CheckRecord:
    return CheckRecord("rel-1", 1, 0, "min_cell_count", verdict, "why", artifact)


def auth(status=AuthorizationStatus.ACTIVE, ends=NOW + timedelta(days=30)) -> AuthorizationRecord:
    return AuthorizationRecord("auth-1", "op", "场景", UseClass.PUBLIC_GOVERNANCE, 10,
                               NOW - timedelta(days=30), ends, status, frozenset({"alice", "bob"}),
                               (DatasetScope("residents", AccessMode.AGGREGATE_ONLY, 1.0,
                                             frozenset({"sex"})),))


@pytest.mark.parametrize(("user", "ok"), [(ALICE, True), (RITA, False), (REG, False),
                                          (TWO_HATS, False), (NOBODY, False)])
def test_only_analysts_submit(user, ok) -> None:
    assert perm.user_can_submit_release(user) is ok
    if not ok:
        with pytest.raises(PermissionDenied):
            perm.check_user_can_submit_release(user)


@pytest.mark.parametrize(("user", "ok"), [(RITA, True), (ALICE, False), (REG, False),
                                          (TWO_HATS, False)])
def test_only_reviewers_review(user, ok) -> None:
    assert perm.user_can_review(user) is ok


def test_one_person_holds_one_role() -> None:
    with pytest.raises(PermissionDenied, match="separation of duties"):
        perm.check_user_can_review(TWO_HATS)
    with pytest.raises(PermissionDenied, match="separation of duties"):
        perm.check_user_can_submit_release(TWO_HATS)


def test_authors_never_review_their_own_requests() -> None:
    mine = request(author="rita")
    with pytest.raises(PermissionDenied, match="authors never review their own"):
        perm.check_user_can_approve_release(RITA, mine, [])
    assert not perm.user_can_review_release(RITA, mine)
    assert perm.user_can_approve_release(ROB, mine, [])


def test_a_reviewer_votes_once_per_round() -> None:
    r = request()
    assert perm.user_can_approve_release(RITA, r, [])
    with pytest.raises(PermissionDenied, match="different reviewer"):
        perm.check_user_can_approve_release(RITA, r, [vote("rita")])
    assert perm.user_can_approve_release(ROB, r, [vote("rita")])
    # a vote in an earlier round does not count in the next one
    assert perm.user_can_approve_release(RITA, request(round=2), [vote("rita", round=1)])


def test_only_the_author_withdraws_or_resubmits() -> None:
    r = request()
    perm.check_user_is_author(ALICE, r, "withdraw")
    with pytest.raises(PermissionDenied, match="only alice"):
        perm.check_user_is_author(BOB, r, "withdraw")
    assert not perm.user_is_author(RITA, r)


def test_downloads_are_for_analysts_of_the_authorization() -> None:
    r = request(status=ReleaseStatus.RELEASED)
    team = frozenset({"alice", "bob"})
    assert perm.user_can_download_release(ALICE, r, team)
    assert perm.user_can_download_release(BOB, r, team)
    assert not perm.user_can_download_release(ReviewUser("carol", frozenset({"analysts"})), r,
                                              team)
    with pytest.raises(PermissionDenied, match="not an analyst"):
        perm.check_user_can_download_release(RITA, r, team)


def test_roles_of_users_come_from_their_groups() -> None:
    assert (ALICE.role, RITA.role, REG.role) == (Role.ANALYST, Role.REVIEWER, Role.REGULATOR)


# --- policies ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("grade", "minimum", "needed"), [
    ("important", 1, 2), ("core", 1, 2), ("general", 1, 1), ("general", 2, 2),
    ("important", 3, 3), ("general", 0, 1)])
def test_approvals_needed_follow_the_grade(grade, minimum, needed) -> None:
    assert pol.required_approvals(grade, minimum) == needed


def test_two_approvals_from_two_reviewers_approve_重要_data() -> None:
    r = request(required=2)
    assert pol.status_after_vote(r, Decision.APPROVE, [vote("rita")]) is ReleaseStatus.IN_REVIEW
    assert pol.status_after_vote(r, Decision.APPROVE, [vote("rita"), vote("rob")]) \
        is ReleaseStatus.APPROVED
    assert pol.status_after_vote(r, Decision.APPROVE, [vote("rita"), vote("rita")]) \
        is ReleaseStatus.IN_REVIEW  # the same person twice is one approval
    assert pol.status_after_vote(r, Decision.APPROVE, [vote("rita", round=0), vote("rob")]) \
        is ReleaseStatus.IN_REVIEW  # an earlier round's approval does not count


def test_one_rejection_or_return_decides() -> None:
    r = request(required=2)
    assert pol.status_after_vote(r, Decision.REJECT, [vote("rita")]) is ReleaseStatus.REJECTED
    assert pol.status_after_vote(r, Decision.RETURN, [vote("rita")]) is ReleaseStatus.RETURNED


def test_a_fail_verdict_blocks_approval_but_not_return() -> None:
    r = request()
    with pytest.raises(PolicyRefused, match="cannot be approved"):
        pol.check_decision(r, Decision.APPROVE, "", [check("pass"), check("fail")])
    pol.check_decision(r, Decision.APPROVE, "", [check("pass"), check("review")])
    pol.check_decision(r, Decision.RETURN, "round to 5", [check("fail")])
    with pytest.raises(PolicyRefused, match="before it is checked"):
        pol.check_decision(r, Decision.APPROVE, "", [])


@pytest.mark.parametrize("decision", [Decision.REJECT, Decision.RETURN])
def test_rejecting_or_returning_needs_a_comment(decision) -> None:
    with pytest.raises(PolicyRefused, match="needs a comment"):
        pol.check_decision(request(), decision, "  ", [check("pass")])


@pytest.mark.parametrize(("files", "message"), [
    ([], "at least one file"),
    ([("a/b.csv", True)], "path separator"),
    ([(".hidden.csv", True)], "hidden"),
    ([("t.csv", True), ("T.CSV", True)], "unique"),
    ([("notes.md", False)], "at least one file must be one to release"),
    ([(f"t{i}.csv", True) for i in range(21)], "at most 20"),
])
def test_malformed_submissions_are_refused(files, message) -> None:
    with pytest.raises(InvalidInput, match=message):
        pol.check_files([pol.SubmittedFile(n, "0" * 64, 1, "", r) for n, r in files])


def test_titles_and_purposes_are_required_and_bounded() -> None:
    with pytest.raises(InvalidInput, match="purpose is required"):
        pol.check_text(" ", "purpose", 10)
    with pytest.raises(InvalidInput, match="the limit is 10"):
        pol.check_text("x" * 11, "title", 10)


def test_downloads_need_a_released_request_and_a_live_authorization() -> None:
    pol.check_downloadable(request(status=ReleaseStatus.RELEASED), auth(), NOW)
    with pytest.raises(PolicyRefused, match="only released requests"):
        pol.check_downloadable(request(status=ReleaseStatus.APPROVED), auth(), NOW)
    with pytest.raises(PolicyRefused, match="suspended"):
        pol.check_downloadable(request(status=ReleaseStatus.RELEASED),
                               auth(AuthorizationStatus.SUSPENDED), NOW)
    # an agreement past its end: the product was released under it and stays downloadable
    pol.check_downloadable(request(status=ReleaseStatus.RELEASED),
                           auth(ends=NOW - timedelta(days=1)), NOW)
