"""What the rules allow for a release request as it stands: inputs, approvals, decisions.

Policies differ from permissions (``permissions.py``): a permission says whether a person may
act on a request at all (their role, whether they wrote it); a policy says whether the request,
its files, its check results and its votes, as they stand now, allow the act. Every check raises
``PolicyRefused`` (or ``InvalidInput`` for malformed input) with a message that names the rule.

Rules (``shared/reference/regulations.md`` R5, R8, R9; peer practice in ``peer-systems.md``):

- a request has 1–20 files with plain, unique names, at least one of them to be released;
  supporting files are reviewed but never released (Airlock's supporting files);
- a request whose sources include 重要 (important) data needs approvals from two different
  reviewers; others need ``min_approvals`` (default 1). The grade of an output is the highest
  grade of its sources (就高从严, R9);
- a request with a FAIL verdict from any automatic check cannot be approved: the reviewer
  returns it for changes or rejects it (a FAIL means "must not be released as is");
- rejecting or returning needs a comment that tells the author why, or what to change;
- a package is downloaded only from a released request, and not while its authorization is
  suspended or revoked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from hub.catalog.enums import Grade
from hub.catalog.records import AuthorizationRecord
from hub.catalog.states import AuthorizationStatus
from release_review.exceptions import InvalidInput, PolicyRefused
from release_review.records import CheckRecord, ReleaseRequest, VoteRecord
from release_review.states import Decision, ReleaseStatus

MAX_FILES = 20
MAX_NAME = 200
MAX_TITLE = 300
MAX_PURPOSE = 4000
MAX_CONTEXT = 8000
MAX_COMMENT = 4000
TWO_PERSON_GRADES = frozenset({str(Grade.IMPORTANT), str(Grade.CORE)})
BAD_NAME = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")


@dataclass(frozen=True)
class SubmittedFile:
    """A file of a submission: already in quarantine under `sha256`."""

    name: str
    sha256: str
    size: int
    media_type: str = ""
    released: bool = True


def check_text(value: str, what: str, limit: int, required: bool = True) -> str:
    value = (value or "").strip()
    if required and not value:
        raise InvalidInput(f"{what} is required: tell the reviewers what this is")
    if len(value) > limit:
        raise InvalidInput(f"{what} is {len(value):,} characters; the limit is {limit:,}")
    return value


def check_file_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("a file has no name")
    if BAD_NAME.search(name) or name in (".", ".."):
        raise InvalidInput(f"file name {name!r} contains a path separator or a control or "
                           "reserved character; use a plain name such as 'table.csv'")
    if name.startswith("."):
        raise InvalidInput(f"file name {name!r} is hidden (starts with '.'); hidden files are "
                           "not released")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"file name {name[:40]!r}… is longer than {MAX_NAME} characters")
    return name


def check_files(files: list[SubmittedFile]) -> None:
    if not files:
        raise InvalidInput("a release request needs at least one file")
    if len(files) > MAX_FILES:
        raise InvalidInput(f"a release request may hold at most {MAX_FILES} files, not "
                           f"{len(files)}; split it into several requests")
    seen: set[str] = set()
    for f in files:
        check_file_name(f.name)
        key = f.name.casefold()
        if key in seen:
            raise InvalidInput(f"two files are named {f.name!r}; names must be unique")
        seen.add(key)
    if not any(f.released for f in files):
        raise InvalidInput("every file is marked supporting; at least one file must be one to "
                           "release")


def required_approvals(grade: str, min_approvals: int = 1) -> int:
    """Two different reviewers for 重要 (or higher) data, else `min_approvals` (at least 1)."""
    floor = max(1, int(min_approvals))
    return max(2, floor) if grade in TWO_PERSON_GRADES else floor


def blocking_results(checks: list[CheckRecord]) -> list[CheckRecord]:
    """The FAIL verdicts that stop an approval."""
    return [c for c in checks if c.verdict == "fail"]


def check_decision(request: ReleaseRequest, decision: Decision, comment: str,
                   checks: list[CheckRecord]) -> None:
    if decision in (Decision.REJECT, Decision.RETURN) and not comment.strip():
        what = "why it is rejected" if decision is Decision.REJECT else "what to change"
        raise PolicyRefused(f"a {decision} needs a comment that tells the author {what}")
    if len(comment) > MAX_COMMENT:
        raise InvalidInput(f"the comment is {len(comment):,} characters; the limit is "
                           f"{MAX_COMMENT:,}")
    if decision is Decision.APPROVE:
        if not checks:
            raise PolicyRefused(f"request {request.id} has no check results for round "
                                f"{request.round}; it cannot be approved before it is checked")
        failed = blocking_results(checks)
        if failed:
            named = "; ".join(f"{c.check}" + (f" on {c.artifact}" if c.artifact else "")
                              for c in failed[:5])
            raise PolicyRefused(
                f"request {request.id} failed {len(failed)} automatic check(s) ({named}); a "
                "request with a FAIL cannot be approved: return it with what to change, or "
                "reject it")


def status_after_vote(request: ReleaseRequest, decision: Decision,
                      votes: list[VoteRecord]) -> ReleaseStatus:
    """Where a vote takes the request; `votes` are the round's votes including this one."""
    if decision is Decision.REJECT:
        return ReleaseStatus.REJECTED
    if decision is Decision.RETURN:
        return ReleaseStatus.RETURNED
    approvers = {v.reviewer for v in votes
                 if v.round == request.round and v.decision is Decision.APPROVE}
    if len(approvers) >= request.required_approvals:
        return ReleaseStatus.APPROVED
    return ReleaseStatus.IN_REVIEW


def check_downloadable(request: ReleaseRequest, authorization: AuthorizationRecord,
                       at: datetime) -> None:
    if request.status is not ReleaseStatus.RELEASED:
        raise PolicyRefused(f"request {request.id} is {request.status}; only released requests "
                            "can be downloaded")
    status = authorization.effective_status(at)
    if status in (AuthorizationStatus.SUSPENDED, AuthorizationStatus.REVOKED):
        raise PolicyRefused(f"authorization {authorization.id} is {status}; its packages "
                            "cannot be downloaded until it is in force again")
