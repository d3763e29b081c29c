"""The review service as people use it, for the web and end-to-end tests (no tests of its own).

``start_site`` builds a small real data domain (``tests.gateway.world``), makes hub accounts
with passwords exactly as ``make up`` does (``hub.accounts.ensure_account``), and starts a real
JupyterHub (``tests.gateway.hubprocess.RealHub``: the production config, so the hub itself runs
the gateway and the review service as managed services) on free loopback ports.

``Chromium`` drives Debian's Chromium (``/usr/bin/chromium``, installed by
``deploy/bootstrap/browser.sh``) headless through Playwright for Python; ``login`` fills in the
hub's login form the way a person does, after the review service sent the browser through hub
OAuth. Each person gets a browser context of their own (their own cookies).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx

from hub.accounts import ensure_account, hub_db_url
from ledger.cli import log_config
from ledger.entry import decode_entry
from ledger.log import Log
from tests.gateway.hubprocess import HubAdmin, RealHub, free_ports
from tests.gateway.world import World, build_world

PASSWORD = "review-web-Passw0rd"
ACCOUNTS = {"alice": ["analysts"], "bob": ["analysts"], "carol": ["analysts"],
            "rita": ["reviewers"], "rob": ["reviewers"], "reg": ["regulators"],
            "eve": ["analysts"]}
# eve is also put in "reviewers" through the hub's admin API once the hub runs: the account tool
# refuses two hats (DESIGN.md), so this stands for an admin's mistake the review service must
# still refuse on its own (separation of duties checked in the service, not only at sign-up).
TWO_HATS = {"eve": "reviewers"}
SANDBOX_SCOPES = ["users:activity!user", "custom:shuyu:query", "custom:shuyu:release"]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
READY_TIMEOUT = 90.0


@dataclass
class ReviewSite:
    world: World
    hub: RealHub
    admin: HubAdmin
    sandbox_tokens: dict[str, str] = field(default_factory=dict)
    clients: list[Any] = field(default_factory=list)  # closed with the site

    def keep(self, client: Any) -> Any:
        self.clients.append(client)
        return client

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        self.admin.close()
        self.hub.stop()

    @property
    def public_url(self) -> str:
        return self.hub.public_url

    @property
    def review_url(self) -> str:
        return f"{self.hub.public_url}/services/review/"

    @property
    def vkey(self) -> str:
        return (self.world.settings.ledger_dir / "ledger.vkey").read_text().strip()

    def sandbox_token(self, user: str) -> str:
        """A token with exactly the scopes of a sandbox server's token."""
        if user not in self.sandbox_tokens:
            self.sandbox_tokens[user] = self.admin.create_token(user, SANDBOX_SCOPES,
                                                                "sandbox")[0]
        return self.sandbox_tokens[user]

    def entries(self, kind: str | None = None) -> list[dict[str, Any]]:
        log = Log.open(log_config(self.world.settings))
        try:
            found = [decode_entry(bytes(d)) for _, d, _ in log.store.iter_entries()]
        finally:
            log.close()
        return [e for e in found if kind is None or e["type"] == kind]

    def review_log(self) -> str:
        return self.hub.log_tail(120)


def start_site(directory: Path, scale: int = 1000) -> ReviewSite:
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("SHUYU_")}
    try:
        world = build_world(directory, scale=scale)
    finally:
        os.environ.update(saved)
    for name, groups in ACCOUNTS.items():
        ensure_account(hub_db_url(world.data_dir), name, PASSWORD, groups)
    review_port, = free_ports(1)
    hub = RealHub.start(world.data_dir, {
        "SHUYU_REVIEW_PORT": str(review_port), "SHUYU_HUB_SANDBOXES": "off",
        "SHUYU_LEDGER__BATCH_MAX_AGE_MS": "0", "SHUYU_REVIEW_CHECK_SWEEP_SECONDS": "2",
        "SHUYU_REVIEW_AUTH_CACHE_SECONDS": "0", "SHUYU_GATEWAY_AUTH_CACHE_SECONDS": "0",
    })
    try:
        wait_for(f"{hub.public_url}/services/review/health", hub)
        admin = hub.admin()
        for name, group in TWO_HATS.items():
            admin.add_to_group(group, name)
    except BaseException:
        hub.stop()
        raise
    return ReviewSite(world, hub, admin)


def wait_for(url: str, hub: RealHub, timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=3.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s:\n{hub.log_tail(120)}")


class Chromium:
    """Headless Chromium through Playwright; one context (cookie jar) per person."""

    def __init__(self) -> None:
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

    def person(self) -> Any:
        context = self.browser.new_context(accept_downloads=True, locale="zh-CN")
        context.set_default_timeout(30_000)
        return context.new_page()

    def close(self) -> None:
        self.browser.close()
        self._pw.stop()


def login(page: Any, url: str, user: str, password: str = PASSWORD) -> Any:
    """Open `url`; if the hub asks, log in with its form; return the page where it led."""
    page.goto(url)
    if "/hub/login" in page.url:
        page.fill("input[name=username]", user)
        page.fill("input[name=password]", password)
        with page.expect_navigation():
            page.click("input[type=submit], button[type=submit]")
    return page


def vote(page: Any, review_url: str, request_id: str, decision: str, comment: str) -> Any:
    page.goto(f"{review_url}requests/{request_id}")
    page.check(f"#decision-{decision}")
    page.fill("#comment", comment)
    with page.expect_navigation():
        page.click("#vote-submit")
    return page


def download(page: Any, review_url: str, request_id: str, into: Path) -> bytes:
    page.goto(f"{review_url}mine")
    with page.expect_download() as info:
        page.click(f"#download-{request_id}")
    path = into / info.value.suggested_filename
    info.value.save_as(path)
    return path.read_bytes()


def sessions(site: ReviewSite) -> Iterator[Chromium]:
    browser = Chromium()
    try:
        yield browser
    finally:
        browser.close()
