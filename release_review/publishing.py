"""Making a released request's package, in two steps around its ledger entry.

1. ``seal_provenance``: before ``release.released`` is written, the manifest and the note are
   rendered once and kept in the quarantine under their sha256 (so the zip can be rebuilt
   later with exactly the bytes the ledger entry names), and the entry's details are built:
   the hashes of the manifest, the note and every released file, the approvals, the sources
   with registration codes and acquisition dates, and the grade.
2. ``build_zip``: after the entry is in the ledger, the zip is sealed with the entry's stored
   leaf bytes and its inclusion proof up to the newest signed checkpoint (with cosignatures).
   The zip can be rebuilt at any time; every build verifies against the same log key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.catalog.records import AuthorizationRecord
from ledger.checkpoint import parse_checkpoint
from ledger.note import split_note
from ledger.proofbundle import format_tlog_proof
from release_review import provenance
from release_review.exceptions import PackageError
from release_review.package import build_package, verify_package
from release_review.quarantine import ContentStore
from release_review.records import (
    ArtifactRecord,
    CheckRecord,
    PackageRecord,
    ReleaseRequest,
    VoteRecord,
)


@dataclass(frozen=True)
class Sealed:
    manifest_sha256: str
    note_sha256: str
    entry_details: dict[str, Any]


def seal_provenance(request: ReleaseRequest, auth: AuthorizationRecord,
                    artifacts: list[ArtifactRecord], checks: list[CheckRecord],
                    votes: list[VoteRecord], released_at: datetime, origin: str,
                    quarantine: ContentStore) -> Sealed:
    released = [a for a in artifacts if a.released]
    for a in released:
        quarantine.read_verified(a.package_sha256)  # every file is there and unchanged
    times = provenance.Times(request.submitted_at or request.created_at, request.checked_at,
                             request.decided_at or released_at, released_at)
    manifest = provenance.manifest(request, auth, artifacts, checks, votes, times, origin)
    manifest_bytes = provenance.manifest_bytes(manifest)
    note_bytes = provenance.note_text(manifest).encode("utf-8")
    m = quarantine.put_bytes(manifest_bytes)
    n = quarantine.put_bytes(note_bytes)
    round_votes = [v for v in votes if v.round == request.round]
    details = {
        "files": [{"name": f["name"], "sha256": f["sha256"], "size": f["size"]}
                  for f in manifest["files"]],
        "provenance_sha256": m.sha256, "note_sha256": n.sha256,
        "approvals": [{"reviewer": v.reviewer, "ledger_index": v.ledger_index}
                      for v in round_votes if str(v.decision) == "approve"],
        "sources": [{"dataset": s["dataset"], "registration_code": s.get("registration_code"),
                     "acquired_on": s.get("acquired_on"), "grade": s.get("grade")}
                    for s in request.sources],
        "grade": request.grade, "scenario": auth.scenario, "author": request.author,
        "dp_charge": (request.dp or {}).get("ledger_index"),
    }
    return Sealed(m.sha256, n.sha256, details)


def build_zip(request: ReleaseRequest, package: PackageRecord, artifacts: list[ArtifactRecord],
              quarantine: ContentStore, log: Any) -> bytes:
    """The sealed zip of a released request, with its entry's proof; verified before use."""
    index = package.ledger_index
    rows = log.store.entries(index, index + 1)
    if not rows:
        raise PackageError(f"ledger entry {index} of request {request.id} cannot be read")
    entry = bytes(rows[0][1])
    note = log.checkpoint_with_cosignatures()
    cp = parse_checkpoint(split_note(note)[0])
    if cp.size <= index:
        raise PackageError(f"the newest checkpoint (size {cp.size}) does not cover entry {index}")
    proof = format_tlog_proof(index, log.store.inclusion_proof(index, cp.size), note)
    files = [(a.name, quarantine.read_verified(a.package_sha256)) for a in artifacts
             if a.released]
    data = build_package(quarantine.read_verified(package.provenance_sha256),
                         quarantine.read_verified(package.note_sha256), files, entry, proof,
                         note, request.id)
    verify_package(data, log.verifier())  # never hand out a package that does not verify
    return data
