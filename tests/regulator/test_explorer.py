"""The ledger explorer and the subject index, on a real history written by the platform's code."""

from __future__ import annotations

import re

import pytest

from ledger.entry import decode_entry
from ledger.index import EventFilter, SubjectIndex, find_entries
from ledger.log import Log
from ledger.note import unb64
from ledger.proofbundle import parse_tlog_proof
from ledger.proofs import verify_inclusion
from ledger.hashing import leaf_hash
from tests.regulator.support import DAYS, operator_name


def _all_entries(history) -> list[dict]:
    log = Log.open(history.config)
    try:
        return [decode_entry(d) for _, d, _ in log.store.iter_entries()]
    finally:
        log.close()


def _names_alice(e: dict) -> bool:
    details = e.get("details") or {}
    return (e.get("actor") == "alice" and e.get("role") == "analyst"
            or "alice" in details.get("analysts", [])
            or e["type"].startswith("analyst.") and details.get("user_name") == "alice")


def _expected(history, pred) -> list[int]:
    return sorted((i for i, e in enumerate(_all_entries(history)) if pred(e)), reverse=True)


@pytest.mark.parametrize("flt, pred", [
    (EventFilter(analyst="alice"), _names_alice),
    (EventFilter(type="query.denied"), lambda e: e["type"] == "query.denied"),
    (EventFilter(type="release.*"), lambda e: e["type"].startswith("release.")),
    (EventFilter(since=f"{DAYS[1]}T00:00:00.000Z", until=f"{DAYS[2]}T00:00:00.000Z"),
     lambda e: DAYS[1] <= e["at"][:10] < DAYS[2]),
    (EventFilter(dataset="water_use", type="query"), lambda e: False),
])
def test_filters_match_a_scan_of_the_decoded_entries(history, flt, pred) -> None:
    index = SubjectIndex(history.config.database_url)
    try:
        log = Log.open(history.config)
        size = log.store.head().size
        log.close()
        index.catch_up(size)
        assert find_entries(index.reader, flt, size, None, 10_000) == _expected(history, pred)
    finally:
        index.close()


def test_operator_filter_finds_queries_through_their_authorization(history) -> None:
    """A query names only its authorization; the operator comes from authorization.created."""
    auths = set(history.auth.values())
    want = _expected(history, lambda e: e.get("operator") == operator_name()
                     or e.get("authorization") in auths)
    index = SubjectIndex(history.config.database_url)
    try:
        index.catch_up(len(_all_entries(history)))
        got = find_entries(index.reader, EventFilter(operator=operator_name()),
                           len(_all_entries(history)), None, 10_000)
        assert got == want
        assert index.check(0, len(_all_entries(history))) == []
    finally:
        index.close()


def test_index_check_finds_a_deleted_index_row(history) -> None:
    from sqlalchemy import text

    index = SubjectIndex(history.config.database_url)
    n = len(_all_entries(history))
    try:
        index.catch_up(n)
        with index.writer.begin() as conn:
            row = conn.execute(text("SELECT key, value, idx FROM ledger_subjects WHERE "
                                    "key = 'analyst' AND value = 'bob' LIMIT 1")).first()
            conn.execute(text("DELETE FROM ledger_subjects WHERE key = :k AND value = :v AND "
                              "idx = :i"), {"k": row[0], "v": row[1], "i": row[2]})
        diffs = index.check(0, n)
        assert [(d.index, d.missing) for d in diffs] == [(row[2], [("analyst", "bob")])]
        index.rebuild()
        index.catch_up(n)
        assert index.check(0, n) == []
    finally:
        index.close()


def test_explorer_page_lists_verified_events_and_pages_through_them(client, history) -> None:
    r = client.get("/console/events", params={"analyst": "alice", "limit": 5})
    assert r.status_code == 200, r.text
    rows = re.findall(r'<tr id="event-(\d+)" class="(ok|bad)"', r.text)
    assert len(rows) == 5 and all(c == "ok" for _, c in rows)
    want = _expected(history, _names_alice)
    assert [int(i) for i, _ in rows] == want[:5]
    older = re.search(r'href="([^"]+)" id="older"', r.text).group(1).replace("&amp;", "&")
    r2 = client.get(older)
    rows2 = [int(i) for i, _ in re.findall(r'<tr id="event-(\d+)" class="(ok|bad)"', r2.text)]
    assert rows2 == want[5:10]


def test_bad_filter_is_refused_with_reasons_and_nothing_listed(client) -> None:
    r = client.get("/console/events", params={"since": "yesterday", "type": "Query!",
                                              "lang": "en"})
    assert r.status_code == 400
    assert 'id="filter-errors"' in r.text and "<tr id=\"event-" not in r.text
    assert "must be YYYY-MM-DD" in r.text and "dotted lowercase" in r.text
    zh = client.get("/console/events", params={"since": "昨天", "lang": "zh"})
    assert zh.status_code == 400 and "应为 YYYY-MM-DD" in zh.text


def test_event_page_shows_entry_and_offline_proof_verifies(client, history) -> None:
    i = history.released_index
    r = client.get(f"/console/events/{i}", params={"lang": "en"})
    assert r.status_code == 200
    assert 'class="panel ok" id="proof-status"' in r.text
    assert "release.released" in r.text and "企业统计.csv" in r.text
    raw = client.get(f"/console/events/{i}/raw").content
    proof = parse_tlog_proof(client.get(f"/api/v1/proofs/inclusion/{i}/tlog-proof").text)
    from ledger.checkpoint import open_checkpoint
    from ledger.note import parse_vkey

    cp, _ = open_checkpoint(proof.checkpoint, parse_vkey(history.vkey))
    verify_inclusion(leaf_hash(raw), i, cp.size, proof.hashes, cp.root)
    assert unb64(re.search(r"<dd class=\"mono\">([A-Za-z0-9+/=]{44})</dd>", r.text).group(1),
                 "leaf") == leaf_hash(raw)


def test_event_beyond_the_tree_is_a_clear_404(client) -> None:
    r = client.get("/console/events/999999", params={"lang": "en"})
    assert r.status_code == 404 and "is not in the signed tree" in r.text


def test_altered_entry_shows_a_red_badge(history, tmp_path, monkeypatch) -> None:
    """Change one stored byte of an entry (in a copy of the database): the row turns red."""
    import shutil
    import sqlite3
    from contextlib import closing
    from dataclasses import replace

    from tests.regulator.support import console_app, regulator_client

    src = history.config.ledger_dir
    dst = tmp_path / "copy" / "ledger"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("sequencer.*"))
    cfg = replace(history.config, ledger_dir=dst, database_url=f"sqlite:///{dst / 'ledger.db'}")
    with closing(sqlite3.connect(dst / "ledger.db")) as db:
        data = db.execute("SELECT data FROM ledger_entries WHERE idx = ?",
                          (history.released_index,)).fetchone()[0]
        db.execute("UPDATE ledger_entries SET data = ? WHERE idx = ?",
                   (data.replace(b"rel-1", b"rel-9"), history.released_index))
        db.commit()
    altered = replace(history, config=cfg)
    with regulator_client(console_app(altered, monkeypatch)) as c:
        r = c.get("/console/events", params={"type": "release.released", "lang": "en"})
        assert f'<tr id="event-{history.released_index}" class="bad"' in r.text
        page = c.get(f"/console/events/{history.released_index}", params={"lang": "en"})
        assert 'class="panel bad"' in page.text and "leaf hash" in page.text
