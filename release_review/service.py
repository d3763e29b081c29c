"""``ReleaseReviewService``: the one business-logic layer of release review (routes only call it).

A request goes submitted → checked → (in review) → approved → released, or is rejected, returned
(then amended and resubmitted) or withdrawn (``states.py``). Every step is checked before
anything changes (``check_transition``: the status table and the actor's role; then
``permissions`` for who, ``policies`` for what the state allows) and applied with
``transition``, which writes the new status, the step's rows and its ledger events in one unit
(``storage.ReviewStore.apply``: ledger first, fail closed). Acts that change nothing (a reviewer
opening a request or a file, an analyst downloading a package) are written to the ledger before
anything is shown or sent. Refusals by permission or policy are recorded too
(``release.action_refused``, best effort: the refusal stands either way).

What the service finds out itself, so the analyst declares none of it: the datasets and columns
the author's queries touched (``lineage``: ledger + catalog), their grades (and so the number of
approvals), registration codes and acquisition dates; the earlier releases of the author and the
authorization (differencing); the automatic checks' verdicts (``checks.registry.run_all``).
"""

from __future__ import annotations

import functools
import json
import shutil
import threading
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

from hub.catalog.enums import Role
from hub.catalog.events import Actor
from hub.catalog.exceptions import NotFound as CatalogNotFound
from hub.catalog.exceptions import QueryNotAuthorized
from hub.catalog.records import AuthorizationRecord
from ledger.entry import decode_entry
from release_review import lineage, permissions, policies, publishing
from release_review.checks.base import Artifact, CheckContext, DomainReader, Thresholds
from release_review.events import AuditEvent, clip
from release_review.exceptions import (
    InvalidInput,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    PolicyRefused,
    ReleaseError,
)
from release_review.permissions import ReviewUser
from release_review.policies import SubmittedFile
from release_review.provenance import evidence_sha256
from release_review.quarantine import ContentStore, Stored
from release_review.records import (
    ArtifactRecord,
    CheckRecord,
    CommentRecord,
    PackageRecord,
    ReleaseRequest,
    RequestKind,
    Row,
    VoteRecord,
)
from release_review.states import (
    DECISION_STATUS,
    INITIAL,
    STATUS_AUDIT_EVENT,
    STATUS_MEANING,
    TRANSITIONS,
    AuditEventType,
    Decision,
    ReleaseStatus,
)
from release_review.storage import ReviewStore

Clock = Callable[[], datetime]
F = TypeVar("F", bound=Callable[..., Any])
S = ReleaseStatus
SYSTEM = Actor("shuyu-review", Role.SERVICE, "review service")
PSEUDONYM_PATTERNS = [r"\bps_[0-9a-f]{32}\b"]  # hub/gateway/pseudonyms.py
SHOWN_QUERIES = 50
# the trusted side's reader of the domain store (one per process, shared by the checks and the
# DP engine): its memory limit and threads
DOMAIN_MEMORY, DOMAIN_THREADS = "1GB", 2
PREVIEW_BYTES = 20 << 20  # files up to this size are previewed on the reviewer's page


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def new_request_id() -> str:
    import secrets

    return f"rel-{secrets.token_hex(5)}"


def check_transition(current: ReleaseStatus, target: ReleaseStatus, role: Role,
                     request_id: str) -> None:
    """Refuse unless ``TRANSITIONS`` lets `role` move a request from `current` to `target`."""
    allowed = TRANSITIONS[current]
    if target not in allowed:
        if current == target:
            raise InvalidTransition(f"request {request_id} is already {current}")
        options = ", ".join(str(s) for s in allowed) or "nothing (a final status)"
        raise InvalidTransition(f"request {request_id} is {current} and cannot become {target};"
                                f" from {current} it may become: {options}")
    if role not in allowed[target]:
        who = ", ".join(sorted(str(r) for r in allowed[target]))
        raise PermissionDenied(f"the {role} role may not make request {request_id} {target} "
                               f"(allowed: {who})")


