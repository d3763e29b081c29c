"""The identifier detectors and the "identifiers" check, on generator data and hand-made cases."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from hub.gateway.pseudonyms import pseudonym
from release_review.checks import identifiers
from release_review.checks.base import Verdict
from release_review.checks.detectors import KIND_NAMES, NEAR, VALID, Kind, scan_strings
from tests.release_review.conftest import only


def kinds(values) -> list[tuple[str, int]]:
    arr = pa.array(values, pa.string())
    hits = scan_strings(arr)
    found = {int(c): (KIND_NAMES[Kind(int(k))], int(s))
             for c, k, s in zip(hits.cell, hits.kind, hits.status)}
    return [found.get(i, (None, 0)) for i in range(len(values))]


def flip_last(code: str, alphabet: str) -> str:
    return code[:-1] + next(c for c in alphabet if c != code[-1])


def test_generator_identifiers_are_valid(sub):
    residents, firms = sub.raw("residents"), sub.raw("enterprises")
    for column, kind in ((residents["resident_id"], "resident_id"),
                         (residents["mobile"].drop_null(), "mobile"),
                         (firms["credit_code"], "credit_code"),
                         (firms["legal_representative_id"], "resident_id")):
        got = kinds(column.to_pylist())
        assert got == [(kind, VALID)] * len(column), kind


def test_wrong_check_characters_are_near_misses(sub):
    ids = sub.raw("residents")["resident_id"].to_pylist()[:200]
    codes = sub.raw("enterprises")["credit_code"].to_pylist()[:100]
    assert kinds([flip_last(i, "0123456789X") for i in ids]) == [("resident_id", NEAR)] * 200
    got = kinds([flip_last(c, "0123456789ABCDEFGHJKLMNPQRTUWXY") for c in codes])
    assert got == [("credit_code", NEAR)] * 100


@pytest.mark.parametrize("text, kind, status", [
    ("11010519491231002X", "resident_id", VALID),
    ("11010519491231002x", "resident_id", VALID),
    ("110105491231002", "resident_id_15", VALID),
    ("13812345678", "mobile", VALID),
    ("+86 138 1234 5678", "mobile", VALID),
    ("电话：138-1234-5678", "mobile", VALID),
    ("12012345678", None, 0),  # 120 is no mobile prefix
    ("4111111111111112", None, 0),  # fails Luhn
    ("4111111111111111", "bank_card", VALID),
    ("卡号 4111 1111 1111 1111", "bank_card", VALID),
    ("云A·12345", "plate", VALID),
    ("粤BD12345", "plate", VALID),
    ("E12345678", "passport", VALID),
    ("联系电话(0871)65123456", "landline", VALID),
    ("0871-65123456", "landline", VALID),
    ("ps_" + "0123456789abcdef" * 2, "pseudonym", VALID),
    ("用户 ps_" + "0123456789abcdef" * 2 + " 的记录", "pseudonym", VALID),
    ("2025年昆明市五华区常住人口 123456 人", None, 0),
    ("五华区", None, 0),
    ("", None, 0),
])
def test_token_kinds(text, kind, status):
    assert kinds([text]) == [(kind, status)]


def test_full_width_digits_are_normalised():
    assert kinds(["手机１３８１２３４５６７８"]) == [("mobile", VALID)]


def test_gateway_pseudonyms_are_recognised():
    values = [pseudonym(bytes(range(32)), f"530102199001011{i:03d}") for i in range(50)]
    assert kinds(values) == [("pseudonym", VALID)] * 50


def test_random_digit_strings_are_not_resident_ids():
    rng = np.random.default_rng(5)
    values = ["".join(map(str, rng.integers(0, 10, 18))) for _ in range(20_000)]
    got = kinds(values)
    assert sum(k == ("resident_id", VALID) for k in got) <= 2


# --- the check ---------------------------------------------------------------------------


def run_on(sub, path, **kw):
    return only(identifiers.run(sub.context(path, **kw)), "identifiers", path.name)


def test_resident_ids_in_a_table_fail(sub):
    table = sub.raw("residents").select(["resident_id", "sex", "district"])
    r = run_on(sub, sub.csv("people.csv", table))
    assert r.verdict is Verdict.FAIL
    finding = r.evidence["findings"][0]
    assert finding["kind"] == "resident_id" and finding["cells"] == table.num_rows
    assert all("*" in e for e in finding["examples"])
    assert not any(v in str(r.evidence) for v in table["resident_id"].to_pylist()[:50])


def test_mobile_numbers_read_as_integers_fail(sub):
    mobiles = sub.raw("residents")["mobile"].drop_null().to_pylist()[:500]
    path = sub.file("phones.csv", "district,phone\n" + "".join(f"五华区,{m}\n" for m in mobiles))
    r = run_on(sub, path)
    assert r.verdict is Verdict.FAIL
    assert r.evidence["findings"][0]["kind"] == "mobile"


def test_pseudonym_column_fails(sub):
    values = [pseudonym(b"k" * 32, str(i)) for i in range(300)]
    r = run_on(sub, sub.parquet("ps.parquet", pa.table({"person": values, "x": range(300)})))
    assert r.verdict is Verdict.FAIL
    assert r.evidence["findings"][0]["kind"] == "pseudonym"


def test_custom_pseudonym_pattern_fails(sub):
    path = sub.csv("t.csv", pa.table({"who": [f"anon-{i:06d}" for i in range(20)]}))
    assert run_on(sub, path).verdict is Verdict.PASS
    assert run_on(sub, path, pseudonym_patterns=[r"anon-\d{6}"]).verdict is Verdict.FAIL


def test_few_mobile_like_numbers_are_sent_for_review(sub):
    rng = np.random.default_rng(3)
    amounts = [str(int(x)) for x in rng.integers(10**6, 10**8, 1000)]
    amounts[10] = "13912345678"
    r = run_on(sub, sub.csv("amounts.csv", pa.table({"amount_fen": amounts})))
    assert r.verdict is Verdict.REVIEW
    assert r.evidence["findings"][0]["cells"] == 1


def test_near_miss_ids_are_sent_for_review(sub):
    ids = [flip_last(i, "0123456789X") for i in sub.raw("residents")["resident_id"].to_pylist()[:5]]
    r = run_on(sub, sub.csv("codes.csv", pa.table({"ref": ids})))
    assert r.verdict is Verdict.REVIEW
    assert r.evidence["findings"][0]["status"] == "near_miss"


def test_aggregate_table_passes(sub):
    table = sub.sql("SELECT district, sex, count(*) AS n FROM residents GROUP BY ALL")
    r = run_on(sub, sub.csv("agg.csv", table))
    assert r.verdict is Verdict.PASS
    assert r.evidence["cells_scanned"] == table.num_rows * 3


@pytest.mark.parametrize("name, content", [
    ("note.txt", "调查对象 {rid}，住址见附件。"),
    ("note.md", "# 结果\n\n| 对象 | 手机 |\n|---|---|\n| 甲 | {mobile} |\n"),
    ("page.html", "<html><body><p title='{rid}'>图表</p></body></html>"),
    ("data.json", '{{"summary": {{"contact": "{mobile}", "n": 12}}, "notes": ["ok"]}}'),
])
def test_identifiers_in_text_fail(sub, name, content):
    person = sub.raw("residents").filter(pa.compute.is_valid(sub.raw("residents")["mobile"]))
    text = content.format(rid=person["resident_id"][0].as_py(), mobile=person["mobile"][0].as_py())
    r = run_on(sub, sub.file(name, text))
    assert r.verdict is Verdict.FAIL, r
    assert r.evidence["findings"][0]["where"].startswith("line")


@pytest.mark.parametrize("name, content", [
    ("note.txt", "全市共有 3,000 名居民，其中 1,512 名女性。"),
    ("page.html", "<html><body><h1>2025 年统计</h1><p>编号 20250101</p></body></html>"),
])
def test_plain_text_passes(sub, name, content):
    assert run_on(sub, sub.file(name, content)).verdict is Verdict.PASS


def test_identifier_in_a_column_name_is_found(sub):
    rid = sub.raw("residents")["resident_id"][0].as_py()
    r = run_on(sub, sub.csv("t.csv", pa.table({rid: [1, 2]})))
    assert r.verdict is Verdict.FAIL
    assert r.evidence["findings"][0]["where"] == "column names"
