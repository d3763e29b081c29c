"""The review service through a real hub and a real browser (Debian's Chromium, headless).

The hub runs the production config: it starts the gateway and the review service as managed
services and is the only identity provider. The analyst's client uses a token with exactly the
scopes of a sandbox server's token; reviewers and analysts use Chromium, logging in with the
hub's own form through hub OAuth. Every act is then looked up in the ledger.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Iterator

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from release_review.exceptions import PackageVerificationError
from release_review.package import verify_package
from shuyu.client import Client
from shuyu.errors import ShuyuError
from shuyu.release import ReleaseClient, ReleaseRefused
from tests.release_review.web_support import (
    PASSWORD,
    Chromium,
    ReviewSite,
    download,
    login,
    start_site,
    vote,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
BY_SEX = "SELECT sex, count(*) AS people FROM residents GROUP BY sex"
BY_DISTRICT = "SELECT district, count(*) AS people FROM residents GROUP BY district"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[ReviewSite]:
    running = start_site(tmp_path_factory.mktemp("review-site"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    browser = Chromium()
    yield browser
    browser.close()


def analyst(site: ReviewSite, user: str = "alice") -> tuple[Client, ReleaseClient]:
    token = site.sandbox_token(user)
    auth = site.world.authorizations["row"]
    return (site.keep(Client(site.public_url + "/services/gateway/", token, auth)),
            site.keep(ReleaseClient(site.review_url, token, auth)))


def png(path: Path) -> Path:
    """A chart with metadata (a text chunk naming its author), which must not be released."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Author", "alice@云数科技")
    Image.new("RGB", (40, 20), (30, 90, 160)).save(path, pnginfo=info)
    return path


@pytest.fixture(scope="module")
def submitted(site: ReviewSite, tmp_path_factory) -> dict:
    """alice's request: a DataFrame, a CSV and a chart to release, and a supporting note."""
    gateway, release = analyst(site)
    frame = gateway.query(BY_SEX)
    out = tmp_path_factory.mktemp("alice-files")
    csv = out / "by_district.csv"
    gateway.query(BY_DISTRICT, as_="pandas").to_csv(csv, index=False)
    note = out / "method.md"
    note.write_text("# 方法说明\n\n户籍人口按性别、区县计数。", encoding="utf-8")
    request = release.submit([("by_sex.parquet", frame), csv, png(out / "chart.png")],
                             supporting=[note], title="户籍人口按性别与区县",
                             purpose="年度报告附表", context="两张计数表和一张图")
    return {"id": request.id, "request": request, "release": release}


def test_the_client_submits_and_sees_every_check(site: ReviewSite, submitted: dict) -> None:
    request = submitted["request"]
    assert request.status == "checked", str(request)
    assert request.grade == "important" and request.required_approvals == 2
    assert request.datasets == ["residents"]
    names = {(f["name"], f["released"]) for f in request.files}
    assert names == {("by_sex.parquet", True), ("by_district.csv", True), ("chart.png", True),
                     ("method.md", False)}
    assert {c["check"] for c in request.checks} >= {"type_gate", "identifiers",
                                                     "min_cell_count", "differencing"}
    chart = next(f for f in request.files if f["name"] == "chart.png")
    assert chart["released_sha256"] and chart["released_sha256"] != chart["sha256"]
    entry = site.entries("release.submitted")[-1]
    assert entry["release"] == request.id and entry["actor"] == "alice"
    assert sorted(f["sha256"] for f in entry["details"]["files"]) == sorted(
        f["sha256"] for f in request.files)
    mine = submitted["release"].status()
    assert [r.id for r in mine] == [request.id]


