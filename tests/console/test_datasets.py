"""Registering datasets through the console (real hub, real ledger, real domain store)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pyarrow.parquet as pq

from hub.domain import DomainReader, open_readonly
from tests.console.conftest import Account, BrowserSession, ledger_entries
from tests.console.helpers import registration_form, residents_csv, upload, wait_analysed
from tests.gateway.hubprocess import HubAdmin, RealHub
from tests.gateway.world import World

GOOD = dict(title="户籍人口（测试登记）", provider="昆明市公安局", grade="important",
            open_attribute="conditional", registration_code="530100-GS-2026-0901",
            acquired_on="2026-01-15", update_frequency="monthly")


def domain_rows(world: World, table: str) -> int:
    con = open_readonly(world.settings.domain_dir)
    try:
        return con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
    finally:
        con.close()


def test_register_a_csv_dataset_end_to_end(session: BrowserSession, authority: Account,
                                           console_world: World, tmp_path: Path) -> None:
    session.login(authority)
    csv = residents_csv(console_world, tmp_path / "户籍人口.csv", encoding="gb18030")
    upload_id = upload(session, csv)
    status = session.get(f"api/uploads/{upload_id}").json()
    assert status["state"] == "ready" and status["rows"] == 300 and status["percent"] == 100
    page = session.get(f"uploads/{upload_id}/register").text
    # suggestions from the release review's detectors and the names, with their reasons
    assert re.search(r'value="resident_id".*?<option value="direct_identifier" selected>', page,
                     re.S)
    assert "检测到有效的公民身份号码（300 个单元格）" in page
    assert "检测到有效的手机号码" in page

    # refused: no grade, a bad name; what was typed stays on the form, nothing is stored
    before = len(ledger_entries(console_world))
    bad = registration_form(session, upload_id, **{**GOOD, "grade": "", "name": "residents_2"})
    r = session.post(f"uploads/{upload_id}/register", bad)
    assert r.status_code == 422
    assert "grade (数据分级) is required" in r.text and 'value="residents_2"' in r.text
    bad = registration_form(session, upload_id, **{**GOOD, "name": "Residents 2"})
    r = session.post(f"uploads/{upload_id}/register", bad)
    assert r.status_code == 422 and "is not valid" in r.text
    taken = registration_form(session, upload_id, **{**GOOD, "name": "residents"})
    r = session.post(f"uploads/{upload_id}/register", taken)
    assert r.status_code == 409 and "registered already" in r.text
    # a direct identifier cannot be a group-by dimension
    form = registration_form(session, upload_id, **{**GOOD, "name": "residents_2"})
    form.append(("column_group_by", "0"))
    r = session.post(f"uploads/{upload_id}/register", form)
    assert r.status_code == 422 and "cannot be a group-by dimension" in r.text
    assert len(ledger_entries(console_world)) == before

    form = registration_form(session, upload_id, **{**GOOD, "name": "residents_2"})
    r = session.post(f"uploads/{upload_id}/register", form)
    assert r.status_code == 200 and str(r.url).endswith("/datasets/residents_2?notice="
                                                        "dataset_registered")
    assert "数据集已载入数据域并登记" in r.text and "530100-GS-2026-0901" in r.text
    assert domain_rows(console_world, "residents_2") == 300
    entries = ledger_entries(console_world)[before:]
    kinds = [e["type"] for e in entries]
    assert kinds.index("dataset.loaded") < kinds.index("dataset.registered")
    registered = next(e for e in entries if e["type"] == "dataset.registered")
    assert registered["actor"] == "zhang.wei" and registered["role"] == "authority"
    classes = {c["name"]: c["identifier_class"] for c in registered["details"]["columns"]}
    assert classes["resident_id"] == classes["mobile"] == classes["household_id"] == \
        "direct_identifier"
    assert classes["sex"] == "quasi_identifier"
    loaded = next(e for e in entries if e["type"] == "dataset.loaded")
    assert loaded["actor"] == "zhang.wei" and loaded["details"]["rows"] == 300
    assert loaded["details"]["uploaded_file"] == "户籍人口.csv"
    # the registered upload's files are gone; registering it again is refused
    again = session.post(f"uploads/{upload_id}/register", form)
    assert again.status_code == 409 and "registered" in again.text


def test_registering_while_the_gateway_and_a_reader_hold_the_store(
        session: BrowserSession, authority: Account, console_world: World,
        console_hub: RealHub, console_admin: HubAdmin) -> None:
    """Issue 6 on a running system: the hub's gateway has answered a query (so it holds the
    domain store open) and a reader in this process is in the middle of a query while the
    authority registers a dataset; both carry on, and see the new state on their next use."""
    console_admin.create_user("alice")
    console_admin.add_to_group("analysts", "alice")
    token, _ = console_admin.create_token("alice", note="console test")
    query = {"sql": "SELECT industry, count(*) AS n FROM enterprises GROUP BY industry "
                    "ORDER BY industry", "authorization": console_world.authorizations["row"]}
    gateway = httpx.Client(base_url=console_hub.gateway_url, timeout=60.0, trust_env=False,
                           headers={"Authorization": f"token {token}"})
    reader = DomainReader(console_world.settings.domain_dir, memory_limit="256MB", threads=1)
    try:
        first = gateway.post("queries", json=query)
        assert first.status_code == 200, first.text
        with reader.snapshot() as before:
            cursor = before.cursor()
            running = cursor.sql("SELECT * FROM residents").to_arrow_reader(100)
            got = running.read_next_batch().num_rows
            session.login(authority)
            upload_id = upload(session, console_world.source / "water_use.parquet",
                               "application/octet-stream")
            form = registration_form(session, upload_id, **{
                **GOOD, "name": "water_use_live", "title": "用水（运行中登记）",
                "registration_code": "530100-GS-2026-0903"})
            r = session.post(f"uploads/{upload_id}/register", form)
            assert r.status_code == 200 and "数据集已载入数据域并登记" in r.text, r.text[:2000]
            got += sum(batch.num_rows for batch in running)  # finished on its own state
            assert got == domain_rows(console_world, "residents")
            assert "water_use_live" not in before.datasets
            cursor.close()
        with reader.cursor() as cur:  # the next use sees the registered dataset
            assert cur.execute("SELECT count(*) FROM water_use_live").fetchone()[0] == \
                pq.ParquetFile(console_world.source / "water_use.parquet").metadata.num_rows
        again = gateway.post("queries", json=query)  # the gateway moved on and still answers
        assert again.status_code == 200, again.text
        assert again.json()["result_sha256"] == first.json()["result_sha256"]
    finally:
        reader.close()
        gateway.close()
    loaded = [e for e in ledger_entries(console_world) if e["type"] == "dataset.loaded"]
    assert loaded[-1]["dataset"] == "water_use_live" and loaded[-1]["actor"] == "zhang.wei"


def test_parquet_upload_and_refused_files(session: BrowserSession, authority: Account,
                                          console_world: World, tmp_path: Path) -> None:
    session.login(authority)
    upload_id = upload(session, console_world.source / "water_use.parquet",
                       "application/octet-stream")
    assert session.get(f"api/uploads/{upload_id}").json()["state"] == "ready"
    junk = tmp_path / "notes.docx"
    junk.write_bytes(b"PK\x03\x04 not a table")
    page = session.get("datasets/new").text
    bad_id = re.search(r"uploads/([0-9a-f]{32})", page).group(1)
    csrf = re.search(r'name="_csrf" value="([^"]+)"', page).group(1)
    with open(junk, "rb") as f:
        session.http.post(f"/services/console/uploads/{bad_id}", data={"_csrf": csrf},
                          files={"file": (junk.name, f, "application/octet-stream")})
    status = wait_analysed(session, bad_id)
    assert status["state"] == "failed" and "neither a Parquet file nor a .csv" in status["error"]
    frame = session.get(f"uploads/{bad_id}?frame=1&lang=en").text
    assert "Failed" in frame and "neither a Parquet file" in frame
    # a file sent without the form's token is refused before it is written
    page = session.get("datasets/new").text
    third = re.search(r"uploads/([0-9a-f]{32})", page).group(1)
    r = session.http.post(f"/services/console/uploads/{third}", data={"_csrf": "forged"},
                          files={"file": ("x.csv", b"a,b\n1,2\n", "text/csv")})
    assert r.status_code == 403
    assert session.get(f"api/uploads/{third}").json()["state"] == "failed"


def test_upload_progress_is_reported_while_the_body_arrives(
        session: BrowserSession, authority: Account, console_world: World,
        tmp_path: Path) -> None:
    """The status endpoint counts bytes as they arrive: half the body sent, half reported."""
    import threading

    session.login(authority)
    page = session.get("datasets/new").text
    upload_id = re.search(r"uploads/([0-9a-f]{32})", page).group(1)
    csrf = re.search(r'name="_csrf" value="([^"]+)"', page).group(1)
    boundary = "shuyuTestBoundary"
    payload = b"x,y\n" + b"".join(f"{i},{i * 7}\n".encode() for i in range(200_000))
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n{csrf}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"big.csv\"\r\nContent-Type: text/csv\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    body = head + payload + tail
    half = len(body) // 2
    release = threading.Event()

    def chunks():
        yield body[:half]
        release.wait(60)
        yield body[half:]

    result: dict = {}

    def send() -> None:
        result["r"] = session.http.post(
            f"/services/console/uploads/{upload_id}", content=chunks(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}",
                     "Content-Length": str(len(body))})

    sender = threading.Thread(target=send)
    sender.start()
    try:
        import time

        seen = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            seen = session.get(f"api/uploads/{upload_id}").json()
            if seen["received"] >= half:
                break
            time.sleep(0.05)
        assert seen["state"] == "receiving" and seen["expected"] == len(body)
        assert seen["received"] == half and 45 <= seen["percent"] <= 55
        frame = session.get(f"uploads/{upload_id}?frame=1").text
        assert '<meta http-equiv="refresh" content="1">' in frame
        assert f'<progress max="{len(body)}" value="{half}">' in frame
    finally:
        release.set()
        sender.join(60)
    assert result["r"].status_code == 200
    done = wait_analysed(session, upload_id)
    assert done["state"] == "ready" and done["rows"] == 200_000 and done["size"] == len(payload)
