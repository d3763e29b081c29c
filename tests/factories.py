"""Factories that build objects in a known state through the real code paths.

``create_release_at_status(env, status)`` makes a release request and takes it to `status` the
way people would: the author's query runs through the gateway's service (so the ledger knows
what the request comes from), the file goes to quarantine, the automatic checks run, reviewers
vote. The one shortcut is ``approved``: approving normally releases at once, so the factory
applies the approving transition itself (``ReleaseReviewService.transition``) and stops before
packaging.
"""

from __future__ import annotations

from typing import Any

from hub.catalog.enums import Role
from hub.catalog.events import Actor
from release_review.records import ReleaseRequest
from release_review.states import Decision, ReleaseStatus
from tests.release_review.review_support import (
    ALICE,
    BY_DISTRICT,
    BY_SEX,
    RITA,
    ROB,
    ReviewEnv,
)

S = ReleaseStatus


def submitted_request(env: ReviewEnv, important: bool = False, title: str = "公交刷卡按区县",
                      **kw: Any) -> ReleaseRequest:
    """A new request from alice over a safe count table (重要 residents data if `important`,
    else 一般 bus trips)."""
    sql = BY_SEX if important else BY_DISTRICT
    table = env.query("alice", sql)
    f = env.csv_file(("by_sex" if important else "by_district") + ".csv", table)
    return env.service.submit(ALICE, title=title, purpose="统计报告附表",
                              context="counts per group, one table", files=[f], **kw)


def create_release_at_status(env: ReviewEnv, status: ReleaseStatus | str,
                             important: bool = False) -> ReleaseRequest:
    status = ReleaseStatus(status)
    svc = env.service
    request = submitted_request(env, important)
    if status is S.SUBMITTED:
        return request
    if status is S.WITHDRAWN:
        return svc.withdraw(ALICE, request.id, "not needed")
    request = svc.run_checks(request.id)
    if status is S.CHECKED:
        return request
    if status is S.IN_REVIEW:
        if not important:
            raise ValueError("only a request that needs two approvals can be in review")
        return svc.vote(RITA, request.id, Decision.APPROVE, "first look: fine")
    if status is S.REJECTED:
        return svc.vote(RITA, request.id, Decision.REJECT, "not for release")
    if status is S.RETURNED:
        return svc.vote(RITA, request.id, Decision.RETURN, "round the counts to 5")
    if status is S.APPROVED:
        return svc.transition(request, S.APPROVED, Actor(RITA.name, Role.REVIEWER, "test"),
                              {"decision": "approve"}, decided_at=svc.clock())
    if status is S.RELEASED:
        request = svc.vote(RITA, request.id, Decision.APPROVE, "fine")
        if request.status is S.IN_REVIEW:
            request = svc.vote(ROB, request.id, Decision.APPROVE, "fine too")
        return request
    raise ValueError(f"no recipe for {status}")