def test_two_reviewers_approve_in_the_browser(site: ReviewSite, submitted: dict,
                                              chromium: Chromium, tmp_path: Path) -> None:
    request_id = submitted["id"]
    rita = login(chromium.person(), site.review_url, "rita")
    assert rita.url == site.review_url
    assert request_id in rita.inner_text("#queue")
    rita.goto(f"{site.review_url}requests/{request_id}")
    assert rita.inner_text("#status") == "checked"
    checks = rita.locator("tr.check")
    assert checks.count() >= 8
    assert "SELECT sex, count(*)" in rita.inner_text("#queries")
    assert "登记编码" in rita.inner_text("#sources")
    table = rita.locator("article[data-name='by_sex.parquet'] table.preview-table")
    assert "people" in table.inner_text()
    image = rita.locator("article[data-name='chart.png'] img.preview")
    assert image.evaluate("img => img.naturalWidth") == 40
    assert "方法说明" in rita.inner_text("article[data-name='method.md']")
    vote(rita, site.review_url, request_id, "approve", "计数均大于10")
    assert rita.inner_text("#status") == "in_review"
    assert "different reviewer" in rita.inner_text("#vote-refusal")
    assert rita.locator("#vote-form").count() == 0
    rob = login(chromium.person(), site.review_url, "rob")
    vote(rob, site.review_url, request_id, "approve", "同意")
    assert rob.inner_text("#status") == "released"
    kinds = [(e["type"], e["actor"]) for e in site.entries() if e.get("release") == request_id]
    for expected in [("release.viewed", "rita"), ("release.file_viewed", "rita"),
                     ("release.vote", "rita"), ("release.in_review", "rita"),
                     ("release.vote", "rob"), ("release.approved", "rob"),
                     ("release.released", "shuyu-review")]:
        assert expected in kinds, expected
    assert submitted["release"].get(request_id).status == "released"


def test_the_analyst_downloads_in_the_browser_and_the_package_verifies(
        site: ReviewSite, submitted: dict, chromium: Chromium, tmp_path: Path) -> None:
    request_id = submitted["id"]
    # depends on the two approvals of the previous test (module-scoped site): fail, never skip
    assert submitted["release"].get(request_id).status == "released", (
        "the request was not released by the previous test's approvals"
    )
    alice = login(chromium.person(), site.review_url, "alice")
    assert alice.url.endswith("/services/review/mine")
    data = download(alice, site.review_url, request_id, tmp_path)
    result = verify_package(data, site.vkey)
    assert sorted(f["name"] for f in result.files) == ["by_district.csv", "by_sex.parquet",
                                                       "chart.png"]
    assert site.entries("release.downloaded")[-1]["actor"] == "alice"
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0xFF
    with pytest.raises(PackageVerificationError):
        verify_package(bytes(flipped), site.vkey)


def test_the_sandbox_token_cannot_download(site: ReviewSite, submitted: dict) -> None:
    token = site.sandbox_token("alice")
    url = f"{site.review_url}releases/{submitted['id']}/download"
    with httpx.Client(trust_env=False, follow_redirects=False, timeout=30) as http:
        by_header = http.get(url, headers={"Authorization": f"token {token}"})
        assert by_header.status_code == 403 and b"PK" not in by_header.content[:2]
    with httpx.Client(trust_env=False, follow_redirects=False, timeout=30,
                      cookies={"shuyu-review-session": token}) as pasted:
        by_cookie = pasted.get(url)
        assert by_cookie.status_code == 403
        assert "access:services!service=review" in by_cookie.text
    with httpx.Client(trust_env=False, follow_redirects=False, timeout=30) as http:
        anonymous = http.get(url)
        assert anonymous.status_code == 302 and "/hub/api/oauth2/authorize" in \
            anonymous.headers["location"]
        api = http.get(f"{site.review_url}api/requests/{submitted['id']}",
                       headers={"Authorization": f"token {token}"})
        assert api.status_code == 200 and "zip" not in api.headers["content-type"]


def test_return_in_the_browser_then_the_author_resubmits(site: ReviewSite,
                                                         chromium: Chromium,
                                                         tmp_path: Path) -> None:
    gateway, release = analyst(site, "bob")
    frame = gateway.query("SELECT education, count(*) AS people FROM residents "
                          "GROUP BY education")
    request = release.submit(frame, title="学历分布", purpose="报告")
    assert request.status == "checked"
    rita = login(chromium.person(), site.review_url, "rita")
    vote(rita, site.review_url, request.id, "return", "请把计数四舍五入到5")
    assert rita.inner_text("#status") == "returned"
    seen = release.get(request.id)
    assert seen.status == "returned" and seen.votes[-1]["comment"] == "请把计数四舍五入到5"
    rounded = frame.assign(people=(frame["people"] / 5).round().astype(int) * 5)
    again = release.resubmit(request.id, ("education.parquet", rounded), note="rounded")
    assert again.status == "checked" and again.round == 2
    rita.goto(f"{site.review_url}requests/{request.id}")
    assert rita.locator("#vote-form").count() == 1  # a new round: rita may vote again


