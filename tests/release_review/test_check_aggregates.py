"""Aggregate checks computed from the raw contributions on the server: "min_cell_count",
"dominance", "differencing", and the provenance match behind them."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from release_review.checks import differencing, dominance, min_cell_count
from release_review.checks.base import Verdict
from release_review.checks.provenance import candidates
from tests.release_review.conftest import only

FINE = ("SELECT district, industry, count(*) AS n, sum(registered_capital) AS capital "
        "FROM enterprises GROUP BY district, industry")
BY_SEX = "SELECT sex, count(*) AS people FROM residents GROUP BY sex"
WAGES = ("SELECT month, count(DISTINCT resident_id) AS employees, sum(wage) AS wages "
         "FROM social_insurance GROUP BY month")
EDUCATION = ("SELECT sex, education, count(*) AS n FROM residents GROUP BY sex, education "
             "HAVING count(*) >= 10")


def test_small_cells_fail_from_server_counts(sub):
    table = sub.sql(FINE)
    ctx = sub.context(sub.csv("fine.csv", table), queries=[BY_SEX, FINE])
    r = only(min_cell_count.run(ctx))
    assert r.verdict is Verdict.FAIL, r
    assert r.evidence["provenance"]["query_ledger_index"] == 101
    assert r.evidence["contributors_counted_by"] == ["enterprises.credit_code"]
    assert r.evidence["cells_below_threshold"][0]["contributors"] >= 1
    assert "suppress" in r.suggestion.lower()


def test_inflated_counts_do_not_hide_small_cells(sub):
    table = sub.sql(FINE)
    forged = table.set_column(2, "n", pc.add(table["n"], 100))  # the analyst's numbers lie
    ctx = sub.context(sub.csv("forged.csv", forged), queries=[FINE])
    r = only(min_cell_count.run(ctx))
    assert r.verdict is Verdict.FAIL
    assert r.evidence["provenance"]["values"] == [{"column": "capital", "aggregate": "sum"}]


def test_large_cells_pass(sub):
    ctx = sub.context(sub.csv("sex.csv", sub.sql(BY_SEX)), queries=[FINE, BY_SEX])
    r = only(min_cell_count.run(ctx))
    assert r.verdict is Verdict.PASS, r
    assert r.evidence["smallest_cell"] >= 1000


def test_renamed_and_rounded_table_is_still_matched(sub):
    table = sub.sql(BY_SEX)
    rounded = pa.table({"性别": table["sex"],
                        "人数": pc.multiply(pc.round(pc.divide(table["people"], 5.0)), 5.0)})
    ctx = sub.context(sub.csv("rounded.csv", rounded), queries=[BY_SEX])
    r = only(min_cell_count.run(ctx))
    assert r.verdict is Verdict.PASS
    assert r.evidence["provenance"]["keys"] == ["性别"]


def test_zero_cell_in_a_two_way_table_fails(sub):
    table = sub.sql(EDUCATION)
    zero = pa.table({"sex": ["男"], "education": ["不存在的学历"], "n": pa.array([0], table["n"].type)})
    ctx = sub.context(sub.csv("edu.csv", pa.concat_tables([table, zero])), queries=[EDUCATION])
    r = only(min_cell_count.run(ctx))
    assert r.verdict is Verdict.FAIL
    assert r.evidence["zero_cells"] == [{"sex": "男", "education": "不存在的学历"}]
    ok = only(min_cell_count.run(sub.context(sub.csv("edu_ok.csv", table), queries=[EDUCATION])))
    assert ok.verdict is Verdict.PASS


def test_unexplained_aggregate_is_reviewed_or_fails_on_its_own_counts(sub):
    ctx = sub.context(sub.csv("mine.csv", pa.table({"区县": ["五华区", "盘龙区"], "人数": [120, 340]})))
    assert only(min_cell_count.run(ctx)).verdict is Verdict.REVIEW
    ctx = sub.context(sub.csv("mine2.csv", pa.table({"区县": ["五华区", "盘龙区"], "人数": [120, 3]})))
    assert only(min_cell_count.run(ctx)).verdict is Verdict.FAIL


def test_not_ledgered_sql_is_no_candidate(sub):
    ctx = sub.context(queries=["SELECT * FROM residents", "COPY residents TO 'x.csv'",
                               "SELECT count(*) FROM (SELECT 1)", "SELECT count(*) FROM read_csv('x')",
                               BY_SEX])
    assert [s.query.sql for s in candidates(ctx)] == [BY_SEX]


def test_dominated_sums_fail(sub):
    by_district = ("SELECT district, count(*) AS n, sum(registered_capital) AS capital "
                   "FROM enterprises GROUP BY district")
    ctx = sub.context(sub.csv("capital.csv", sub.sql(by_district)), queries=[by_district])
    r = only(dominance.run(ctx))
    assert r.verdict is Verdict.FAIL, r
    cell = r.evidence["dominated_cells"][0]
    assert cell["contributors_by"] == "enterprises.credit_code"
    assert cell["top_share"] >= 0.9 or cell["p_ratio"] < 0.1


def test_sums_over_many_contributors_pass(sub):
    ctx = sub.context(sub.csv("wages.csv", sub.sql(WAGES)), queries=[WAGES])
    r = only(dominance.run(ctx))
    assert r.verdict is Verdict.PASS, r
    assert r.evidence["columns"] == ["wages"]
    assert only(min_cell_count.run(ctx)).verdict is Verdict.PASS


def test_counts_only_pass_dominance(sub):
    ctx = sub.context(sub.csv("sex.csv", sub.sql(BY_SEX)), queries=[BY_SEX])
    assert only(dominance.run(ctx)).verdict is Verdict.PASS


def test_differencing_against_an_earlier_release_fails(sub):
    all_people = sub.sql("SELECT district, count(*) AS n FROM residents GROUP BY district")
    prior = sub.csv("released_all.csv", all_people)
    q = ("SELECT district, count(*) AS n FROM residents WHERE education <> '博士研究生' "
         "GROUP BY district")
    now = sub.csv("now.csv", sub.sql(q))
    releases = [{"id": "rel-1", "artifacts": [{"name": prior.name, "path": str(prior),
                                                "media_type": "text/csv"}]}]
    r = only(differencing.run(sub.context(now, queries=[q], prior=releases)))
    assert r.verdict is Verdict.FAIL, r
    assert r.evidence["small_differences"][0]["against"] == "release rel-1: released_all.csv"
    assert 0 < r.evidence["small_differences"][0]["difference"] < 10


def test_margin_of_a_two_way_table_recovers_suppressed_cells(sub):
    two_way = sub.sql(EDUCATION)  # small cells left out
    margin = sub.sql("SELECT sex, count(*) AS n FROM residents GROUP BY sex")
    ctx = sub.context(sub.csv("two_way.csv", two_way), sub.csv("margin.csv", margin),
                      queries=[EDUCATION])
    results = differencing.run(ctx)
    assert only(results, artifact="two_way.csv").verdict is Verdict.FAIL


def test_same_or_unrelated_tables_pass_differencing(sub):
    table = sub.sql("SELECT district, count(*) AS n FROM residents GROUP BY district")
    prior = sub.csv("released.csv", table)
    other = sub.csv("other.csv", sub.sql("SELECT sex, count(*) AS n FROM residents GROUP BY sex"))
    releases = [{"id": "rel-1", "artifacts": [
        {"name": "released.csv", "path": str(prior), "media_type": "text/csv"},
        {"name": "other.csv", "path": str(other), "media_type": "text/csv"}]}]
    r = only(differencing.run(sub.context(sub.csv("again.csv", table), prior=releases)))
    assert r.verdict is Verdict.PASS, r
    assert len(r.evidence["compared_with"]) == 2
