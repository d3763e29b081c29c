"""The review workflow through the real service: real data, real gateway queries, real ledger.

Each test has a ledger and a control database of its own over the session's synthetic domain
(``review_support``). Every act is checked in the ledger: its entry type, actor and role, and
that the entry was written with the change (or that nothing changed when it was refused).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from release_review.exceptions import (
    InvalidInput,
    InvalidTransition,
    NotRecorded,
    PermissionDenied,
    PolicyRefused,
)
from release_review.package import verify_package
from release_review.states import Decision, ReleaseStatus
from tests.factories import create_release_at_status, submitted_request
from tests.release_review.review_support import (
    ALICE,
    BOB,
    BY_DISTRICT,
    CAROL,
    REGINA,
    RITA,
    ROB,
    ReviewEnv,
    open_env,
)

S = ReleaseStatus


@pytest.fixture
def env(world, tmp_path: Path):
    e = open_env(world, tmp_path)
    yield e
    e.close()


def types(env: ReviewEnv, start: int = 0) -> list[str]:
    return [e["type"] for e in env.entries()[start:]]


def size(env: ReviewEnv) -> int:
    return env.log.store.head().size


def test_a_submission_names_what_the_ledger_knows_and_each_file_hash(env: ReviewEnv) -> None:
    request = submitted_request(env, important=True)
    assert request.status is S.SUBMITTED and request.round == 1
    assert request.datasets == ["residents"]
    assert request.grade == "important" and request.required_approvals == 2
    source = request.sources[0]
    assert source["registration_code"] and source["acquired_on"]
    assert [c["name"] for c in source["columns"]] == ["sex"]
    query = [e for e in env.entries("query")][-1]
    assert list(request.queries) == [env.entries().index(query)]
    entry = env.entries("release.submitted")[-1]
    artifact = env.service.store.artifacts(request.id, 1)[0]
    assert entry["release"] == request.id and entry["actor"] == "alice"
    assert entry["role"] == "analyst" and entry["dataset"] == "residents"
    assert entry["details"]["files"] == [{
        "name": "by_sex.csv", "sha256": artifact.sha256, "size": artifact.size,
        "media_type": "text/csv", "released": True}]
    assert entry["details"]["sources"][0]["registration_code"] == source["registration_code"]
    assert env.service.quarantine.path(artifact.sha256).read_bytes().startswith(b'"sex"')


def test_checks_are_stored_and_ledgered_with_their_evidence_hash(env: ReviewEnv) -> None:
    request = env.service.run_checks(submitted_request(env).id)
    assert request.status is S.CHECKED and request.checked_at is not None
    stored = env.service.store.check_results(request.id, 1)
    assert {c.check for c in stored} >= {"type_gate", "identifiers", "min_cell_count"}
    assert all(c.verdict == "pass" for c in stored), [(c.check, c.reason) for c in stored]
    entry = env.entries("release.checked")[-1]
    assert entry["actor"] == "shuyu-review" and entry["role"] == "service"
    assert entry["details"]["verdicts"] == {"pass": len(stored), "review": 0, "fail": 0}
    assert len(entry["details"]["results"]) == len(stored)
    assert env.service.run_checks(request.id).status is S.CHECKED  # idempotent, no new entry
    assert len(env.entries("release.checked")) == 1


def test_a_disclosive_file_fails_and_cannot_be_approved(env: ReviewEnv) -> None:
    rows = env.raw_sql("SELECT resident_id, sex, birth_date, district FROM residents LIMIT 50")
    env.query("alice", "SELECT sex, count(*) AS n FROM residents GROUP BY sex")
    f = env.csv_file("people.csv", rows)
    request = env.service.submit(ALICE, title="名单", purpose="x", files=[f])
    request = env.service.run_checks(request.id)
    failed = {c.check for c in env.service.store.check_results(request.id, 1)
              if c.verdict == "fail"}
    assert "identifiers" in failed
    before = size(env)
    with pytest.raises(PolicyRefused, match="cannot be approved"):
        env.service.vote(RITA, request.id, Decision.APPROVE)
    assert env.service.get_request(request.id).status is S.CHECKED
    refused = env.entries()[before:]
    assert [e["type"] for e in refused] == ["release.action_refused"]
    assert refused[0]["details"]["act"] == "vote" and refused[0]["actor"] == "rita"
    assert env.service.vote(RITA, request.id, Decision.REJECT, "identity numbers").status \
        is S.REJECTED


def test_two_different_reviewers_approve_重要_data_then_it_is_released(env: ReviewEnv) -> None:
    request = create_release_at_status(env, S.CHECKED, important=True)
    start = size(env)
    request = env.service.vote(RITA, request.id, Decision.APPROVE, "looks fine")
    assert request.status is S.IN_REVIEW
    assert types(env, start) == ["release.vote", "release.in_review"]
    with pytest.raises(PermissionDenied, match="different reviewer"):
        env.service.vote(RITA, request.id, Decision.APPROVE, "again")
    assert env.service.get_request(request.id).status is S.IN_REVIEW
    start = size(env)
    request = env.service.vote(ROB, request.id, Decision.APPROVE, "agree")
    assert request.status is S.RELEASED
    assert types(env, start) == ["release.vote", "release.approved", "release.released",
                                 "release.packaged"]
    released = env.entries("release.released")[-1]
    assert [a["reviewer"] for a in released["details"]["approvals"]] == ["rita", "rob"]
    votes = env.service.store.votes(request.id)
    assert [v.ledger_index for v in votes] == [
        i for i, e in enumerate(env.entries()) if e["type"] == "release.vote"]
    package = env.service.store.package(request.id)
    assert package.ledger_index == env.entries().index(released)


def test_one_approval_releases_一般_data(env: ReviewEnv) -> None:
    request = create_release_at_status(env, S.RELEASED)
    assert request.required_approvals == 1 and request.status is S.RELEASED
    assert [v.reviewer for v in env.service.store.votes(request.id)] == ["rita"]


def test_authors_never_review_and_others_may_not_either(env: ReviewEnv) -> None:
    request = create_release_at_status(env, S.CHECKED)
    for user, why in ((ALICE, "not a reviewer"), (BOB, "not a reviewer"),
                      (REGINA, "not a reviewer")):
        with pytest.raises(PermissionDenied, match=why):
            env.service.vote(user, request.id, Decision.APPROVE)
        with pytest.raises(PermissionDenied):
            env.service.open_request(user, request.id)
    assert env.service.get_request(request.id).status is S.CHECKED


def test_reject_and_return_need_a_comment(env: ReviewEnv) -> None:
    request = create_release_at_status(env, S.CHECKED)
    for decision in (Decision.REJECT, Decision.RETURN):
        with pytest.raises(PolicyRefused, match="needs a comment"):
            env.service.vote(RITA, request.id, decision, "")
    with pytest.raises(InvalidInput, match="not one of"):
        env.service.vote(RITA, request.id, "maybe", "x")
    assert env.service.store.votes(request.id) == []


def test_a_returned_request_is_amended_resubmitted_and_checked_again(env: ReviewEnv) -> None:
    request = create_release_at_status(env, S.RETURNED)
    entry = env.entries("release.returned")[-1]
    assert entry["details"]["comment"] == "round the counts to 5" and entry["role"] == "reviewer"
    with pytest.raises(PermissionDenied, match="only alice"):
        env.service.resubmit(BOB, request.id, [])
    table = env.query("alice", BY_DISTRICT)
    f = env.csv_file("by_district_v2.csv", table)
    note = env.text_file("method.md", "# 方法\n\n按站点所在区县统计一周刷卡次数。", released=False,
                         media_type="text/markdown")
    request = env.service.resubmit(ALICE, request.id, [f, note], "new version")
    assert request.status is S.SUBMITTED and request.round == 2
    assert [a.name for a in env.service.store.artifacts(request.id, 2)] == [
        "by_district_v2.csv", "method.md"]
    assert env.entries("release.submitted")[-1]["details"]["resubmission"] is True
    request = env.service.run_checks(request.id)
    assert request.status is S.CHECKED
    assert env.service.store.check_results(request.id, 2)
    request = env.service.vote(RITA, request.id, Decision.APPROVE, "better")
    assert request.status is S.RELEASED  # rita's round-1 return does not block her round-2 vote
    manifest = json.loads(env.service.quarantine.read_verified(
        env.service.store.package(request.id).provenance_sha256))
    assert [f["name"] for f in manifest["files"]] == ["by_district_v2.csv"]
    assert manifest["supporting_files"][0]["name"] == "method.md"


@pytest.mark.parametrize("status", [S.SUBMITTED, S.CHECKED, S.RETURNED])
def test_the_author_may_withdraw_before_a_decision(env: ReviewEnv, status) -> None:
    request = create_release_at_status(env, status)
    with pytest.raises(PermissionDenied, match="only alice"):
        env.service.withdraw(RITA, request.id)
    request = env.service.withdraw(ALICE, request.id, "not needed")
    assert request.status is S.WITHDRAWN
    entry = env.entries("release.withdrawn")[-1]
    assert entry["details"]["previous_status"] == str(status)
    assert entry["details"]["reason"] == "not needed"


@pytest.mark.parametrize("status", [S.REJECTED, S.RELEASED, S.WITHDRAWN])
def test_final_statuses_refuse_every_act(env: ReviewEnv, status) -> None:
    request = create_release_at_status(env, status)
    with pytest.raises(InvalidTransition):
        env.service.withdraw(ALICE, request.id)
    with pytest.raises((InvalidTransition, PermissionDenied)):
        env.service.vote(ROB, request.id, Decision.APPROVE)
    with pytest.raises(InvalidTransition):
        env.service.resubmit(ALICE, request.id, [])
    assert env.service.get_request(request.id).status is status


def test_views_comments_and_downloads_are_ledgered_first(env: ReviewEnv) -> None:
    request = create_release_at_status(env, S.CHECKED)
    start = size(env)
    detail = env.service.open_request(RITA, request.id)
    assert detail.can_vote and detail.can_approve
    assert list(detail.contents) == ["by_district.csv"]
    assert detail.queries and detail.queries[0]["sql"] == BY_DISTRICT
    artifact, data = env.service.open_file(RITA, request.id, "by_district.csv")
    comment = env.service.comment(RITA, request.id, "区县名称请用全称")
    assert types(env, start) == ["release.viewed", "release.file_viewed", "release.commented"]
    viewed = env.entries()[start]
    assert viewed["actor"] == "rita" and viewed["details"]["previews"][0]["sha256"] == \
        artifact.sha256
    assert comment.ledger_index == start + 2
    request = env.service.vote(RITA, request.id, Decision.APPROVE, "ok")
    with pytest.raises(PermissionDenied, match="not an analyst of authorization"):
        env.service.download(CAROL, request.id)
    with pytest.raises(PermissionDenied, match="not an analyst"):
        env.service.download(RITA, request.id)
    start = size(env)
    name, zipped = env.service.download(BOB, request.id)  # bob works under the same agreement
    assert name == f"shuyu-release-{request.id}.zip"
    assert types(env, start) == ["release.downloaded"]
    assert env.entries()[-1]["details"]["zip_sha256"] == \
        env.service.store.package(request.id).zip_sha256
    verified = verify_package(zipped, env.log.verifier())
    assert verified.release == request.id


def test_the_package_names_sources_checks_reviewers_and_times(env: ReviewEnv) -> None:
    request = create_release_at_status(env, S.RELEASED, important=True)
    _, zipped = env.service.download(ALICE, request.id)
    import io
    import zipfile

    z = zipfile.ZipFile(io.BytesIO(zipped))
    manifest = json.loads(z.read("PROVENANCE.json"))
    assert manifest["release"] == request.id and manifest["grade_label"] == "重要"
    auth = env.catalog.get_authorization(request.authorization)
    assert manifest["authorization"]["scenario"] == auth.scenario
    assert manifest["sources"][0]["registration_code"] and manifest["sources"][0]["acquired_on"]
    assert {c["check"] for c in manifest["checks"]} >= {"type_gate", "min_cell_count"}
    assert [v["reviewer"] for v in manifest["review"]["votes"]] == ["rita", "rob"]
    assert all(manifest["times"][k] for k in ("submitted_at", "checked_at", "approved_at",
                                              "released_at"))
    note = z.read("PROVENANCE.txt").decode()
    assert "登记编码" in note and manifest["sources"][0]["registration_code"] in note
    assert z.read("files/by_sex.csv") == env.service.quarantine.read_verified(
        env.service.store.artifacts(request.id, 1)[0].sha256)


def test_nothing_changes_when_the_ledger_cannot_record(world, tmp_path: Path) -> None:
    live = open_env(world, tmp_path)
    try:
        checked = create_release_at_status(live, S.CHECKED)
        submitted = submitted_request(live, title="second")
        f = live.csv_file("again.csv", live.query("alice", BY_DISTRICT))
    finally:
        live.close()
    key = tmp_path / "keys" / "ledger.skey"
    saved = key.read_bytes()
    key.unlink()
    broken = open_env(world, tmp_path, init=False)  # a fresh process: no cached signing key
    try:
        head = size(broken)
        acts = [
            lambda: broken.service.submit(ALICE, title="t", purpose="p", files=[f]),
            lambda: broken.service.run_checks(submitted.id),
            lambda: broken.service.vote(RITA, checked.id, Decision.APPROVE, "ok"),
            lambda: broken.service.comment(RITA, checked.id, "a note"),
            lambda: broken.service.open_request(RITA, checked.id),
            lambda: broken.service.open_file(RITA, checked.id, "by_district.csv"),
            lambda: broken.service.withdraw(ALICE, submitted.id),
        ]
        for act in acts:
            with pytest.raises(NotRecorded):
                act()
        assert broken.service.get_request(checked.id).status is S.CHECKED
        assert broken.service.get_request(submitted.id).status is S.SUBMITTED
        assert broken.service.store.votes(checked.id) == []
        assert broken.service.store.comments(checked.id) == []
        assert len(broken.service.store.list_requests()) == 2
        assert size(broken) == head
    finally:
        broken.close()
        key.write_bytes(saved)
        key.chmod(0o600)
    healed = open_env(world, tmp_path, init=False)
    try:
        assert healed.service.run_checks(submitted.id).status is S.CHECKED
    finally:
        healed.close()


@pytest.mark.postgres
def test_the_workflow_on_postgresql(world, tmp_path: Path, pg_url: str) -> None:
    env = open_env(world, tmp_path, control_url=pg_url)
    try:
        request = create_release_at_status(env, S.RELEASED, important=True)
        assert request.status is S.RELEASED
        assert len(env.service.store.votes(request.id)) == 2
        _, zipped = env.service.download(ALICE, request.id)
        verify_package(zipped, env.log.verifier())
    finally:
        env.close()


def test_dp_statistics_become_a_request_with_their_budget(env: ReviewEnv) -> None:
    spec = {"dataset": "social_insurance", "group_by": ["payment_status"],
            "measures": [{"op": "count"}], "epsilon": 0.5, "max_rows_per_person": 12}
    request, result = env.service.submit_dp(ALICE, spec, title="缴费状态 DP", purpose="报告")
    assert request.kind == "dp" and request.datasets == ["social_insurance"]
    assert result["spent"]["epsilon"] == 0.5 and result["rows"]
    charged = env.entries("budget.charged")[-1]
    assert charged["details"]["request"] == request.id
    request = env.service.run_checks(request.id)
    failed = [c for c in env.service.store.check_results(request.id, 1) if c.verdict == "fail"]
    assert failed == [], [(c.check, c.reason) for c in failed]
    request = env.service.vote(RITA, request.id, Decision.APPROVE, "DP")
    request = env.service.vote(ROB, request.id, Decision.APPROVE, "DP")
    assert request.status is S.RELEASED
    manifest = json.loads(env.service.quarantine.read_verified(
        env.service.store.package(request.id).provenance_sha256))
    assert manifest["dp"]["spent"]["epsilon"] == 0.5
    assert manifest["dp"]["ledger_index"] == env.entries().index(charged)
    with pytest.raises(PolicyRefused, match="budget"):
        env.service.submit_dp(ALICE, {**spec, "epsilon": 0.6}, title="t", purpose="p")
