"""A release through the whole system: from a notebook in a real sandbox to a verified package.

alice queries through the gateway and submits the result with ``shuyu.release.submit`` from the
kernel of her hardened sandbox (real Docker, internal network, host firewall); the review
service, run by the hub, quarantines and checks it; two reviewers approve it in headless
Chromium after logging in with the hub's form; alice downloads the package in her own browser
(outside the sandbox: the sandbox's token is refused); the package verifies offline with the
ledger's key, and stops verifying when one byte of the zip changes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from hub.accounts import ensure_account, hub_db_url
from tests.e2e.conftest import PASSWORD, Analyst, System
from tests.release_review.web_support import Chromium, download, login, vote

pytestmark = [pytest.mark.docker, pytest.mark.e2e, pytest.mark.browser]
SHUYU = str(Path(sys.executable).parent / "shuyu")

SUBMIT = """
import json, shuyu
df = shuyu.query("SELECT sex, count(*) AS people FROM residents GROUP BY sex")
r = shuyu.release.submit(df, title="端到端：户籍人口按性别", purpose="端到端测试",
                         context="counts by sex, from the sandbox")
print(json.dumps({"id": r.id, "status": r.status, "grade": r.grade,
                  "required": r.required_approvals, "datasets": r.datasets,
                  "checks": [[c["check"], c["verdict"]] for c in r.checks]}))
"""

SANDBOX_DOWNLOAD = """
import json, os, httpx
base = os.environ["SHUYU_REVIEW_URL"]
url = base + "releases/{id}/download"
token = os.environ["JUPYTERHUB_API_TOKEN"]
out = {{}}
with httpx.Client(trust_env=False, timeout=30) as http:
    out["header"] = http.get(url, headers={{"Authorization": "token " + token}}).status_code
with httpx.Client(trust_env=False, timeout=30, cookies={{"shuyu-review-session": token}}) as c:
    out["cookie"] = c.get(url).status_code
with httpx.Client(trust_env=False, timeout=30) as http:
    out["api"] = http.get(base + "api/requests/{id}",
                          headers={{"Authorization": "token " + token}}).json()["status"]
print(json.dumps(out))
"""


def second_reviewer(system: System, name: str = "rob") -> None:
    """A reviewer account made while the hub runs: user and group through the hub's API, the
    password as the operator's tool writes it."""
    with system.hub.admin() as admin:
        r = admin.post(f"users/{name}")
        assert r.status_code in (201, 409), r.text
        r = admin.post("groups/reviewers/users", json={"users": [name]})
        assert r.status_code == 200, r.text
    ensure_account(hub_db_url(system.world.data_dir), name, PASSWORD, ["reviewers"])


def test_a_release_from_a_sandbox_to_a_verified_package(system: System, alice: Analyst,
                                                        tmp_path: Path) -> None:
    submitted = alice.kernel.run_json(SUBMIT, timeout=300)
    request_id = submitted["id"]
    assert submitted["status"] == "checked", submitted
    assert submitted["datasets"] == ["residents"] and submitted["required"] == 2
    assert all(v == "pass" for _, v in submitted["checks"]), submitted["checks"]
    entry = system.entries_of("release.submitted", release=request_id)
    assert entry and entry[0]["actor"] == "alice"
    assert system.entries_of("release.checked", release=request_id)

    second_reviewer(system)
    review_url = f"{system.hub.public_url}/services/review/"
    browser = Chromium()  # Playwright's sync API holds this thread's event loop: the kernel
    try:                  # (asyncio) is driven only while no browser is open
        rita = login(browser.person(), review_url, "rita", PASSWORD)
        assert request_id in rita.inner_text("#queue")
        vote(rita, review_url, request_id, "approve", "计数均大于10，同意")
        assert rita.inner_text("#status") == "in_review"
        rob = login(browser.person(), review_url, "rob", PASSWORD)
        vote(rob, review_url, request_id, "approve", "同意发布")
        assert rob.inner_text("#status") == "released"
    finally:
        browser.close()

    from_sandbox = alice.kernel.run_json(SANDBOX_DOWNLOAD.format(id=request_id))
    assert from_sandbox == {"header": 403, "cookie": 403, "api": "released"}

    browser = Chromium()
    try:
        page = login(browser.person(), review_url, "alice", PASSWORD)
        data = download(page, review_url, request_id, tmp_path)
    finally:
        browser.close()
    assert data[:2] == b"PK"
    votes = system.entries_of("release.vote", release=request_id)
    assert [v["actor"] for v in votes] == ["rita", "rob"]
    assert system.entries_of("release.downloaded", release=request_id)[-1]["actor"] == "alice"

    package = tmp_path / "package.zip"
    package.write_bytes(data)
    vkey = (system.world.settings.ledger_dir / "ledger.vkey").read_text().strip()
    ok = subprocess.run([SHUYU, "release", "verify-package", str(package), "--vkey", vkey],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"OK: release {request_id}")
    flipped = bytearray(data)
    flipped[len(flipped) // 3] ^= 0x01
    bad = tmp_path / "tampered.zip"
    bad.write_bytes(bytes(flipped))
    refused = subprocess.run([SHUYU, "release", "verify-package", str(bad), "--vkey", vkey],
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "does not verify" in refused.stderr
    with httpx.Client(trust_env=False, timeout=30) as http:  # the proxy serves the service
        assert http.get(review_url + "health").json() == {"status": "ok"}
    manifest = json.loads(subprocess.run(
        [sys.executable, "-c", "import sys, zipfile; "
         "print(zipfile.ZipFile(sys.argv[1]).read('PROVENANCE.json').decode())", str(package)],
        capture_output=True, text=True, check=True).stdout)
    assert manifest["sources"][0]["dataset"] == "residents"
    assert manifest["authorization"]["id"] == system.world.authorizations["row"]
