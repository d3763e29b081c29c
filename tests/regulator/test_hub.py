"""The regulator console through a real JupyterHub: OAuth login, the regulator role, entries
for regulators only (the checkpoint, hash tiles and proofs open), cosigning over the proxy, and a suspension that reaches the gateway and the
watchdog."""

from __future__ import annotations

import os
import re
import subprocess
import httpx
import pytest

from hub.watchdog import HubServer, Watchdog
from ledger.entry import decode_entry
from ledger.log import Log
from tests.ledger.logfactory import SHUYU
from tests.regulator.hubsupport import form_token
from tests.regulator.support import History

CONSOLE = "/services/ledger/console"

pytestmark = pytest.mark.slow


def _entries(history: History) -> list[dict]:
    log = Log.open(history.config)
    try:
        return [decode_entry(bytes(d)) for _, d, _ in log.store.iter_entries()]
    finally:
        log.close()


def test_a_regulator_logs_in_through_the_hub_and_sees_the_explorer(person, rita) -> None:
    r = person.login(rita, f"{CONSOLE}/events?lang=en")
    assert r.status_code == 200, r.text[:400]
    assert str(r.url).endswith(f"{CONSOLE}/events?lang=en")
    assert '<strong id="user-name">rita</strong>' in r.text
    assert re.search(r'<tr id="event-\d+" class="ok"', r.text)
    cookie = next(c for c in person.http.cookies.jar if c.name == "shuyu-console-session")
    assert cookie.path == "/services/ledger" and cookie.has_nonstandard_attr("HttpOnly")


def test_without_a_session_the_console_sends_the_browser_to_the_hub(hub) -> None:
    with httpx.Client(base_url=hub.public_url, trust_env=False) as c:
        r = c.get(f"{CONSOLE}/events")
        assert r.status_code == 302
        assert r.headers["location"].startswith("/hub/api/oauth2/authorize?")
        assert "client_id=service-ledger" in r.headers["location"]
        assert "code_challenge_method=S256" in r.headers["location"]
        # what carries no entry content stays open to tools and witnesses
        assert c.get("/services/ledger/checkpoint").status_code == 200
        assert c.get("/services/ledger/api/v1/log").json()["origin"] == "shuyu.local/ledger"
        assert c.get("/services/ledger/tile/0/000.p/1").status_code == 200
        assert c.get("/services/ledger/api/v1/proofs/inclusion/0").status_code == 200
        # entries do not
        for path in ("api/v1/entries", "api/v1/entries/0", "tile/entries/000.p/1"):
            r = c.get(f"/services/ledger/{path}")
            assert r.status_code == 401, (path, r.text)
            assert "ledger entries are for regulators" in r.json()["detail"]


def test_entries_need_a_regulators_token(hub, admin, rita, carol, history) -> None:
    base = f"{hub.public_url}/services/ledger"
    regulator, _ = admin.create_token("rita")
    analyst, _ = admin.create_token("carol")
    with httpx.Client(base_url=base, trust_env=False) as c:
        for header in ("token", "Bearer"):
            r = c.get("/api/v1/entries?limit=2",
                      headers={"Authorization": f"{header} {regulator}"})
            assert r.status_code == 200, r.text
            assert len(r.json()["entries"]) == 2
        r = c.get("/tile/entries/000.p/1", headers={"Authorization": f"token {regulator}"})
        assert r.status_code == 200 and r.headers["cache-control"].startswith("private")
        r = c.get("/api/v1/entries/0", headers={"Authorization": f"token {analyst}"})
        assert r.status_code == 403
        assert "carol is not in the regulators group" in r.json()["detail"]
        r = c.get("/api/v1/entries/0", headers={"Authorization": "token not-a-token"})
        assert r.status_code == 401
    # the independent verifier over HTTP: refused without a token, whole with the regulator's
    refused = subprocess.run([*SHUYU, "ledger", "verify", "--url", base, "--vkey", history.vkey],
                             capture_output=True, text=True, env={**os.environ, "SHUYU_LEDGER_TOKEN": ""})
    assert refused.returncode != 0
    assert "401" in refused.stderr and "--token" in refused.stderr
    ok = subprocess.run([*SHUYU, "ledger", "verify", "--url", base, "--vkey", history.vkey],
                        capture_output=True, text=True,
                        env={**os.environ, "SHUYU_LEDGER_TOKEN": regulator})
    assert ok.returncode == 0, ok.stderr


