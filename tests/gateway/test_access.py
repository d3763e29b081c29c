"""Scope, term, suspension, access modes, pseudonyms, group suppression, limits and the ledger,
all through HTTP against the gateway run by a real JupyterHub, with real hub tokens.

Expected results are computed independently with DuckDB straight from the domain store.
"""

from __future__ import annotations

import base64
import hashlib
import sqlite3
import time
from datetime import timedelta

import pyarrow as pa
import pytest

from hub.catalog.agreements import ScopeRequest
from hub.catalog.enums import AccessMode
from hub.domain import open_readonly
from hub.gateway.pseudonyms import pseudonym
from tests.gateway.fixtures import QUERY_TIMEOUT, ROW_LIMIT
from tests.gateway.world import AUTHORITY, OPERATOR


@pytest.fixture(scope="module")
def direct(domain_dir):
    con = open_readonly(domain_dir)
    yield con
    con.close()


def key_of(world, authorization: str) -> bytes:
    return (world.settings.pseudonym_keys_dir / f"{authorization}.key").read_bytes()


# --- identity: the hub decides, on every request -----------------------------------------


def test_no_token_and_unknown_tokens_are_refused(gateway) -> None:
    r = gateway.http.post("queries", json={"sql": "SELECT 1"})
    assert r.status_code == 401 and r.json()["code"] == "not_authenticated"
    r = gateway.query("alice", "SELECT 1", token="not-a-hub-token")
    assert r.status_code == 401 and "does not recognize" in r.json()["reason"]
    r = gateway.http.get("datasets", headers={"Authorization": "Basic YWxpY2U6eA=="})
    assert r.status_code == 401


def test_a_revoked_token_stops_working(gateway, hub_admin) -> None:
    token, token_id = hub_admin.create_token("alice", note="to revoke")
    assert gateway.query("alice", "SELECT 1 AS one", token=token).status_code == 200
    hub_admin.revoke_token("alice", token_id)
    r = gateway.query("alice", "SELECT 1 AS one", token=token)
    assert r.status_code == 401, r.text


def test_tokens_without_the_gateway_scope_are_refused(gateway, hub_admin, hub) -> None:
    r = gateway.query("zed", "SELECT 1")  # zed is not in the analysts group
    assert r.status_code == 403 and r.json()["code"] == "missing_scope"
    assert "custom:shuyu:query" in r.json()["reason"]
    narrow, _ = hub_admin.create_token("alice", scopes=["read:users:name!user=alice"])
    r = gateway.query("alice", "SELECT 1", token=narrow)
    assert r.status_code == 403 and r.json()["code"] == "missing_scope"
    r = gateway.query("alice", "SELECT 1", token=hub.admin_token)  # a service's token
    assert r.status_code == 403 and "service" in r.json()["reason"]


def test_leaving_the_analysts_group_takes_effect_at_once(gateway, hub_admin) -> None:
    r = gateway.query("gina", "SELECT count(*) FROM enterprises")
    assert r.status_code == 403 and r.json()["code"] == "no_authorization"  # identity passed
    hub_admin.remove_from_group("analysts", "gina")
    try:
        r = gateway.query("gina", "SELECT count(*) FROM enterprises")
        assert r.status_code == 403 and r.json()["code"] == "missing_scope"
    finally:
        hub_admin.add_to_group("analysts", "gina")


# --- scope and term -------------------------------------------------------------------------


def test_no_authorization_and_a_term_not_started(gateway, ledger) -> None:
    r = gateway.query("erin", "SELECT count(*) AS n FROM enterprises")
    assert r.status_code == 403 and r.json()["code"] == "no_authorization"
    r = gateway.query("dave", "SELECT count(*) AS n FROM enterprises")
    assert r.status_code == 403 and r.json()["code"] == "outside_term"
    assert "starts at" in r.json()["reason"]
    entry = ledger.last("query.denied", sql="SELECT count(*) AS n FROM enterprises")
    assert entry["actor"] == "dave" and entry["details"]["code"] == "outside_term"


def test_an_expired_authorization_is_refused(gateway, world) -> None:
    catalog, log = world.open_catalog()
    try:
        now = catalog.now()
        auth = catalog.create_authorization(
            AUTHORITY, operator=OPERATOR, analysts=["frank"],
            scope=[ScopeRequest("enterprises", None, AccessMode.ROW_LEVEL)],
            scenario="短期试用", use_class="public_governance",
            starts_at=now - timedelta(days=1), ends_at=now + timedelta(seconds=3),
        )
    finally:
        catalog.close()
        log.close()
    assert gateway.query("frank", "SELECT count(*) AS n FROM enterprises").status_code == 200
    time.sleep(max(0.0, (auth.ends_at - now).total_seconds()) + 0.5)
    r = gateway.query("frank", "SELECT count(*) AS n FROM enterprises")
    assert r.status_code == 403 and r.json()["code"] == "authorization_not_active"
    assert f"authorization {auth.id} expired" in r.json()["reason"]


