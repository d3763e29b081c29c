"""Test data and small steps shared by the console's HTTP and browser tests."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tests.console.conftest import BrowserSession
from tests.gateway.world import World


def residents_csv(world: World, path: Path, encoding: str = "utf-8") -> Path:
    """The synthetic residents table as a CSV file, as a data holder would export it."""
    table = pq.read_table(world.source / "residents.parquet")
    table = pa.table([c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c
                      for c in table.columns], names=table.column_names)
    pacsv.write_csv(table, path)
    if encoding != "utf-8":
        path.write_bytes(path.read_text(encoding="utf-8").encode(encoding))
    return path


def upload(session: BrowserSession, path: Path, content_type: str = "text/csv") -> str:
    """Start an upload on the form page, send the file, wait for the analysis; the upload id."""
    page = session.get("datasets/new")
    page.raise_for_status()
    upload_id = re.search(r'action="/services/console/uploads/([0-9a-f]{32})"', page.text).group(1)
    csrf = re.search(r'name="_csrf" value="([^"]+)"', page.text).group(1)
    with open(path, "rb") as f:
        r = session.http.post(f"/services/console/uploads/{upload_id}", data={"_csrf": csrf},
                              files={"file": (path.name, f, content_type)})
    assert r.status_code == 200, r.text[:500]
    wait_analysed(session, upload_id)
    return upload_id


def wait_analysed(session: BrowserSession, upload_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = session.get(f"api/uploads/{upload_id}").json()
        if status["state"] in ("ready", "failed"):
            return status
        time.sleep(0.1)
    raise AssertionError(f"upload {upload_id} was not analysed within {timeout:.0f} s")


def registration_form(session: BrowserSession, upload_id: str, **fields: str) -> list:
    """The register form as the page offers it (suggestions kept), with `fields` filled in."""
    page = session.get(f"uploads/{upload_id}/register")
    page.raise_for_status()
    csrf = re.search(r'name="_csrf" value="([^"]+)"', page.text).group(1)
    names = re.findall(r'name="column_name" required value="([^"]*)"', page.text)
    classes = re.findall(r'<select name="column_class"[^>]*>.*?<option value="([a-z_]+)" '
                         r'selected>', page.text, re.S)
    checked = re.findall(r'name="column_group_by" value="(\d+)" checked', page.text)
    assert len(names) == len(classes), (names, classes)
    form = [("_csrf", csrf)] + [(k, v) for k, v in fields.items()]
    form += [("column_name", n) for n in names] + [("column_label", "") for _ in names]
    form += [("column_class", c) for c in classes] + [("column_group_by", g) for g in checked]
    return form
