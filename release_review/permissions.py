"""Who may do what with release requests, in check/bool pairs.

``check_user_can_X(user, …)`` raises ``PermissionDenied`` with a reason a person can act on;
``user_can_X(user, …)`` wraps it and returns a bool for pages and buttons. Permissions depend only
on who the user is (hub groups) and whose request it is; what the request's state allows is in
``policies.py``, and which status moves are possible is in ``states.py``.

Roles come from hub groups (``hub/jupyterhub_config.py``): ``analysts`` submit and download,
``reviewers`` review. Separation of duties (DESIGN.md "Who uses it"; R5, R20): one person never
holds two of analyst, reviewer and regulator, so anyone in two of those groups is refused every
act here; an author never reviews their own request; a reviewer votes once per round, so two
approvals always come from two different people.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hub.catalog.enums import Role
from release_review.exceptions import PermissionDenied
from release_review.records import ReleaseRequest, VoteRecord

ANALYSTS, REVIEWERS, REGULATORS = "analysts", "reviewers", "regulators"
EXCLUSIVE = (ANALYSTS, REVIEWERS, REGULATORS)


@dataclass(frozen=True)
class ReviewUser:
    """A person the hub vouched for, with the hub groups that give their role."""

    name: str
    groups: frozenset[str] = field(default_factory=frozenset)
    source: str | None = None  # where the request came from (for the ledger)

    @property
    def role(self) -> Role:
        if REVIEWERS in self.groups:
            return Role.REVIEWER
        if REGULATORS in self.groups:
            return Role.REGULATOR
        return Role.ANALYST

    def holds(self, group: str) -> bool:
        return group in self.groups


def _check_single_role(user: ReviewUser) -> None:
    held = [g for g in EXCLUSIVE if g in user.groups]
    if len(held) > 1:
        raise PermissionDenied(
            f"{user.name} is in the {' and '.join(held)} groups; one person may hold only one of "
            "these roles (separation of duties), so the review service refuses every act until "
            "an administrator fixes the groups")


def check_user_can_submit_release(user: ReviewUser) -> None:
    _check_single_role(user)
    if not user.holds(ANALYSTS):
        raise PermissionDenied(f"{user.name} is not an analyst; only analysts submit outputs "
                               "for release")


def user_can_submit_release(user: ReviewUser) -> bool:
    return _bool(check_user_can_submit_release, user)


def check_user_can_review(user: ReviewUser) -> None:
    """May see the queue and the reviewer pages at all."""
    _check_single_role(user)
    if not user.holds(REVIEWERS):
        raise PermissionDenied(f"{user.name} is not a reviewer; the review pages are for the "
                               "reviewers group only")


def user_can_review(user: ReviewUser) -> bool:
    return _bool(check_user_can_review, user)


def check_user_can_review_release(user: ReviewUser, request: ReleaseRequest) -> None:
    """May see this request's page, previews and queries, and comment on it."""
    check_user_can_review(user)
    if user.name == request.author:
        raise PermissionDenied(f"{user.name} wrote request {request.id}; authors never review "
                               "their own requests")


def user_can_review_release(user: ReviewUser, request: ReleaseRequest) -> bool:
    return _bool(check_user_can_review_release, user, request)


def check_user_can_approve_release(user: ReviewUser, request: ReleaseRequest,
                                   votes: list[VoteRecord]) -> None:
    """May cast a vote (approve, reject or return) in the request's current round.

    `votes` are the request's votes; only those of the current round count.
    """
    check_user_can_review_release(user, request)
    mine = [v for v in votes if v.reviewer == user.name and v.round == request.round]
    if mine:
        raise PermissionDenied(
            f"{user.name} already voted ({mine[0].decision}) on request {request.id} in round "
            f"{request.round}; a second approval must come from a different reviewer")


def user_can_approve_release(user: ReviewUser, request: ReleaseRequest,
                             votes: list[VoteRecord]) -> bool:
    return _bool(check_user_can_approve_release, user, request, votes)


def check_user_is_author(user: ReviewUser, request: ReleaseRequest, act: str) -> None:
    """Only the author may `act` (withdraw, amend and resubmit, see the status)."""
    _check_single_role(user)
    if user.name != request.author:
        raise PermissionDenied(f"only {request.author}, who submitted request {request.id}, may "
                               f"{act} it")


def user_is_author(user: ReviewUser, request: ReleaseRequest) -> bool:
    return _bool(check_user_is_author, user, request, "see")


def check_user_can_download_release(user: ReviewUser, request: ReleaseRequest,
                                    team: frozenset[str]) -> None:
    """May download the released package: an analyst of the request's authorization.

    `team` are the analysts the authorization names now.
    """
    _check_single_role(user)
    if not user.holds(ANALYSTS):
        raise PermissionDenied(f"{user.name} is not an analyst; packages are downloaded by the "
                               "analysts of the authorization they were made under")
    if user.name != request.author and user.name not in team:
        raise PermissionDenied(f"{user.name} is not an analyst of authorization "
                               f"{request.authorization}, under which request {request.id} was "
                               "made")


def user_can_download_release(user: ReviewUser, request: ReleaseRequest,
                              team: frozenset[str]) -> bool:
    return _bool(check_user_can_download_release, user, request, team)


def _bool(check, *args) -> bool:  # type: ignore[no-untyped-def]
    try:
        check(*args)
    except PermissionDenied:
        return False
    return True
