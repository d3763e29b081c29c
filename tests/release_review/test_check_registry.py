"""The registry: every check runs, crashes and malformed results fail closed, order is stable."""

from __future__ import annotations

import json

import pyarrow as pa

from hub.domain import DomainError
from release_review.checks import registry
from release_review.checks.base import CheckResult, Verdict
from tests.release_review.conftest import only

BY_SEX = "SELECT sex, count(*) AS people FROM residents GROUP BY sex"


def test_check_ids_are_unique_and_named_like_their_modules():
    ids = [c for c, _ in registry.ALL_CHECKS]
    assert len(ids) == len(set(ids)) == 8
    assert ids[0] == "type_gate"


def test_a_safe_request_passes_every_check(sub):
    ctx = sub.context(sub.csv("by_sex.csv", sub.sql(BY_SEX)),
                      sub.file("notes.md", "# 按性别统计\n\n数据来源：户籍人口。"),
                      queries=[BY_SEX])
    results = registry.run_all(ctx)
    assert {r.check for r in results} == {c for c, _ in registry.ALL_CHECKS}
    assert [r for r in results if r.verdict is not Verdict.PASS] == []
    json.dumps([r.evidence for r in results], ensure_ascii=False, allow_nan=False)
    assert "domain:connection" not in ctx.cache  # closed


def test_a_disclosive_request_fails(sub):
    people = sub.raw("residents").select(["resident_id", "sex", "birth_date", "district"])
    ctx = sub.context(sub.csv("people.csv", people))
    failed = {r.check for r in registry.run_all(ctx) if r.verdict is Verdict.FAIL}
    assert {"identifiers", "catalog_identifiers", "raw_overlap", "reidentification"} <= failed


def test_results_are_in_a_stable_order(sub):
    paths = [sub.csv(f"t{i}.csv", pa.table({"x": [i]})) for i in range(3)]
    first = registry.run_all(sub.context(*paths))
    again = registry.run_all(sub.context(*paths))
    assert [(r.check, r.artifact) for r in first] == [(r.check, r.artifact) for r in again]
    gate = [r.artifact for r in first if r.check == "type_gate"]
    assert gate == ["t0.csv", "t1.csv", "t2.csv"]


def crash(ctx):
    raise ValueError("boom near 11010519491231002X")


def nothing(ctx):
    return []


def foreign(ctx):
    return [CheckResult("someone_else", Verdict.PASS, "fine")]


def unserializable(ctx):
    return [CheckResult("bad_evidence", Verdict.PASS, "fine", None, {"x": object()})]


def test_crashing_and_malformed_checks_fail_closed(sub):
    checks = (("crash", crash), ("empty", nothing), ("foreign", foreign),
              ("bad_evidence", unserializable))
    results = registry.run_all(sub.context(sub.csv("t.csv", pa.table({"x": [1]}))), checks)
    assert [(r.check, r.verdict) for r in results] == [
        ("crash", Verdict.FAIL), ("empty", Verdict.FAIL), ("foreign", Verdict.FAIL),
        ("bad_evidence", Verdict.FAIL)]
    crashed = results[0]
    assert "ValueError" in crashed.reason and "11010519491231002X" not in str(crashed)


def test_unavailable_domain_fails_the_checks_that_need_it(sub):
    def broken():
        raise DomainError("no domain store at /nowhere")

    ctx = sub.context(sub.csv("agg.csv", sub.sql(BY_SEX)), queries=[BY_SEX])
    ctx.domain = broken
    results = registry.run_all(ctx)
    assert only(results, "type_gate").verdict is Verdict.PASS
    crashed = only(results, "catalog_identifiers")
    assert crashed.verdict is Verdict.FAIL and "no domain store" in crashed.reason


def test_supporting_files_are_reviewed_not_failed(sub):
    people = sub.raw("residents").select(["resident_id", "sex"])
    path = sub.csv("support.csv", people)
    results = registry.run_all(sub.context(path, supporting=("support.csv",)))
    ident = only(results, "identifiers")
    assert ident.verdict is Verdict.REVIEW and "Supporting file" in ident.reason
    bad = sub.file("script.html", "<script>x()</script>")
    results = registry.run_all(sub.context(bad, supporting=("script.html",)))
    assert only(results, "type_gate").verdict is Verdict.FAIL