def test_an_analyst_gets_a_clear_403(person, carol) -> None:
    r = person.login(carol, f"{CONSOLE}/events?lang=en")
    assert r.status_code == 403
    assert "carol is not in the regulators group (regulators)" in r.text
    assert "hash tiles and proofs" in r.text


def test_cosigning_over_the_proxy_shows_on_the_verification_page(hub, history, person, rita,
                                                                 tmp_path) -> None:
    env = {**os.environ, "SHUYU_DATA_DIR": str(history.world.data_dir)}
    wdir = tmp_path / "witness"
    init = subprocess.run([*SHUYU, "ledger", "witness", "init", "--witness-dir", str(wdir),
                           "--name", "regulator.example/rita", "--log-vkey", history.vkey],
                          capture_output=True, text=True, env=env)
    assert init.returncode == 0, init.stderr
    add = subprocess.run([*SHUYU, "ledger", "witness", "add-to-log", "--vkey",
                          init.stdout.strip()], capture_output=True, text=True, env=env)
    assert add.returncode == 0, add.stderr
    person.login(rita, f"{CONSOLE}/verification?lang=en")
    page = person.get(f"{CONSOLE}/verification?lang=en")
    command = re.search(r'<pre class="cmd" id="cosign-command">([^<]+)</pre>', page.text).group(1)
    url = command.split("--url ", 1)[1].strip()
    assert url == f"{hub.public_url}/services/ledger"
    cosign = subprocess.run([*SHUYU, "ledger", "witness", "cosign", "--witness-dir", str(wdir),
                             "--url", url], capture_output=True, text=True)
    assert cosign.returncode == 0, cosign.stderr
    saved = person.post(f"{CONSOLE}/verification/witness",
                        {"csrf": form_token(page.text), "witness": "regulator.example/rita"},
                        params={"lang": "en"})
    assert saved.status_code == 200
    assert re.search(r"regulator\.example/rita last cosigned tree size \d+ at ", saved.text)
    assert 'id="verify-status">✔' in saved.text


def test_suspension_is_ledgered_refused_by_the_gateway_and_reaches_the_watchdog(
        hub, history, person, rita, admin) -> None:
    auth = history.auth["agg"]  # carol's only agreement
    token, _ = admin.create_token("carol", note="sandbox")
    sql = {"sql": "SELECT count(*) AS n FROM enterprises", "authorization": auth}
    before = httpx.post(hub.gateway_url + "queries", json=sql, trust_env=False, timeout=60,
                        headers={"Authorization": f"token {token}"})
    assert before.status_code == 200, before.text
    person.login(rita, f"{CONSOLE}/authorizations?lang=en")
    listing = person.get(f"{CONSOLE}/authorizations?lang=en")
    link = re.search(rf'href="(/services/regulator/suspend\?authorization={auth})"',
                     listing.text).group(1)
    form = person.get(link + "&lang=en")
    assert form.status_code == 200 and f'value="{auth}"' in form.text
    short = person.post("/services/regulator/suspend",
                        {"csrf": form_token(form.text), "authorization": auth, "reason": "x"},
                        params={"lang": "en"})
    assert short.status_code == 400 and "give the reason" in short.text
    unknown = person.post("/services/regulator/suspend",
                          {"csrf": form_token(form.text), "authorization": "auth-nope",
                           "reason": "监管检查"}, params={"lang": "en"})
    assert unknown.status_code == 404 and "Not done" in unknown.text
    count = len(_entries(history))
    done = person.post("/services/regulator/suspend",
                       {"csrf": form_token(form.text), "authorization": auth,
                        "reason": "监管检查：数据使用超出场景"}, params={"lang": "en"})
    assert done.status_code == 200
    assert str(done.url).startswith(f"{hub.public_url}{CONSOLE}/authorizations")
    assert f"Authorization {auth} is suspended" in done.text
    new = _entries(history)[count:]
    (entry,) = [e for e in new if e["type"] == "authorization.suspended"]
    assert entry["actor"] == "rita" and entry["role"] == "regulator"
    assert entry["authorization"] == auth and entry["details"]["reason"] == "监管检查：数据使用超出场景"
    after = httpx.post(hub.gateway_url + "queries", json=sql, trust_env=False, timeout=60,
                       headers={"Authorization": f"token {token}"})
    assert after.status_code == 403 and "suspended" in after.text
    catalog, log = history.world.open_catalog()
    try:
        dog = Watchdog(catalog, book=None, hub=None, docker_client=None)
        reason = dog.why_not_allowed(HubServer("carol", ("analysts",), True, None))
        assert reason is not None and "suspended" in reason
    finally:
        catalog.close()
        log.close()
