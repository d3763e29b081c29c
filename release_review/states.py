"""Release request statuses, who may move them, who owns them and what the ledger records, as data.

Terms:

- *request*: one analyst's release request (a set of files, or one DP statistics spec) with a
  title, a purpose and context for the reviewers;
- *round*: a request is checked and reviewed once per round; a returned request that the
  author amends and resubmits starts the next round (votes of earlier rounds no longer count);
- *owner*: who is expected to act next on a request in a status (``STATUS_OWNER``); final
  statuses are owned by nobody.

Lifecycle::

    submitted ──checks──► checked ──first vote──► in_review ──► approved ──package──► released
        │                    │  └───────────────────┴──► rejected (final)
        │                    └──────────────────────────► returned ──resubmit──► submitted
        └── withdrawn (final; by the author, any time before a decision)

``TRANSITIONS`` maps each status to the statuses it may move to and the roles allowed to make
each move; ``STATUS_AUDIT_EVENT`` names the ledger event written when a request enters a
status. ``release_review.service`` checks a move with ``check_transition()`` before anything
changes, and applies it with ``transition()`` together with its ledger event. The reference page
``docs/reference/release-states.md`` is generated from these tables
(``scripts/release_states.py`` or ``shuyu release states``).
"""

from __future__ import annotations

from enum import StrEnum

from hub.catalog.enums import Role


class ReleaseStatus(StrEnum):
    """Stored values: renaming one needs a data migration."""

    SUBMITTED = "submitted"
    CHECKED = "checked"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    REJECTED = "rejected"
    RETURNED = "returned"
    RELEASED = "released"
    WITHDRAWN = "withdrawn"


class Owner(StrEnum):
    """Who is expected to act next on a request."""

    AUTHOR = "author"
    REVIEWER = "reviewer"
    SYSTEM = "system"  # the review service itself (checks, packaging)
    NOBODY = "nobody"  # final: nothing more happens


class Decision(StrEnum):
    """A reviewer's vote. Stored values: renaming one needs a data migration."""

    APPROVE = "approve"
    REJECT = "reject"
    RETURN = "return"


class AuditEventType(StrEnum):
    """Ledger entry types written by the review service.

    Persisted in the ledger forever: renaming one needs a migration note for auditors reading
    old entries. NOUN_VERB names, grouped by what they record.
    """

    # status changes (one per status entered, see STATUS_AUDIT_EVENT)
    RELEASE_SUBMIT = "release.submitted"
    RELEASE_CHECK = "release.checked"
    RELEASE_REVIEW_START = "release.in_review"
    RELEASE_APPROVE = "release.approved"
    RELEASE_REJECT = "release.rejected"
    RELEASE_RETURN = "release.returned"
    RELEASE_RELEASE = "release.released"
    RELEASE_WITHDRAW = "release.withdrawn"
    # reviewers' and authors' acts that do not by themselves change the status
    REVIEW_VOTE = "release.vote"
    REVIEW_COMMENT = "release.commented"
    REQUEST_VIEW = "release.viewed"
    FILE_VIEW = "release.file_viewed"
    # the package
    PACKAGE_BUILD = "release.packaged"
    PACKAGE_DOWNLOAD = "release.downloaded"
    # attempts refused by permission or policy, and changes that failed after logging
    ACTION_REFUSED = "release.action_refused"
    CHANGE_NOT_APPLIED = "release.change_not_applied"


S = ReleaseStatus
INITIAL = S.SUBMITTED
FINAL = frozenset({S.REJECTED, S.RELEASED, S.WITHDRAWN})
DECIDED = frozenset({S.APPROVED, S.REJECTED, S.RELEASED})
_AUTHOR = frozenset({Role.ANALYST})
_REVIEWER = frozenset({Role.REVIEWER})
_SYSTEM = frozenset({Role.SERVICE})

TRANSITIONS: dict[ReleaseStatus, dict[ReleaseStatus, frozenset[Role]]] = {
    S.SUBMITTED: {S.CHECKED: _SYSTEM, S.WITHDRAWN: _AUTHOR},
    S.CHECKED: {S.IN_REVIEW: _REVIEWER, S.APPROVED: _REVIEWER, S.REJECTED: _REVIEWER,
                S.RETURNED: _REVIEWER, S.WITHDRAWN: _AUTHOR},
    S.IN_REVIEW: {S.APPROVED: _REVIEWER, S.REJECTED: _REVIEWER, S.RETURNED: _REVIEWER,
                  S.WITHDRAWN: _AUTHOR},
    S.RETURNED: {S.SUBMITTED: _AUTHOR, S.WITHDRAWN: _AUTHOR},
    S.APPROVED: {S.RELEASED: _SYSTEM},
    S.REJECTED: {},
    S.RELEASED: {},
    S.WITHDRAWN: {},
}

