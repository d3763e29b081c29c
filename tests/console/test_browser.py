"""The console in headless Chromium (Debian's, driven by Playwright), through the real hub.

A person logs in on the hub's page, lands in the console through hub OAuth, registers a
dataset (upload with the refreshing progress frame, suggested column classes, a refusal shown
on the form, then success), is refused an authorization that breaks the rules, and reads the
pages in Chinese and in English. Every step saves a screenshot in ``tests/output/console/``;
each is checked to be a real PNG of some size, and the text the person should see is checked
on the page itself. No JavaScript of the console's is involved: it ships none.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Iterator

import pytest

from tests.console.conftest import OUTPUT, Account
from tests.console.helpers import residents_csv
from tests.gateway.hubprocess import RealHub
from tests.gateway.world import World

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run deploy/bootstrap/browser.sh (make test does)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, console_hub: RealHub):  # type: ignore[no-untyped-def]
    context = chromium.new_context(base_url=console_hub.public_url, locale="zh-CN",
                                   viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    yield pg
    context.close()


def shot(page, name: str) -> Path:  # type: ignore[no-untyped-def]
    """A full-page screenshot, checked to be a PNG of real size."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 800 and height >= 300 and len(data) > 10_000, (path, width, height)
    return path


def login(page, account: Account) -> None:  # type: ignore[no-untyped-def]
    page.goto("/services/console/")
    assert "/hub/login" in page.url  # the console sent the browser to the hub
    page.fill("input[name=username]", account.name)
    page.fill("input[name=password]", account.password)
    page.click("#login_submit, input[type=submit], button[type=submit]")
    page.wait_for_url("**/services/console/")


def test_register_a_dataset_in_the_browser(page, authority: Account, console_world: World,
                                           tmp_path: Path) -> None:
    login(page, authority)
    assert page.get_by_role("heading", name="授权运营管理").is_visible()
    shot(page, "01-home-zh")

    page.get_by_role("link", name="登记数据集", exact=True).click()
    page.wait_for_url("**/datasets/new")
    assert page.get_by_text("选择 CSV").is_visible()
    csv = residents_csv(console_world, tmp_path / "户籍人口-浏览器.csv")
    page.set_input_files("input[type=file]", str(csv))
    page.get_by_role("button", name="上传", exact=True).click()
    status = page.frame_locator("iframe[name=upload-status]")
    status.get_by_text("继续：确认字段类别").wait_for(timeout=60_000)
    assert status.locator("progress").get_attribute("value") == "100"
    shot(page, "02-upload-done-zh")

    status.get_by_text("继续：确认字段类别").click()
    page.wait_for_url("**/register")
    row = page.locator("tr", has=page.locator("code", has_text="resident_id"))
    assert row.locator("select[name=column_class]").input_value() == "direct_identifier"
    assert row.get_by_text("检测到有效的公民身份号码").is_visible()
    page.fill("input[name=name]", "residents_web")
    page.fill("input[name=provider]", "昆明市公安局")
    page.select_option("select[name=open_attribute]", "conditional")
    page.fill("input[name=acquired_on]", "2026-02-01")
    page.fill("input[name=registration_code]", "530100-GS-2026-0777")
    # the browser's own check stops a missing grade; a group-by direct identifier is the
    # server's refusal, shown on the form
    page.select_option("select[name=grade]", "important")
    row.locator("input[name=column_group_by]").check()
    page.click("button:has-text('载入数据域并登记')")
    error = page.locator(".error")
    error.wait_for()
    assert "cannot be a group-by dimension" in error.inner_text()
    assert page.input_value("input[name=name]") == "residents_web"
    shot(page, "03-register-refused-zh")

    page.locator("tr", has=page.locator("code", has_text="resident_id")).locator(
        "input[name=column_group_by]").uncheck()
    page.click("button:has-text('载入数据域并登记')")
    page.wait_for_url("**/datasets/residents_web?notice=dataset_registered")
    assert page.get_by_text("数据集已载入数据域并登记。").is_visible()
    assert page.get_by_text("530100-GS-2026-0777").is_visible()
    shot(page, "04-registered-zh")

    page.goto("/services/console/datasets/residents_web?lang=en")
    assert page.get_by_role("heading", name="Columns").is_visible()
    assert page.get_by_text("direct identifier").first.is_visible()
    shot(page, "05-dataset-en")


def test_authorization_refusal_and_languages_in_the_browser(page, authority: Account) -> None:
    login(page, authority)
    page.goto("/services/console/authorizations/new?lang=en")
    assert page.get_by_role("heading", name="New authorization").is_visible()
    page.select_option("select[name=operator]", index=1)
    page.check("input[name=analysts][value=alice]")
    page.fill("textarea[name=scenario]", "Enterprise statistics")
    page.select_option("select[name=use_class]", "public_governance")
    page.fill("input[name=starts_at]", "2026-01-01")
    page.fill("input[name=ends_at]", "2032-01-01")
    page.check("input[name=datasets][value=enterprises]")
    page.click("button:has-text('Create authorization')")
    error = page.locator(".error")
    error.wait_for()
    assert "longer than 5 years" in error.inner_text()
    assert page.input_value("textarea[name=scenario]") == "Enterprise statistics"
    shot(page, "06-authorization-refused-en")

    page.fill("input[name=ends_at]", "2027-12-31")
    page.click("button:has-text('Create authorization')")
    page.wait_for_url("**notice=authorization_created")
    assert page.get_by_text("Authorization created.").is_visible()
    shot(page, "07-authorization-en")
    page.goto(page.url.split("?")[0] + "?lang=zh")
    assert page.get_by_role("heading", name="撤销").is_visible()
    assert page.get_by_text("生效中").first.is_visible()
    shot(page, "08-authorization-zh")

    for path, text in (("operators", "新建运营机构"), ("requests", "待处理")):
        page.goto(f"/services/console/{path}")
        assert page.get_by_role("heading", name=text).is_visible()
        shot(page, f"09-{path}-zh")