def test_people_in_other_roles_get_no_review_pages(site: ReviewSite, submitted: dict,
                                                   chromium: Chromium) -> None:
    page_url = f"{site.review_url}requests/{submitted['id']}"
    for user, why in (("alice", "not a reviewer"), ("eve", "separation of duties")):
        page = login(chromium.person(), page_url, user)
        response = page.goto(page_url)
        assert response.status == 403, (user, page.inner_text("body"))
        assert why in page.inner_text("#reason")
    # regulators hold no access to the service at all: the hub itself refuses the OAuth login
    reg = chromium.person()
    reg.goto(site.review_url)
    reg.fill("input[name=username]", "reg")
    reg.fill("input[name=password]", PASSWORD)
    with reg.expect_navigation():
        reg.click("input[type=submit], button[type=submit]")
    assert "/services/review/" not in reg.url.split("?")[0]
    assert "403" in reg.inner_text("body")
    assert not [e for e in site.entries("release.viewed") if e["actor"] in ("alice", "eve",
                                                                              "reg")]


def test_forms_need_the_session_token_and_pages_run_no_script(
        site: ReviewSite, chromium: Chromium) -> None:
    _, release = analyst(site, "bob")
    gateway, _ = analyst(site, "bob")
    request = release.submit(gateway.query(BY_SEX), title="性别", purpose="x")
    rita = login(chromium.person(), site.review_url, "rita")
    response = rita.goto(f"{site.review_url}requests/{request.id}")
    assert "script-src" not in response.headers["content-security-policy"]
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert rita.locator("script").count() == 0
    forged = rita.request.post(f"{site.review_url}requests/{request.id}/vote",
                               form={"decision": "approve", "comment": "x"})
    assert forged.status == 403
    assert release.get(request.id).votes == []


def test_client_errors_say_what_was_wrong(site: ReviewSite, tmp_path: Path) -> None:
    gateway, release = analyst(site)
    frame = gateway.query(BY_SEX)
    with pytest.raises(ShuyuError, match="not a type that can be released"):
        bad = tmp_path / "model.pkl"
        bad.write_bytes(b"\x80\x04")
        release.submit(bad, title="t", purpose="p")
    with pytest.raises(ReleaseRefused, match="purpose is required"):
        release.submit(frame, title="t", purpose=" ")
    with pytest.raises(ShuyuError, match="two files are named"):
        release.submit([("a.parquet", frame), ("a.parquet", frame)], title="t", purpose="p")
    plain = site.admin.create_token("alice", ["users:activity!user"], "no release")[0]
    with pytest.raises(ShuyuError, match="custom:shuyu:release"):
        site.keep(ReleaseClient(site.review_url, plain)).status()
    with pytest.raises(ShuyuError, match="not recognize"):
        site.keep(ReleaseClient(site.review_url, "not-a-token")).status()


def test_dp_statistics_through_the_client(site: ReviewSite) -> None:
    _, release = analyst(site)
    spec = {"dataset": "social_insurance", "group_by": ["payment_status"],
            "measures": [{"op": "count"}], "epsilon": 0.3, "max_rows_per_person": 12}
    result = release.dp(spec, title="缴费状态", purpose="DP 统计")
    assert result["spent"]["epsilon"] == 0.3 and result["rows"]
    assert all("ci95" in row for row in result["rows"])
    assert result["request"].status == "checked"
    assert result["budget"]["remaining_epsilon"] < result["budget"]["total_epsilon"]
    with pytest.raises(ReleaseRefused, match="budget"):
        release.dp({**spec, "epsilon": 5.0}, title="too much", purpose="x")


def test_parquet_from_a_frame_is_what_was_queried(site: ReviewSite, submitted: dict) -> None:
    gateway, release = analyst(site)
    detail = release.get(submitted["id"])
    sha = next(f["sha256"] for f in detail.files if f["name"] == "by_sex.parquet")
    table = pq.read_table(io.BytesIO(Path(site.world.data_dir / "quarantine" / sha[:2] / sha)
                                     .read_bytes()))
    assert table.num_rows == 2 and set(table.column_names) == {"sex", "people"}
    assert isinstance(table, pa.Table)