def test_suspension_refuses_at_once_and_resuming_restores(gateway, world, ledger) -> None:
    auth = world.authorizations["row"]
    sql = "SELECT industry, count(*) AS n FROM enterprises GROUP BY industry"
    assert gateway.query("alice", sql).status_code == 200
    catalog, log = world.open_catalog()
    try:
        catalog.suspend(AUTHORITY, auth, "安全检查")
        r = gateway.query("alice", sql)
        assert r.status_code == 403 and r.json()["code"] == "authorization_not_active"
        assert "suspended" in r.json()["reason"] and "安全检查" in r.json()["reason"]
        assert ledger.last("query.denied", sql=sql)["details"]["code"] == \
            "authorization_not_active"
    finally:
        catalog.resume(AUTHORITY, auth, "检查通过")
        catalog.close()
        log.close()
    assert gateway.query("alice", sql).status_code == 200


def test_several_authorizations_must_be_named(gateway, world) -> None:
    sql = "SELECT credit_code FROM enterprises ORDER BY credit_code LIMIT 5"
    r = gateway.query("bob", sql)
    assert r.status_code == 403 and r.json()["code"] == "ambiguous_authorization"
    _, under_row = gateway.rows("bob", sql, world.authorizations["row"])
    _, under_second = gateway.rows("bob", sql, world.authorizations["second"])
    assert set(under_row.column("credit_code").to_pylist()).isdisjoint(
        under_second.column("credit_code").to_pylist())  # keys differ per authorization
    r = gateway.query("bob", "SELECT count(*) FROM bus_trips", world.authorizations["second"])
    assert r.status_code == 403 and r.json()["code"] == "no_authorization"


# --- row-level data: pseudonyms, limits, pages -------------------------------------------------


def test_direct_identifiers_leave_only_as_keyed_pseudonyms(gateway, world, direct) -> None:
    sql = ("SELECT credit_code, name, legal_representative_id, industry FROM enterprises "
           "WHERE founded_year = 2015 ORDER BY industry, credit_code")
    meta, table = gateway.rows("alice", sql)
    clear = direct.execute(
        "SELECT credit_code, name, legal_representative_id FROM enterprises "
        "WHERE founded_year = 2015").fetchall()
    assert meta["rows"] == len(clear) > 0
    key = key_of(world, world.authorizations["row"])
    expected = {(pseudonym(key, c), pseudonym(key, n), pseudonym(key, r)) for c, n, r in clear}
    got = set(zip(*(table.column(c).to_pylist() for c in
                    ("credit_code", "name", "legal_representative_id"))))
    assert got == expected
    body = b"".join(gateway.page("alice", meta, n).content for n in range(meta["pages"]))
    for c, n, _ in clear:
        assert c.encode() not in body and n.encode() not in body
    assert "keyed pseudonyms" in " ".join(meta["notes"])


def test_pseudonyms_differ_between_authorizations(gateway, world, direct) -> None:
    sql = "SELECT credit_code FROM enterprises ORDER BY credit_code"
    _, alice = gateway.rows("alice", sql)
    _, carol = gateway.rows("carol", sql)
    assert set(alice.column(0).to_pylist()).isdisjoint(carol.column(0).to_pylist())
    assert alice.num_rows == carol.num_rows


def test_joins_on_pseudonyms_match_joins_on_clear_identifiers(gateway, direct) -> None:
    sql = ("SELECT e.industry, count(DISTINCT s.resident_id) AS people, sum(s.wage) AS wages "
           "FROM enterprises e JOIN social_insurance s ON e.credit_code = s.credit_code "
           "GROUP BY e.industry")
    meta, table = gateway.rows("alice", sql)
    want = direct.execute(
        "SELECT e.industry, count(DISTINCT s.resident_id), sum(s.wage) FROM enterprises e "
        "JOIN social_insurance s ON e.credit_code = s.credit_code GROUP BY e.industry "
        "HAVING count(DISTINCT s.resident_id) >= 10").fetchall()
    assert sorted(zip(*(c.to_pylist() for c in table.columns))) == sorted(want)
    total = direct.execute(
        "SELECT count(DISTINCT e.industry) FROM enterprises e JOIN social_insurance s "
        "ON e.credit_code = s.credit_code").fetchone()[0]
    assert meta["groups_suppressed"] == total - len(want)


