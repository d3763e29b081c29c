"""Immutable records of release requests: what the service reads from and hands to its store.

The service never touches ORM rows or sessions. It reads records, builds changed copies with
``dataclasses.replace`` and hands them, with their ledger events, to ``ReviewStore.apply``.
``revision`` is the optimistic-concurrency counter of a request: a write whose request was read
at an older revision than the stored one is refused (``ConcurrentChange``). New requests carry
revision 0. All times are timezone-aware UTC.

Terms: ``sources`` are the datasets the author's ledgered queries touched (or the DP spec
names), each as the catalog describes it (grade, registration code, acquisition date, columns
touched); ``queries`` are the ledger indices of those queries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from hub.catalog.events import format_time
from release_review.states import Decision, ReleaseStatus


class RequestKind(StrEnum):
    """Stored values: renaming one needs a data migration."""

    FILES = "files"  # files the analyst made in the sandbox
    DP = "dp"  # statistics computed by the DP lane from a JSON spec


@dataclass(frozen=True)
class ReleaseRequest:
    id: str
    author: str
    authorization: str
    operator: str
    scenario: str
    title: str
    purpose: str
    context: str
    kind: RequestKind
    status: ReleaseStatus
    round: int
    grade: str  # the highest grade among the sources (就高从严), a hub Grade value
    required_approvals: int
    sources: tuple[dict[str, Any], ...]
    queries: tuple[int, ...]
    created_at: datetime
    updated_at: datetime
    dp: dict[str, Any] | None = None  # DpRelease.to_json() of a DP request
    submitted_at: datetime | None = None  # of the current round
    checked_at: datetime | None = None  # of the current round
    decided_at: datetime | None = None  # approved, rejected or returned
    revision: int = 0

    @property
    def datasets(self) -> list[str]:
        return [s["dataset"] for s in self.sources]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "author": self.author, "authorization": self.authorization,
            "operator": self.operator, "scenario": self.scenario, "title": self.title,
            "purpose": self.purpose, "context": self.context, "kind": str(self.kind),
            "status": str(self.status), "round": self.round, "grade": self.grade,
            "required_approvals": self.required_approvals, "datasets": self.datasets,
            "created_at": format_time(self.created_at),
            "updated_at": format_time(self.updated_at),
            "submitted_at": format_time(self.submitted_at),
            "checked_at": format_time(self.checked_at),
            "decided_at": format_time(self.decided_at),
        }


@dataclass(frozen=True)
class ArtifactRecord:
    """One file of one round of a request, in quarantine under its sha256."""

    request_id: str
    round: int
    name: str
    sha256: str
    size: int
    media_type: str
    released: bool = True  # False: a supporting file, reviewed but never released
    released_sha256: str | None = None  # what is released, when a check re-encoded the file
    released_size: int | None = None

    @property
    def package_sha256(self) -> str:
        return self.released_sha256 or self.sha256

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "size": self.size,
                "media_type": self.media_type, "released": self.released,
                "released_sha256": self.released_sha256}


@dataclass(frozen=True)
class CheckRecord:
    """One automatic check's result for one round (see ``checks.base.CheckResult``)."""

    request_id: str
    round: int
    position: int
    check: str
    verdict: str
    reason: str
    artifact: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    suggestion: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "artifact": self.artifact, "verdict": self.verdict,
                "reason": self.reason, "suggestion": self.suggestion}


@dataclass(frozen=True)
class VoteRecord:
    request_id: str
    round: int
    reviewer: str
    decision: Decision
    comment: str
    at: datetime
    ledger_index: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"reviewer": self.reviewer, "decision": str(self.decision),
                "comment": self.comment, "round": self.round, "at": format_time(self.at),
                "ledger_index": self.ledger_index}


@dataclass(frozen=True)
class CommentRecord:
    request_id: str
    round: int
    author: str
    role: str
    text: str
    at: datetime
    ledger_index: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"author": self.author, "role": self.role, "text": self.text,
                "round": self.round, "at": format_time(self.at),
                "ledger_index": self.ledger_index}


@dataclass(frozen=True)
class PackageRecord:
    """A released request's package: the ledger entry that released it and the zip."""

    request_id: str
    released_at: datetime
    ledger_index: int  # of release.released
    provenance_sha256: str  # PROVENANCE.json, kept in the quarantine under this hash
    note_sha256: str  # PROVENANCE.txt, likewise
    zip_sha256: str | None = None  # None until the zip with its proof is written
    zip_size: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"released_at": format_time(self.released_at), "ledger_index": self.ledger_index,
                "provenance_sha256": self.provenance_sha256, "note_sha256": self.note_sha256,
                "zip_sha256": self.zip_sha256, "zip_size": self.zip_size}


Row = ArtifactRecord | CheckRecord | VoteRecord | CommentRecord | PackageRecord
