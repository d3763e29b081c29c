"""The regulator console in headless Chromium, logged in through the real hub's login form.

Screenshots go to ``tests/output/regulator/`` (gitignored) and are checked, not just taken:
each is a real page of the expected size, and the status panels show in their colours (the
green of a passed check, the red of a failed one) where the page says they should.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pytest
from PIL import Image

from ledger.checkpoint import open_checkpoint
from ledger.console.verification import SEEN_COOKIE, Seen
from ledger.hashing import leaf_hash
from ledger.note import parse_vkey
from ledger.proofbundle import parse_tlog_proof
from ledger.proofs import verify_inclusion
from tests.regulator.support import DAYS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CONSOLE = "/services/ledger/console"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
GREEN_PANEL = (0xEE, 0xF9, 0xF0)
RED_PANEL = (0xFD, 0xEC, 0xEC)


def _share(img: Image.Image, rgb: tuple[int, int, int]) -> float:
    """Share of pixels of exactly this colour."""
    small = img.convert("RGB")
    hist = small.getcolors(maxcolors=1 << 20) or []
    total = small.width * small.height
    return sum(n for n, c in hist if c == rgb) / total


def _shot(page, out_dir: Path, name: str) -> Image.Image:
    path = out_dir / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    img = Image.open(path)
    assert img.width >= 1200 and img.height >= 300, (name, img.size)
    assert len(img.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 50, f"{name} looks blank"
    return img


@pytest.fixture(scope="module")
def browser_page(hub, rita) -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900},
                                      accept_downloads=True, locale="zh-CN")
        page = context.new_page()
        page.goto(f"{hub.public_url}/hub/login?next={CONSOLE}/events")
        page.fill("input[name=username]", rita.name)
        page.fill("input[name=password]", rita.password)
        page.click("input[type=submit], button[type=submit]")
        page.wait_for_url(re.compile(r".*/services/ledger/console/events.*"))
        yield page
        context.close()
        browser.close()


def test_explorer_in_both_languages(browser_page, out_dir) -> None:
    page = browser_page
    assert page.locator("h1").inner_text() == "账本浏览"
    assert page.locator("#user-name").inner_text() == "rita"
    assert page.locator("tr.ok .badge.ok").count() > 0
    assert page.locator("tr.bad").count() == 0
    _shot(page, out_dir, "explorer-zh")
    page.click("#lang-switch")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Ledger explorer"
    page.fill("#f-analyst", "alice")
    page.fill("#f-type", "query")
    page.click("#apply")
    page.wait_for_load_state()
    rows = page.locator("#events tbody tr")
    assert rows.count() > 0
    for i in range(rows.count()):
        assert rows.nth(i).locator("td").nth(3).inner_text() == "query"
    _shot(page, out_dir, "explorer-en-filtered")


def test_a_bad_filter_is_explained_on_the_page(browser_page, out_dir) -> None:
    page = browser_page
    page.goto(page.url.split("?")[0] + "?lang=en")
    page.fill("#f-since", "next tuesday")
    page.click("#apply")
    page.wait_for_load_state()
    alert = page.locator("#filter-errors")
    assert "must be YYYY-MM-DD" in alert.inner_text()
    assert page.locator("#f-since").get_attribute("aria-invalid") == "true"
    img = _shot(page, out_dir, "explorer-filter-error")
    assert _share(img, RED_PANEL) > 0.002


def test_event_page_and_its_proof_download(browser_page, out_dir, hub, history) -> None:
    page = browser_page
    page.goto(f"{hub.public_url}{CONSOLE}/events/{history.released_index}?lang=en")
    assert "Verified on the server" in page.locator("#proof-status").inner_text()
    img = _shot(page, out_dir, "event")
    assert _share(img, GREEN_PANEL) > 0.002
    with page.expect_download() as info:
        page.click("#download-proof")
    proof = parse_tlog_proof(Path(info.value.path()).read_text())
    with page.expect_download() as raw_info:
        page.click("#download-raw")
    raw = Path(raw_info.value.path()).read_bytes()
    cp, _ = open_checkpoint(proof.checkpoint, parse_vkey(history.vkey))
    verify_inclusion(leaf_hash(raw), history.released_index, cp.size, proof.hashes, cp.root)


def test_verification_green_then_red_after_a_fork(browser_page, out_dir, hub) -> None:
    page = browser_page
    page.goto(f"{hub.public_url}{CONSOLE}/verification?lang=en")
    assert "All checks passed" in page.locator("#verify-status").inner_text()
    img = _shot(page, out_dir, "verification-ok")
    assert _share(img, GREEN_PANEL) > 0.003 and _share(img, RED_PANEL) == 0
    cookie = next(c for c in page.context.cookies() if c["name"] == SEEN_COOKIE)
    seen = Seen.from_cookie(cookie["value"])
    forged = Seen(seen.size, bytes(32), seen.at).to_cookie()
    page.context.add_cookies([{**cookie, "value": forged}])
    page.goto(f"{hub.public_url}{CONSOLE}/verification?lang=en")
    status = page.locator("#verify-status").inner_text()
    assert "A check FAILED" in status and "forked" in status
    img = _shot(page, out_dir, "verification-red")
    assert _share(img, RED_PANEL) > 0.003


def test_activity_plots_and_disclosure_render(browser_page, out_dir, hub) -> None:
    page = browser_page
    page.goto(f"{hub.public_url}{CONSOLE}/activity?since={DAYS[0]}&until={DAYS[-1]}&lang=zh")
    assert page.locator("#plot-queries svg rect[fill]").count() > len(DAYS)
    box = page.locator("#plot-queries svg").bounding_box()
    assert box and box["width"] > 600 and box["height"] > 200
    _shot(page, out_dir, "activity-zh")
    page.goto(f"{hub.public_url}{CONSOLE}/disclosure?year={DAYS[0][:4]}&lang=zh")
    assert "年度信息披露" in page.locator("h1").inner_text()
    assert page.locator("table.disclosure tbody tr").count() >= 3
    _shot(page, out_dir, "disclosure-zh")