def test_row_limit_and_pages(gateway, ledger) -> None:
    sql = "SELECT trip_id, card_id, route, board_time FROM bus_trips ORDER BY trip_id"
    meta, table = gateway.rows("alice", sql)
    assert meta["rows"] == table.num_rows == ROW_LIMIT
    assert meta["truncated"] and f"{ROW_LIMIT:,}" in " ".join(meta["notes"])
    assert meta["pages"] > 1 and meta["first_page"] is None
    pages = [gateway.page("alice", meta, n).content for n in range(meta["pages"])]
    assert hashlib.sha256(b"".join(pages)).hexdigest() == meta["result_sha256"]
    entry = ledger.last("query", query_id=meta["query_id"])
    assert entry["details"]["rows"] == ROW_LIMIT and entry["details"]["truncated"] is True
    assert entry["details"]["pages"] == meta["pages"]
    assert gateway.page("bob", meta, 0).status_code == 404  # another user's result
    assert gateway.page("alice", meta, meta["pages"]).status_code == 404


# --- aggregate-only data: the gateway's group counts --------------------------------------------


def test_small_groups_are_suppressed_whatever_the_analyst_counts(gateway, ledger,
                                                                 direct) -> None:
    per_group = dict(direct.execute(
        "SELECT ethnicity, count(DISTINCT resident_id) FROM residents GROUP BY 1").fetchall())
    small = {k for k, v in per_group.items() if v < 10}
    assert small, "the synthetic data should have rare ethnic groups"
    for sql in ("SELECT ethnicity, count(*) AS n FROM residents GROUP BY ethnicity",
                "SELECT ethnicity, avg(birth_year) AS y FROM residents GROUP BY ethnicity",
                "SELECT ethnicity FROM residents GROUP BY ethnicity"):
        meta, table = gateway.rows("alice", sql)
        shown = set(table.column("ethnicity").to_pylist())
        assert shown == set(per_group) - small, sql
        assert meta["groups_suppressed"] == len(small)
        entry = ledger.last("query", query_id=meta["query_id"])
        assert entry["details"]["groups_suppressed"] == len(small)
        assert entry["details"]["min_group_size"] == {"residents": 10}


def test_group_size_counts_people_not_rows(gateway, direct) -> None:
    sql = ("SELECT r.district, s.payment_status, count(*) AS n FROM residents r "
           "JOIN social_insurance s ON r.resident_id = s.resident_id "
           "GROUP BY r.district, s.payment_status")
    _, table = gateway.rows("alice", sql)
    groups = direct.execute(
        "SELECT r.district, s.payment_status, count(*), count(DISTINCT r.resident_id) "
        "FROM residents r JOIN social_insurance s ON r.resident_id = s.resident_id "
        "GROUP BY 1, 2").fetchall()
    want = {(d, p, n) for d, p, n, people in groups if people >= 10}
    assert {(d, p, n) for d, p, n in zip(*(c.to_pylist() for c in table.columns))} == want
    assert any(n >= 10 and people < 10 for _, _, n, people in groups), \
        "some group should have ten rows but fewer than ten people"


def test_the_agreements_minimum_group_size_applies(gateway, direct) -> None:
    sql = "SELECT district, month, sum(usage_m3) AS m3 FROM water_use GROUP BY district, month"
    meta, table = gateway.rows("carol", sql)
    want = direct.execute(
        "SELECT district, month, sum(usage_m3) FROM water_use GROUP BY 1, 2 "
        "HAVING count(DISTINCT household_id) >= 25").fetchall()
    assert sorted(zip(*(c.to_pylist() for c in table.columns))) == sorted(want)
    assert meta["access_modes"] == {"water_use": "aggregate_only"}


def test_data_errors_on_aggregate_only_data_withhold_values(gateway) -> None:
    r = gateway.query("alice", "SELECT district, sum(CAST(birth_year AS TINYINT)) AS s "
                               "FROM residents GROUP BY district")
    assert r.status_code == 400 and r.json()["code"] == "query_failed"
    reason = r.json()["reason"]
    assert "withheld" in reason and not any(ch.isdigit() for ch in reason)


# --- limits, ledger and fail-closed -----------------------------------------------------------


def test_long_queries_are_interrupted_and_recorded(gateway, ledger) -> None:
    sql = "SELECT count(*) AS n FROM bus_trips a, bus_trips b, bus_trips c"
    r = gateway.query("alice", sql)
    assert r.status_code == 408 and r.json()["code"] == "query_timeout"
    assert f"{QUERY_TIMEOUT} s" in r.json()["reason"]
    entry = ledger.last("query", sql=sql)
    assert entry["details"]["outcome"] == "failed"
    assert entry["details"]["code"] == "query_timeout"