STATUS_OWNER: dict[ReleaseStatus, Owner] = {
    S.SUBMITTED: Owner.SYSTEM,  # automatic checks run
    S.CHECKED: Owner.REVIEWER,
    S.IN_REVIEW: Owner.REVIEWER,  # more approvals needed
    S.RETURNED: Owner.AUTHOR,  # amend and resubmit, or withdraw
    S.APPROVED: Owner.SYSTEM,  # the package is built and ledgered
    S.REJECTED: Owner.NOBODY,
    S.RELEASED: Owner.NOBODY,
    S.WITHDRAWN: Owner.NOBODY,
}

STATUS_AUDIT_EVENT: dict[ReleaseStatus, AuditEventType] = {
    S.SUBMITTED: AuditEventType.RELEASE_SUBMIT,
    S.CHECKED: AuditEventType.RELEASE_CHECK,
    S.IN_REVIEW: AuditEventType.RELEASE_REVIEW_START,
    S.APPROVED: AuditEventType.RELEASE_APPROVE,
    S.REJECTED: AuditEventType.RELEASE_REJECT,
    S.RETURNED: AuditEventType.RELEASE_RETURN,
    S.RELEASED: AuditEventType.RELEASE_RELEASE,
    S.WITHDRAWN: AuditEventType.RELEASE_WITHDRAW,
}

STATUS_MEANING: dict[ReleaseStatus, str] = {
    S.SUBMITTED: "files in quarantine; the automatic checks are running",
    S.CHECKED: "every check has a verdict; waiting for a reviewer",
    S.IN_REVIEW: "approved by some reviewers; more approvals are needed (两人审核 for 重要 data)",
    S.APPROVED: "enough independent approvals; the package is being built",
    S.REJECTED: "refused by a reviewer; nothing leaves (final)",
    S.RETURNED: "sent back to the author for changes; may be amended and resubmitted",
    S.RELEASED: "packaged with provenance and ledger proof; the analyst may download it (final)",
    S.WITHDRAWN: "withdrawn by its author; nothing leaves (final)",
}

DECISION_STATUS: dict[Decision, ReleaseStatus] = {
    Decision.APPROVE: S.APPROVED,
    Decision.REJECT: S.REJECTED,
    Decision.RETURN: S.RETURNED,
}


def allowed_targets(current: ReleaseStatus) -> list[ReleaseStatus]:
    return list(TRANSITIONS[current])


def state_diagram() -> str:
    """A Mermaid state diagram of ``TRANSITIONS`` (the docs page is generated from this)."""
    lines = ["stateDiagram-v2", f"    [*] --> {INITIAL}: {STATUS_AUDIT_EVENT[INITIAL]} (analyst)"]
    for current, moves in TRANSITIONS.items():
        for target, roles in moves.items():
            who = ", ".join(sorted(str(r) for r in roles))
            lines.append(f"    {current} --> {target}: {STATUS_AUDIT_EVENT[target]} ({who})")
        if not moves:
            lines.append(f"    {current} --> [*]")
    return "\n".join(lines) + "\n"


def states_markdown() -> str:
    """The reference page ``docs/reference/release-states.md``, generated from the tables."""
    rows = "\n".join(
        f"| `{s}` | {STATUS_OWNER[s]} | `{STATUS_AUDIT_EVENT[s]}` | {STATUS_MEANING[s]} |"
        for s in ReleaseStatus)
    others = "\n".join(
        f"- `{e}`" for e in AuditEventType if e not in STATUS_AUDIT_EVENT.values())
    return (
        "# Release request states\n\n"
        "Generated by `python scripts/release_states.py` (or `shuyu release states`) from "
        "`release_review/states.py`; do not edit.\n\n"
        "```mermaid\n" + state_diagram() + "```\n\n"
        "| status | owner | ledger event on entry | meaning |\n"
        "| --- | --- | --- | --- |\n" + rows + "\n\n"
        "A reviewer's vote moves a `checked` request: an approval that completes the approvals "
        "the request needs makes it `approved` (then `released` once the package is in the "
        "ledger), an approval that does not makes it `in_review`; one rejection or return "
        "decides at once. Requests whose sources include 重要 (important) data need approvals "
        "from two different reviewers; authors never review their own requests.\n\n"
        "Ledger events that record acts without a status change:\n\n" + others + "\n"
    )
