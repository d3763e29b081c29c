"""The provenance of a released request: ``PROVENANCE.json`` and its human-readable note.

Every product names its sources (注明数据来源和获取日期, DESIGN.md principle 5). The manifest
(format ``shuyu-release-provenance/v1``) holds:

- ``release``, ``title``, ``purpose``, ``context``, ``author``, ``operator``;
- ``authorization``: id, scenario (应用场景), use class (公共治理/公益 or 产业发展) and term;
- ``grade``: the highest grade of the sources (就高从严);
- ``sources``: each dataset with provider, grade, registration code (登记编码), acquisition date
  (获取日期), version and the columns used; ``queries``: ledger indices of the author's queries;
- ``files``: each released file's name, sha256, size and media type (and the sha256 of what the
  author submitted, when a check re-encoded it);
- ``checks``: every automatic check's verdict and reason, with the sha256 of its evidence;
- ``dp``: for DP releases, the spec, noise mechanisms and scales, ε/ρ/δ spent and the budget
  left, with the ledger index of ``budget.charged``;
- ``review``: approvals required, every vote of the final round and the earlier rounds;
- ``times``: submitted, checked, approved and released (UTC);
- ``ledger``: the log's origin.

Both texts are deterministic for the same inputs (keys in a fixed order, UTF-8, final newline),
so their sha256 in the ``release.released`` ledger entry can be checked by anyone.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.catalog.enums import Grade, UseClass
from hub.catalog.events import format_time
from hub.catalog.records import AuthorizationRecord
from release_review.records import (
    ArtifactRecord,
    CheckRecord,
    ReleaseRequest,
    VoteRecord,
)

FORMAT = "shuyu-release-provenance/v1"
FILES_DIR = "files/"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def evidence_sha256(evidence: dict[str, Any]) -> str:
    text = json.dumps(evidence, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return sha256_hex(text.encode("utf-8"))


@dataclass(frozen=True)
class Times:
    submitted_at: datetime
    checked_at: datetime | None
    approved_at: datetime
    released_at: datetime


def manifest(request: ReleaseRequest, authorization: AuthorizationRecord,
             files: list[ArtifactRecord], checks: list[CheckRecord], votes: list[VoteRecord],
             times: Times, origin: str) -> dict[str, Any]:
    grade = Grade.parse(request.grade)
    use = UseClass.parse(authorization.use_class)
    return {
        "format": FORMAT,
        "release": request.id,
        "title": request.title,
        "purpose": request.purpose,
        "context": request.context,
        "kind": str(request.kind),
        "author": request.author,
        "operator": request.operator,
        "authorization": {
            "id": authorization.id, "scenario": authorization.scenario,
            "use_class": str(use), "use_class_label": use.label,
            "starts_at": format_time(authorization.starts_at),
            "ends_at": format_time(authorization.ends_at),
        },
        "grade": str(grade), "grade_label": grade.label,
        "sources": list(request.sources),
        "queries": list(request.queries),
        "files": [{"name": f.name, "sha256": f.package_sha256,
                   "size": f.released_size if f.released_sha256 else f.size,
                   "media_type": f.media_type,
                   **({"submitted_sha256": f.sha256} if f.released_sha256 else {})}
                  for f in files if f.released],
        "supporting_files": [{"name": f.name, "sha256": f.sha256} for f in files
                             if not f.released],
        "checks": [{"check": c.check, "artifact": c.artifact, "verdict": c.verdict,
                    "reason": c.reason, "evidence_sha256": evidence_sha256(c.evidence)}
                   for c in checks],
        "dp": _dp(request.dp),
        "review": {
            "round": request.round,
            "required_approvals": request.required_approvals,
            "votes": [v.to_json() for v in votes],
        },
        "times": {"submitted_at": format_time(times.submitted_at),
                  "checked_at": format_time(times.checked_at),
                  "approved_at": format_time(times.approved_at),
                  "released_at": format_time(times.released_at)},
        "ledger": {"origin": origin},
    }


def _dp(dp: dict[str, Any] | None) -> dict[str, Any] | None:
    if not dp:
        return None
    keep = ("release", "dataset", "spec", "spec_sha256", "mechanisms", "keys", "privacy_unit",
            "spent", "charged_epsilon", "budget", "ledger_index", "result_sha256", "confidence")
    return {k: dp.get(k) for k in keep}


def manifest_bytes(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def note_text(m: dict[str, Any]) -> str:
    """The human-readable provenance note (中文 and English), from the manifest alone."""
    auth = m["authorization"]
    lines = [
        f"数据产品来源说明 / Provenance of release {m['release']}",
        "=" * 60,
        f"标题 Title: {m['title']}",
        f"用途 Purpose: {m['purpose']}",
        f"开发人员 Author: {m['author']}    运营机构 Operator: {m['operator']}",
        f"授权运营协议 Authorization: {auth['id']}  应用场景 Scenario: {auth['scenario']}",
        f"用途类别 Use class: {auth['use_class_label']}  "
        f"期限 Term: {auth['starts_at']} – {auth['ends_at']}",
        f"数据分级 Grade (highest of the sources): {m['grade_label']} ({m['grade']})",
        "",
        "数据来源 Sources (注明数据来源和获取日期):",
    ]
    for s in m["sources"]:
        lines.append(f"  - {s.get('title') or s['dataset']} ({s['dataset']}), "
                     f"提供单位 {s.get('provider') or '-'}, 登记编码 "
                     f"{s.get('registration_code') or '-'}, 获取日期 "
                     f"{s.get('acquired_on') or '-'}, 版本 {s.get('version') or '-'}, 分级 "
                     f"{s.get('grade_label') or s.get('grade')}")
    if not m["sources"]:
        lines.append("  (none found in the ledger)")
    lines += ["", "文件 Files released (sha256):"]
    lines += [f"  - {f['name']}  {f['sha256']}  {f['size']:,} bytes" for f in m["files"]]
    lines += ["", "自动检查 Automatic checks:"]
    lines += [f"  - [{c['verdict']}] {c['check']}"
              + (f" ({c['artifact']})" if c["artifact"] else "") + f": {c['reason']}"
              for c in m["checks"]]
    if m.get("dp"):
        dp = m["dp"]
        spent = dp.get("spent") or {}
        budget = dp.get("budget") or {}
        lines += ["", "差分隐私 Differential privacy:",
                  f"  ε={spent.get('epsilon')} ρ={spent.get('rho')} δ={spent.get('delta')}; "
                  f"budget left ε={budget.get('remaining_epsilon')} of "
                  f"{budget.get('total_epsilon')}; ledger entry {dp.get('ledger_index')}"]
    review = m["review"]
    lines += ["", f"审核 Review: {review['required_approvals']} approval(s) required, round "
                  f"{review['round']}"]
    lines += [f"  - {v['decision']} by {v['reviewer']} at {v['at']}"
              + (f": {v['comment']}" if v.get("comment") else "") for v in review["votes"]]
    t = m["times"]
    lines += ["", f"时间 Times (UTC): submitted {t['submitted_at']}, checked {t['checked_at']}, "
                  f"approved {t['approved_at']}, released {t['released_at']}",
              "",
              f"账本 Ledger: this package carries the inclusion proof of its release.released "
              f"entry in the log {m['ledger']['origin']}.",
              "Verify offline: shuyu release verify-package <zip> --vkey <the log's vkey>", ""]
    return "\n".join(lines)