def test_each_query_is_in_the_ledger_before_its_result(gateway, ledger, hub_admin) -> None:
    token, token_id = hub_admin.create_token("alice", note="ledger test")
    sql = "SELECT industry, count(*) AS n FROM enterprises GROUP BY industry ORDER BY n DESC"
    r = gateway.query("alice", sql, token=token)
    assert r.status_code == 200
    meta = r.json()
    entry = ledger.entries()[meta["ledger_index"]]  # recorded before the response was sent
    assert entry["type"] == "query" and entry["actor"] == "alice"
    assert entry["session"] == token_id
    assert entry["authorization"] == meta["authorization"] and entry["dataset"] == "enterprises"
    d = entry["details"]
    assert d["sql"] == sql and d["query_id"] == meta["query_id"]
    assert d["datasets"] == ["enterprises"] and d["columns"] == {"enterprises": ["industry"]}
    assert d["rows"] == meta["rows"] and d["result_sha256"] == meta["result_sha256"]
    assert d["groups_suppressed"] == 0 and d["duration_ms"] > 0
    pages = [gateway.page("alice", meta, n).content for n in range(meta["pages"])]
    assert hashlib.sha256(b"".join(pages)).hexdigest() == d["result_sha256"]
    assert pa.ipc.open_stream(pages[0]).read_all().num_rows == meta["rows"]
    assert base64.b64decode(meta["first_page"]) == pages[0]  # small results come inline too


def test_no_result_when_the_ledger_cannot_record(gateway, world, ledger) -> None:
    db = world.settings.ledger_dir / "ledger.db"
    size_before = len(ledger.entries())
    con = sqlite3.connect(db, timeout=30)
    con.execute("CREATE TRIGGER refuse_writes BEFORE INSERT ON ledger_entries "
                "BEGIN SELECT RAISE(ABORT, 'disk refuses writes'); END")
    con.commit()
    try:
        r = gateway.query("alice", "SELECT industry, count(*) AS n FROM enterprises "
                                   "GROUP BY industry")
        assert r.status_code == 503 and r.json()["code"] == "ledger_unavailable"
        assert "query_id" not in r.json() and "withheld" in r.json()["reason"]
        r = gateway.query("alice", "SELECT * FROM read_csv('/etc/passwd')")
        assert r.status_code == 503 and r.json()["code"] == "ledger_unavailable"
    finally:
        con.execute("DROP TRIGGER refuse_writes")
        con.commit()
        con.close()
    assert len(ledger.entries()) == size_before
    assert gateway.query("alice", "SELECT count(*) AS n FROM enterprises").status_code == 200


def test_comments_never_reach_the_engine(gateway) -> None:
    """Comments are dropped from what runs: they cannot smuggle SQL or reserved names."""
    for sql in ('SELECT count(*) AS n FROM enterprises /* "__shuyu_src_0" */',
                "SELECT count(*) AS n -- */ , getenv('HOME') /*\nFROM enterprises"):
        meta, table = gateway.rows("alice", sql)
        assert table.column_names == ["n"] and meta["rows"] == 1


# --- datasets ---------------------------------------------------------------------------------


def test_datasets_lists_what_the_authorization_covers(gateway, world) -> None:
    r = gateway.get("alice", "datasets")
    assert r.status_code == 200
    by_name = {d["name"]: d for d in r.json()}
    assert set(by_name) == {"enterprises", "bus_trips", "residents", "social_insurance"}
    assert by_name["residents"]["grade_label"] == "重要"
    assert by_name["residents"]["access_mode"] == "aggregate_only"
    assert by_name["enterprises"]["access_mode"] == "row_level"
    assert by_name["enterprises"]["authorization"] == world.authorizations["row"]
    d = gateway.get("alice", "datasets/residents").json()
    cols = {c["name"]: c for c in d["columns"]}
    assert "name" not in cols and cols["resident_id"]["returned_as"] == "never"
    assert "sex" in d["dimensions"] and "resident_id" not in d["dimensions"]
    d = gateway.get("alice", "datasets/enterprises").json()
    assert {c["name"]: c["returned_as"] for c in d["columns"]}["credit_code"] == "pseudonym"
    assert d["row_limit"] == ROW_LIMIT
    r = gateway.get("alice", "datasets/water_use")
    assert r.status_code == 403 and r.json()["code"] == "no_authorization"