def audited(act: str) -> Callable[[F], F]:
    """Record permission, policy and transition refusals of `act`, then re-raise them."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(self: "ReleaseReviewService", user: ReviewUser, request_id: str,
                    *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(self, user, request_id, *args, **kwargs)
            except (PermissionDenied, PolicyRefused, InvalidTransition) as e:
                self._record_refusal(user, request_id, act, e)
                raise

        return wrapper  # type: ignore[return-value]

    return decorate


@dataclass
class RequestDetail:
    """Everything the reviewer's page (or the author's status) shows about one request."""

    request: ReleaseRequest
    artifacts: list[ArtifactRecord]
    checks: list[CheckRecord]
    votes: list[VoteRecord]
    comments: list[CommentRecord]
    package: PackageRecord | None
    queries: list[dict[str, Any]]
    previous: list[ReleaseRequest]
    contents: dict[str, bytes] = field(default_factory=dict)  # files previewed on the page
    can_vote: bool = False  # may reject or return now
    can_approve: bool = False  # may approve now
    vote_refusal: str | None = None  # why not (shown beside the form)

    def to_json(self) -> dict[str, Any]:
        return {**self.request.to_json(),
                "files": [a.to_json() for a in self.artifacts],
                "checks": [c.to_json() for c in self.checks],
                "votes": [v.to_json() for v in self.votes],
                "comments": [c.to_json() for c in self.comments],
                "package": self.package.to_json() if self.package else None,
                "dp": self.request.dp}


class ReleaseReviewService:
    def __init__(self, store: ReviewStore, catalog: Any, log: Any, quarantine: ContentStore,
                 packages: ContentStore, domain: Callable[[], DomainReader],
                 dp_lane: Callable[[], Any] | None = None, thresholds: Thresholds | None = None,
                 min_approvals: int = 1, clock: Clock = utc_now):
        self.store, self.catalog, self.log = store, catalog, log
        self.quarantine, self.packages, self.domain = quarantine, packages, domain
        self._dp_lane_factory, self._dp_lane = dp_lane, None
        self.thresholds = thresholds or Thresholds()
        self.min_approvals = min_approvals
        self.clock = clock
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def close(self) -> None:
        if self._dp_lane is not None:
            for part in ("budgets", "engine"):
                closer = getattr(getattr(self._dp_lane, part, None), "close", None)
                if closer:
                    closer()
        self.store.close()

    # --- lookups ---------------------------------------------------------------------------

    def get_request(self, request_id: str) -> ReleaseRequest:
        request = self.store.get_request(request_id)
        if request is None:
            raise NotFound(f"there is no release request {request_id!r}")
        return request

    def _authorization(self, auth_id: str) -> AuthorizationRecord:
        try:
            return self.catalog.get_authorization(auth_id)
        except CatalogNotFound:
            raise NotFound(f"authorization {auth_id!r} does not exist") from None

    def _lock(self, request_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(request_id, threading.Lock())

    @staticmethod
    def actor(user: ReviewUser, role: Role | None = None) -> Actor:
        return Actor(user.name, role or user.role, user.source)

    # --- the transition machinery ----------------------------------------------------------

    def transition(self, request: ReleaseRequest, target: ReleaseStatus, actor: Actor,
                   details: dict[str, Any] | None = None, rows: Sequence[Row] = (),
                   extra: Sequence[AuditEvent] = (), links: dict[int, int] | None = None,
                   **changes: Any) -> ReleaseRequest:
        """Apply a checked move: the new status, `rows` and the events (`extra` first, then the
        status's own ``STATUS_AUDIT_EVENT``) in one unit; returns the stored request."""
        check_transition(request.status, target, actor.role, request.id)
        at = self.clock()
        moved = replace(request, status=target, updated_at=at, **changes)
        event = AuditEvent.from_request(STATUS_AUDIT_EVENT[target], moved, actor, at,
                                        previous_status=str(request.status), **(details or {}))
        self.store.apply(moved, rows, [*extra, event], links)
        return self.get_request(request.id)

    def _record_refusal(self, user: ReviewUser, request_id: str, act: str,
                        error: ReleaseError) -> None:
        request = self.store.get_request(request_id) if request_id else None
        details = {"act": act, "reason": error.message, "code": error.code}
        event = (AuditEvent.from_request(AuditEventType.ACTION_REFUSED, request,
                                         self.actor(user), self.clock(), **details)
                 if request else AuditEvent(AuditEventType.ACTION_REFUSED, self.actor(user),
                                            self.clock(), request_id or None, details=details))
        try:
            self.store.record([event])
        except ReleaseError:
            pass  # the refusal stands whether or not the ledger can record it

    # --- submitting --------------------------------------------------------------------------

    def upload(self, user: ReviewUser, chunks: Iterable[bytes]) -> Stored:
        """Stream one file into quarantine (content-addressed); analysts only."""
        permissions.check_user_can_submit_release(user)
        return self.quarantine.put_chunks(chunks, self.thresholds.max_bytes)

    async def upload_async(self, user: ReviewUser, chunks: Any) -> Stored:
        """``upload`` for a request body that arrives asynchronously (the web API)."""
        permissions.check_user_can_submit_release(user)
        return await self.quarantine.put_async(chunks, self.thresholds.max_bytes)

    def _pick_authorization(self, user: ReviewUser, wanted: str | None) -> AuthorizationRecord:
        try:
            live = self.catalog.check_user_can_work(user.name, self.clock())
        except QueryNotAuthorized as e:
            raise PermissionDenied(f"{user.name} cannot submit: {e.message}") from None
        if wanted:
            for auth in live:
                if auth.id == wanted:
                    return auth
            raise PermissionDenied(f"{user.name} holds no authorization {wanted!r} in force "
                                   f"(in force: {', '.join(a.id for a in live)})")
        if len(live) > 1:
            raise InvalidInput(f"{user.name} holds several authorizations in force "
                               f"({', '.join(a.id for a in live)}); name the one this request "
                               "belongs to")
        return live[0]

    def _files(self, files: Sequence[SubmittedFile]) -> list[SubmittedFile]:
        out = []
        for f in files:
            if not self.quarantine.has(f.sha256):
                raise InvalidInput(f"file {f.name!r} ({f.sha256[:12]}…) was not uploaded to the "
                                   "review service first")
            size = self.quarantine.path(f.sha256).stat().st_size
            out.append(replace(f, size=size, media_type=(f.media_type or "")[:100]))
        policies.check_files(out)
        return out

    def submit(self, user: ReviewUser, *, title: str, purpose: str, context: str = "",
               files: Sequence[SubmittedFile], authorization: str | None = None
               ) -> ReleaseRequest:
        """A new request over files already in quarantine; checks run next (``run_checks``)."""
        permissions.check_user_can_submit_release(user)
        title = policies.check_text(title, "title", policies.MAX_TITLE)
        purpose = policies.check_text(purpose, "purpose", policies.MAX_PURPOSE)
        context = policies.check_text(context, "context", policies.MAX_CONTEXT, required=False)
        files = self._files(files)
        auth = self._pick_authorization(user, authorization)
        found = lineage.authored_queries(self.log.store.reader, user.name, auth.id)
        _, described = lineage.sources_of(self.catalog, found.touched)
        return self._create(user, auth, RequestKind.FILES, title, purpose, context, files,
                            described, [q.ledger_index for q in found.queries], None,
                            new_request_id())

    def _create(self, user: ReviewUser, auth: AuthorizationRecord, kind: RequestKind, title: str,
                purpose: str, context: str, files: list[SubmittedFile],
                described: list[dict[str, Any]], queries: list[int], dp: dict[str, Any] | None,
                request_id: str) -> ReleaseRequest:
        grade = lineage.grade_of(described)
        at = self.clock()
        request = ReleaseRequest(
            id=request_id, author=user.name, authorization=auth.id, operator=auth.operator,
            scenario=auth.scenario, title=title, purpose=purpose, context=context, kind=kind,
            status=INITIAL, round=1, grade=grade,
            required_approvals=policies.required_approvals(grade, self.min_approvals),
            sources=tuple(described), queries=tuple(queries), created_at=at, updated_at=at,
            dp=dp, submitted_at=at)
        rows = [ArtifactRecord(request.id, 1, f.name, f.sha256, f.size, f.media_type, f.released)
                for f in files]
        event = AuditEvent.from_request(
            STATUS_AUDIT_EVENT[INITIAL], request, self.actor(user, Role.ANALYST), at,
            **self._submitted_details(request, files))
        self.store.apply(request, rows, [event])
        return self.get_request(request.id)

    @staticmethod
    def _submitted_details(request: ReleaseRequest, files: Sequence[SubmittedFile]
                           ) -> dict[str, Any]:
        return {
            "kind": str(request.kind), "purpose": clip(request.purpose),
            "context": clip(request.context),
            "files": [{"name": f.name, "sha256": f.sha256, "size": f.size,
                       "media_type": f.media_type, "released": f.released} for f in files],
            "sources": [{"dataset": s["dataset"], "grade": s["grade"],
                         "registration_code": s.get("registration_code"),
                         "acquired_on": s.get("acquired_on"),
                         "columns": [c["name"] for c in s.get("columns", [])]}
                        for s in request.sources],
            "queries": list(request.queries)[-200:], "grade": request.grade,
            "required_approvals": request.required_approvals, "operator": request.operator,
        }

    def submit_dp(self, user: ReviewUser, spec: Any, *, title: str, purpose: str,
                  context: str = "", authorization: str | None = None
                  ) -> tuple[ReleaseRequest, dict[str, Any]]:
        """Run a DP statistics spec in the trusted service (budget charged, ledger-first) and
        make its result a release request; returns the request and the DP result."""
        from release_review.dp import DpError, release_dp

        permissions.check_user_can_submit_release(user)
        title = policies.check_text(title, "title", policies.MAX_TITLE)
        purpose = policies.check_text(purpose, "purpose", policies.MAX_PURPOSE)
        context = policies.check_text(context, "context", policies.MAX_CONTEXT, required=False)
        auth = self._pick_authorization(user, authorization)
        request_id = new_request_id()
        try:
            result = release_dp(spec, author=user.name, authorization_id=auth.id,
                                lane=self.dp_lane(), request_id=request_id)
        except DpError as e:
            raise _dp_error(e) from None
        data = result.to_json()
        stored = self.quarantine.put_bytes(
            (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
        columns = list(dict.fromkeys([*result.group_by, *_spec_columns(result.spec)]))
        _, described = lineage.sources_of(self.catalog, {result.dataset: columns})
        files = [SubmittedFile(f"dp-{result.dataset}.json", stored.sha256, stored.size,
                               "application/json", True)]
        request = self._create(user, auth, RequestKind.DP, title, purpose, context, files,
                               described, [], data, request_id)
        return request, data

    def dp_lane(self) -> Any:
        if self._dp_lane is None:
            if self._dp_lane_factory is None:
                raise PolicyRefused("the differential-privacy lane is not configured here")
            self._dp_lane = self._dp_lane_factory()
        return self._dp_lane

    # --- automatic checks ---------------------------------------------------------------------

    def pending_checks(self) -> list[str]:
        return [r.id for r in self.store.list_requests([S.SUBMITTED])]

    def run_checks(self, request_id: str) -> ReleaseRequest:
        """Run every automatic check on the current round; store and ledger the results."""
        from release_review.checks.registry import run_all

        with self._lock(request_id):
            request = self.get_request(request_id)
            if request.status is not S.SUBMITTED:
                return request  # withdrawn meanwhile, or checked by another worker
            check_transition(request.status, S.CHECKED, Role.SERVICE, request.id)
            artifacts = self.store.artifacts(request.id, request.round)
            derived = self.quarantine.root / "derived" / f"{request.id}-{request.round}"
            ctx = self._check_context(request, artifacts, derived)
            try:
                results = run_all(ctx)
                artifacts = self._keep_derived(artifacts, results)
            finally:
                shutil.rmtree(derived, ignore_errors=True)
            rows: list[Row] = [CheckRecord(request.id, request.round, i, r.check,
                                           str(r.verdict), r.reason, r.artifact,
                                           _portable(r.evidence), r.suggestion)
                               for i, r in enumerate(results)]
            details = _checked_details(rows)  # type: ignore[arg-type]
            return self._checked(request, artifacts, rows, details)

    def _checked(self, request: ReleaseRequest, artifacts: list[ArtifactRecord],
                 rows: list[Row], details: dict[str, Any]) -> ReleaseRequest:
        reencoded = [a for a in artifacts if a.released_sha256]
        if reencoded:
            details["reencoded"] = [{"name": a.name, "sha256": a.released_sha256}
                                    for a in reencoded]
        return self.transition(request, S.CHECKED, SYSTEM, details, rows=[*rows, *reencoded],
                               checked_at=self.clock())

    def _check_context(self, request: ReleaseRequest, artifacts: list[ArtifactRecord],
                       derived: Any) -> CheckContext:
        found = lineage.authored_queries(self.log.store.reader, request.author,
                                         request.authorization)
        touched = {s["dataset"]: [c["name"] for c in s.get("columns", [])]
                   for s in request.sources}
        sources, _ = lineage.sources_of(self.catalog, touched)
        return CheckContext(
            artifacts=[Artifact(a.name, a.media_type, self.quarantine.path(a.sha256), a.sha256,
                                a.size, a.released) for a in artifacts],
            author=request.author, authorization_id=request.authorization, sources=sources,
            queries=found.queries, domain=self.domain,
            prior_releases=self._prior_releases(request), thresholds=self.thresholds,
            pseudonym_patterns=list(PSEUDONYM_PATTERNS), derived_dir=derived)

    def _prior_releases(self, request: ReleaseRequest) -> list[dict[str, Any]]:
        done = [S.APPROVED, S.RELEASED]
        earlier = {r.id: r for r in self.store.list_requests(done, author=request.author)}
        earlier.update({r.id: r for r in self.store.list_requests(
            done, authorization=request.authorization)})
        out = []
        for r in earlier.values():
            if r.id == request.id:
                continue
            files = [{"name": a.name, "path": str(self.quarantine.path(a.package_sha256)),
                      "media_type": a.media_type}
                     for a in self.store.artifacts(r.id, r.round) if a.released]
            out.append({"id": r.id, "artifacts": files})
        return out

    def _keep_derived(self, artifacts: list[ArtifactRecord], results: list[Any]
                      ) -> list[ArtifactRecord]:
        """Move files the checks derived (re-encoded images) into the quarantine; what is
        released is the derived file."""
        by_name = {a.name: a for a in artifacts}
        for r in results:
            done = (r.evidence or {}).get("reencoded") if r.check == "type_gate" else None
            if not done or r.artifact not in by_name or str(r.verdict) == "fail":
                continue
            stored = self.quarantine.put_file(Path(done["path"]))
            done["path"] = f"quarantine:{stored.sha256}"
            by_name[r.artifact] = replace(by_name[r.artifact], released_sha256=stored.sha256,
                                          released_size=stored.size)
        return [by_name[a.name] for a in artifacts]

    # --- what reviewers and authors see ---------------------------------------------------------

    def queue(self, user: ReviewUser) -> list[ReleaseRequest]:
        """Requests waiting for a reviewer (checked, in review), oldest first; not the user's."""
        permissions.check_user_can_review(user)
        return [r for r in self.store.list_requests([S.CHECKED, S.IN_REVIEW])
                if r.author != user.name]

    def recent(self, user: ReviewUser, limit: int = 50) -> list[ReleaseRequest]:
        """Requests decided or still with their authors, newest first (for the queue page)."""
        permissions.check_user_can_review(user)
        done = self.store.list_requests([S.SUBMITTED, S.APPROVED, S.REJECTED, S.RETURNED,
                                         S.RELEASED, S.WITHDRAWN])
        return sorted(done, key=lambda r: r.updated_at, reverse=True)[:limit]

    def detail(self, request: ReleaseRequest, with_queries: bool = True) -> RequestDetail:
        previous = [r for r in self.store.list_requests(
            [S.APPROVED, S.RELEASED], authorization=request.authorization) if r.id != request.id]
        return RequestDetail(
            request=request, artifacts=self.store.artifacts(request.id, request.round),
            checks=self.store.check_results(request.id, request.round),
            votes=self.store.votes(request.id), comments=self.store.comments(request.id),
            package=self.store.package(request.id),
            queries=self._queries(request) if with_queries else [], previous=previous)

    def _queries(self, request: ReleaseRequest) -> list[dict[str, Any]]:
        out = []
        for index in list(request.queries)[-SHOWN_QUERIES:]:
            for _, data, _ in self.log.store.entries(index, index + 1):
                entry = decode_entry(bytes(data))
                d = entry.get("details") or {}
                out.append({"index": index, "at": entry.get("at"), "sql": d.get("sql", ""),
                            "datasets": d.get("datasets", []), "rows": d.get("rows"),
                            "groups_suppressed": d.get("groups_suppressed"),
                            "result_sha256": d.get("result_sha256")})
        return list(reversed(out))

    @audited("open the request")
    def open_request(self, user: ReviewUser, request_id: str) -> RequestDetail:
        """The reviewer's page of a request; the view is ledgered first."""
        request = self.get_request(request_id)
        permissions.check_user_can_review_release(user, request)
        artifacts = self.store.artifacts(request.id, request.round)
        shown = [a for a in artifacts if (a.released_size or a.size) <= PREVIEW_BYTES]
        self.store.record([AuditEvent.from_request(
            AuditEventType.REQUEST_VIEW, request, self.actor(user), self.clock(),
            previews=[{"file": a.name, "sha256": a.package_sha256} for a in shown])])
        detail = self.detail(request)
        detail.contents = {a.name: self.quarantine.read_verified(a.package_sha256)
                           for a in shown}
        try:
            if request.status not in (S.CHECKED, S.IN_REVIEW):
                raise InvalidTransition(f"request {request.id} is {request.status}: "
                                        f"{STATUS_MEANING[request.status]}")
            permissions.check_user_can_approve_release(user, request, detail.votes)
            detail.can_vote = True
            policies.check_decision(request, Decision.APPROVE, "", detail.checks)
            detail.can_approve = True
        except (PermissionDenied, PolicyRefused, InvalidTransition) as e:
            detail.vote_refusal = e.message
        return detail

    @audited("open a file")
    def open_file(self, user: ReviewUser, request_id: str, name: str
                  ) -> tuple[ArtifactRecord, bytes]:
        """A file of the request's current round for preview; the view is ledgered first.
        Images come as re-encoded (metadata removed) when a check re-encoded them."""
        request = self.get_request(request_id)
        permissions.check_user_can_review_release(user, request)
        artifact = next((a for a in self.store.artifacts(request.id, request.round)
                         if a.name == name), None)
        if artifact is None:
            raise NotFound(f"request {request.id} has no file {name!r}")
        sha = artifact.package_sha256
        self.store.record([AuditEvent.from_request(
            AuditEventType.FILE_VIEW, request, self.actor(user), self.clock(),
            file=name, sha256=sha)])
        return artifact, self.quarantine.read_verified(sha)

    def author_view(self, user: ReviewUser, request_id: str) -> RequestDetail:
        request = self.get_request(request_id)
        permissions.check_user_is_author(user, request, "see")
        return self.detail(request, with_queries=False)

    def my_requests(self, user: ReviewUser) -> list[ReleaseRequest]:
        permissions.check_user_can_submit_release(user)
        return self.store.list_requests(author=user.name)

    def downloadable(self, user: ReviewUser) -> list[ReleaseRequest]:
        """Released requests of the authorizations the analyst works under."""
        permissions.check_user_can_submit_release(user)
        teams = {a.id for a in self.catalog.list_authorizations(analyst=user.name)}
        return [r for r in self.store.list_requests([S.RELEASED])
                if r.author == user.name or r.authorization in teams]

    # --- reviewers' acts ----------------------------------------------------------------------

    @audited("vote")
    def vote(self, user: ReviewUser, request_id: str, decision: Decision | str,
             comment: str = "") -> ReleaseRequest:
        """Approve, reject or return; an approval that completes the approvals releases."""
        try:
            decision = Decision(decision)
        except ValueError:
            raise InvalidInput(f"decision {decision!r} is not one of: "
                               f"{', '.join(d.value for d in Decision)}") from None
        comment = (comment or "").strip()
        with self._lock(request_id):
            request = self.get_request(request_id)
            votes = self.store.votes(request.id)
            permissions.check_user_can_approve_release(user, request, votes)
            if request.status not in (S.CHECKED, S.IN_REVIEW):  # the status refuses first
                check_transition(request.status, DECISION_STATUS[decision], Role.REVIEWER,
                                 request.id)
            checks = self.store.check_results(request.id, request.round)
            policies.check_decision(request, decision, comment, checks)
            at = self.clock()
            vote = VoteRecord(request.id, request.round, user.name, decision, comment, at)
            target = policies.status_after_vote(request, decision, [*votes, vote])
            approvals = len({v.reviewer for v in [*votes, vote] if v.round == request.round
                             and v.decision is Decision.APPROVE})
            actor = self.actor(user, Role.REVIEWER)
            vote_event = AuditEvent.from_request(
                AuditEventType.REVIEW_VOTE, request, actor, at, decision=str(decision),
                comment=clip(comment), approvals=approvals,
                required_approvals=request.required_approvals)
            if target is request.status:  # an approval that still leaves approvals missing
                self.store.apply(replace(request, updated_at=at), [vote], [vote_event], {0: 0})
                return self.get_request(request.id)
            changes = {"decided_at": at} if target in DECISION_STATUS.values() else {}
            request = self.transition(request, target, actor,
                                      {"decision": str(decision), "comment": clip(comment),
                                       "approvals": approvals,
                                       "reviewers": sorted({v.reviewer for v in [*votes, vote]
                                                            if v.round == request.round})},
                                      rows=[vote], extra=[vote_event], links={0: 0}, **changes)
        if request.status is S.APPROVED:
            request = self.release(request.id)
        return request

    @audited("comment")
    def comment(self, user: ReviewUser, request_id: str, text: str) -> CommentRecord:
        request = self.get_request(request_id)
        if user.name == request.author:
            permissions.check_user_is_author(user, request, "comment on")
            role = Role.ANALYST
        else:
            permissions.check_user_can_review_release(user, request)
            role = Role.REVIEWER
        text = policies.check_text(text, "the comment", policies.MAX_COMMENT)
        at = self.clock()
        row = CommentRecord(request.id, request.round, user.name, str(role), text, at)
        event = AuditEvent.from_request(AuditEventType.REVIEW_COMMENT, request,
                                        self.actor(user, role), at, comment=clip(text))
        indices = self.store.apply(None, [row], [event], {0: 0})
        return replace(row, ledger_index=indices[0])

    # --- authors' acts ------------------------------------------------------------------------

    @audited("withdraw")
    def withdraw(self, user: ReviewUser, request_id: str, reason: str = "") -> ReleaseRequest:
        with self._lock(request_id):
            request = self.get_request(request_id)
            permissions.check_user_is_author(user, request, "withdraw")
            return self.transition(request, S.WITHDRAWN, self.actor(user, Role.ANALYST),
                                   {"reason": clip(reason.strip())})

    @audited("resubmit")
    def resubmit(self, user: ReviewUser, request_id: str, files: Sequence[SubmittedFile],
                 note: str = "", context: str | None = None) -> ReleaseRequest:
        """Amend a returned request with a new set of files; it is checked again (next round)."""
        with self._lock(request_id):
            request = self.get_request(request_id)
            permissions.check_user_is_author(user, request, "amend and resubmit")
            check_transition(request.status, S.SUBMITTED, Role.ANALYST, request.id)
            if request.kind is RequestKind.DP:
                raise PolicyRefused(f"request {request.id} holds DP statistics; ask for new "
                                    "ones with shuyu.release.dp() instead of amending it")
            files = self._files(files)
            note = policies.check_text(note, "the note on what changed", policies.MAX_COMMENT,
                                       required=False)
            new_context = request.context if context is None else policies.check_text(
                context, "context", policies.MAX_CONTEXT, required=False)
            found = lineage.authored_queries(self.log.store.reader, user.name,
                                             request.authorization)
            _, described = lineage.sources_of(self.catalog, found.touched)
            grade = lineage.grade_of(described)
            amended = replace(request, round=request.round + 1, context=new_context,
                              sources=tuple(described),
                              queries=tuple(q.ledger_index for q in found.queries), grade=grade,
                              required_approvals=policies.required_approvals(
                                  grade, self.min_approvals))
            rows = [ArtifactRecord(request.id, amended.round, f.name, f.sha256, f.size,
                                   f.media_type, f.released) for f in files]
            at = self.clock()
            return self.transition(
                amended, S.SUBMITTED, self.actor(user, Role.ANALYST),
                {**self._submitted_details(amended, files), "resubmission": True,
                 "note": clip(note)}, rows=rows, submitted_at=at, checked_at=None,
                decided_at=None)

    # --- releasing ------------------------------------------------------------------------------

    def release(self, request_id: str) -> ReleaseRequest:
        """Approved → released: the manifest and note are kept, ``release.released`` names
        their hashes and every file's, then the zip with the entry's inclusion proof is built."""
        with self._lock(request_id):
            request = self.get_request(request_id)
            check_transition(request.status, S.RELEASED, Role.SERVICE, request.id)
            at = self.clock()
            auth = self._authorization(request.authorization)
            artifacts = self.store.artifacts(request.id, request.round)
            sealed = publishing.seal_provenance(
                replace(request, status=S.RELEASED), auth, artifacts,
                self.store.check_results(request.id, request.round),
                self.store.votes(request.id), at, self.log.config.origin, self.quarantine)
            package = PackageRecord(request.id, at, -1, sealed.manifest_sha256,
                                    sealed.note_sha256)
            request = self.transition(request, S.RELEASED, SYSTEM, sealed.entry_details,
                                      rows=[package], links={0: 0})
        self.ensure_package(request.id)
        return self.get_request(request.id)

    def ensure_package(self, request_id: str) -> PackageRecord:
        """The package's zip, built (with the newest checkpoint) if it is not there yet."""
        with self._lock(request_id):
            package = self.store.package(request_id)
            if package is None:
                raise NotFound(f"request {request_id} has no package (it is not released)")
            if package.zip_sha256 and self.packages.has(package.zip_sha256):
                return package
            request = self.get_request(request_id)
            built = publishing.build_zip(request, package, self.store.artifacts(
                request.id, request.round), self.quarantine, self.log)
            stored = self.packages.put_bytes(built)
            done = replace(package, zip_sha256=stored.sha256, zip_size=stored.size)
            event = AuditEvent.from_request(AuditEventType.PACKAGE_BUILD, request, SYSTEM,
                                            self.clock(), zip_sha256=stored.sha256,
                                            zip_size=stored.size,
                                            released_entry=package.ledger_index)
            self.store.apply(None, [done], [event])
            return done

    @audited("download")
    def download(self, user: ReviewUser, request_id: str) -> tuple[str, bytes]:
        """The package zip for an analyst of the request's authorization; ledgered first."""
        request = self.get_request(request_id)
        auth = self._authorization(request.authorization)
        permissions.check_user_can_download_release(user, request, auth.analysts)
        policies.check_downloadable(request, auth, self.clock())
        package = self.ensure_package(request.id)
        assert package.zip_sha256 is not None
        self.store.record([AuditEvent.from_request(
            AuditEventType.PACKAGE_DOWNLOAD, request, self.actor(user, Role.ANALYST),
            self.clock(), zip_sha256=package.zip_sha256, zip_size=package.zip_size)])
        data = self.packages.read_verified(package.zip_sha256)
        return f"shuyu-release-{request.id}.zip", data


def _spec_columns(spec: dict[str, Any]) -> list[str]:
    cols = [m.get("column") for m in spec.get("measures") or [] if isinstance(m, dict)]
    cols += [f.get("column") for f in spec.get("filters") or [] if isinstance(f, dict)]
    return [c for c in cols if isinstance(c, str)]


def _portable(evidence: dict[str, Any]) -> dict[str, Any]:
    """Evidence as stored: JSON round-tripped (the registry guarantees it serializes)."""
    return json.loads(json.dumps(evidence, ensure_ascii=False, allow_nan=False, default=str))


def _checked_details(rows: list[CheckRecord]) -> dict[str, Any]:
    counts = {v: sum(1 for r in rows if r.verdict == v) for v in ("pass", "review", "fail")}
    results = []
    for r in rows:
        item: dict[str, Any] = {"check": r.check, "artifact": r.artifact, "verdict": r.verdict,
                                "evidence_sha256": evidence_sha256(r.evidence)}
        if r.verdict != "pass":
            item["reason"] = clip(r.reason, 300)
        results.append(item)
    return {"verdicts": counts, "results": results}


def _dp_error(e: Exception) -> ReleaseError:
    from release_review.dp import BudgetExhausted, NotAuthorized, NotRecorded, SpecInvalid

    message = getattr(e, "message", str(e))
    if isinstance(e, SpecInvalid):
        return InvalidInput(message)
    if isinstance(e, NotAuthorized):
        return PermissionDenied(message)
    if isinstance(e, BudgetExhausted):
        err = PolicyRefused(message)
        err.code = "budget_exhausted"
        err.status = 429
        return err
    if isinstance(e, NotRecorded):
        from release_review.exceptions import NotRecorded as Unrecorded

        return Unrecorded(message)
    return ReleaseError(f"the DP release failed: {message}")



def open_service(settings: Any, thresholds: Thresholds | None = None, min_approvals: int = 1,
                 clock: Clock = utc_now) -> ReleaseReviewService:
    """The service over the control database, ledger, domain store and files that `settings`
    name (the ledger must be initialized: ``shuyu ledger init``)."""
    from hub.catalog.service import open_catalog
    from hub.domain import DomainReader
    from release_review.quarantine import ContentStore
    from release_review.storage import SqlAlchemyReviewStore

    catalog = open_catalog(settings)
    try:
        store = SqlAlchemyReviewStore(settings.control_database_url, catalog.log)
        store.create()
    except BaseException:
        catalog.close()
        raise
    # follows loads: checks and DP releases read the store's current state
    reader = DomainReader(settings.domain_dir, memory_limit=DOMAIN_MEMORY, threads=DOMAIN_THREADS)

    def dp_lane() -> Any:
        from release_review.dp.budget import BudgetStore
        from release_review.dp.engine import DpEngine
        from release_review.dp.release import DpLane

        return DpLane(catalog, BudgetStore(settings.control_database_url, catalog.log),
                      DpEngine(settings.domain_dir, reader))

    service = ReleaseReviewService(
        store, catalog, catalog.log, ContentStore(settings.data_dir / "quarantine"),
        ContentStore(settings.data_dir / "packages"), reader.connect,
        dp_lane, thresholds, min_approvals, clock)
    service.close = _closing(service, catalog, reader)  # type: ignore[method-assign]
    return service


def _closing(service: ReleaseReviewService, catalog: Any, reader: Any) -> Callable[[], None]:
    plain = service.close

    def close() -> None:
        try:
            plain()
        finally:
            try:
                reader.close()
            finally:
                catalog.close()

    return close


__all__ = ["ReleaseReviewService", "RequestDetail", "check_transition", "open_service"]
