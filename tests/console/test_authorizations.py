"""Operators, analyst accounts, authorizations and data requests through the console's forms,
and the end of an authorization: access ended, working volumes destroyed (real Docker)."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import docker
import httpx

from hub.catalog.enums import Role
from hub.catalog.events import Actor
from hub.catalog.states import AuthorizationStatus
from hub.console.volumes import SANDBOX_LABEL, work_volume_name
from tests.console.conftest import PREFIX, Account, BrowserSession, ledger_entries
from tests.gateway.hubprocess import RealHub
from tests.gateway.world import OPERATOR, World



def page(r: httpx.Response) -> str:
    """The response's text as a person reads it (entities decoded)."""
    return html.unescape(r.text)


def test_operator_form_explains_refusals_and_keeps_what_was_typed(
        session: BrowserSession, authority: Account) -> None:
    session.login(authority)
    csrf = session.csrf("operators")
    r = session.post("operators?lang=en", {"_csrf": csrf, "name": "滇中数据运营有限公司",
                                           "credit_code": "91350100M000100Y44"})
    assert r.status_code == 422
    assert "has check character '4', expected '3': it is mistyped" in page(r)
    assert 'value="滇中数据运营有限公司"' in page(r) and "Not done:" in page(r)
    r = session.post("operators", {"_csrf": csrf, "name": OPERATOR})
    assert r.status_code == 409 and "already exists" in page(r)
    r = session.post("operators", {"_csrf": csrf, "name": "滇中数据运营有限公司",
                                   "credit_code": "", "security_officer": "赵安全"})
    assert r.status_code == 200 and "Operator created." in page(r)  # the switch to English stuck
    assert "运营机构已创建" in page(session.get("operators?lang=zh&notice=operator_created"))


def test_new_analyst_gets_a_hub_account_with_a_password_shown_once(
        session: BrowserSession, authority: Account, console_hub: RealHub,
        console_world: World) -> None:
    session.login(authority)
    csrf = session.csrf("operators")
    r = session.post("analysts", {"_csrf": csrf, "user_name": "Bad Name", "operator": OPERATOR})
    assert r.status_code == 422 and "is not valid" in page(r)
    r = session.post("analysts", {"_csrf": csrf, "user_name": "xiao.ming", "operator": OPERATOR,
                                  "display_name": "小明"})
    assert r.status_code == 201, page(r)[:300]
    password = re.search(r'id="temporary-password">([^<]+)<', page(r)).group(1)
    assert len(password) == 16 and r.headers["cache-control"] == "no-store"
    # the password is in no ledger entry and no later page
    entries = ledger_entries(console_world)
    assert not any(password in str(e) for e in entries)
    created = [e for e in entries if e["type"] == "analyst.account_created"]
    assert created[-1]["details"]["user"] == "xiao.ming"
    assert created[-1]["details"]["groups"] == ["analysts"]
    assert password not in session.get("operators").text
    # the analyst logs in at the hub with it and is in the analysts group
    analyst = BrowserSession(console_hub)
    try:
        login_page = analyst.http.get("/hub/login")
        xsrf = next(c.value for c in analyst.http.cookies.jar if c.name == "_xsrf")
        r = analyst.http.post("/hub/login", data={"username": "xiao.ming", "password": password,
                                                  "_xsrf": xsrf}, follow_redirects=False)
        assert r.status_code == 302, login_page.text[:200]
        me = analyst.http.get("/hub/api/user", headers={"X-XSRFToken": xsrf})
        assert me.json()["name"] == "xiao.ming" and "analysts" in me.json()["groups"]
        # an analyst is not the authority: the console refuses them
        assert analyst.get("").status_code == 403
    finally:
        analyst.close()
    # a second account for the same analyst is refused, not silently reset
    r = session.post("analysts/account", {"_csrf": csrf, "user_name": "xiao.ming"})
    assert r.status_code == 502 and "already has a hub password" in page(r)


def _create(session: BrowserSession, csrf: str, **over: object) -> httpx.Response:
    form = {"_csrf": csrf, "operator": OPERATOR, "analysts": ["alice"],
            "datasets": ["enterprises"], "scenario": "企业经营分析", "use_class": "industry",
            "starts_at": "2026-01-01", "ends_at": "2027-12-31", "min_group_size": "10",
            "scope_dataset": ["enterprises", "residents", "bus_cards"],
            "scope_columns": ["", "", ""], "scope_mode": ["row_level", "aggregate_only",
                                                          "aggregate_only"],
            "scope_epsilon": ["1", "1", "1"]}
    form.update(over)
    return session.post("authorizations", form)


def test_authorization_rules_are_explained_on_the_form(session: BrowserSession,
                                                       authority: Account) -> None:
    session.login(authority)
    csrf = session.csrf("authorizations/new")
    r = _create(session, csrf, datasets=["bus_cards"])
    assert r.status_code == 409 and "不予开放" in page(r) and "cannot be authorized" in page(r)
    assert '>企业经营分析</textarea>' in page(r)  # what was typed is kept
    r = _create(session, csrf, datasets=["residents"],
                scope_mode=["row_level", "row_level", "aggregate_only"])
    assert r.status_code == 409 and "may only be authorized aggregate_only" in page(r)
    r = _create(session, csrf, ends_at="2031-06-30")
    assert r.status_code == 409 and "longer than 5 years" in page(r)
    r = _create(session, csrf, analysts=["erin"])
    assert r.status_code == 409 and "works for operator" in page(r)
    r = _create(session, csrf, scope_epsilon=["50", "1", "1"])
    assert r.status_code == 422 and "at most 20" in page(r)
    r = _create(session, csrf)
    assert r.status_code == 200 and "授权协议已创建" in page(r)


def test_change_term_scope_status_and_decide_requests(session: BrowserSession,
                                                      authority: Account,
                                                      console_world: World) -> None:
    session.login(authority)
    csrf = session.csrf("authorizations/new")
    r = _create(session, csrf, analysts=["carol"], scenario="用水与企业分布")
    auth_id = re.search(r"/authorizations/(auth-[0-9a-f]+)", str(r.url)).group(1)
    r = session.post(f"authorizations/{auth_id}/extend", {"_csrf": csrf, "ends_at": "2031-06-01",
                                                          "reason": "续期"})
    assert r.status_code == 409 and "longer than 5 years" in page(r)
    r = session.post(f"authorizations/{auth_id}/extend", {"_csrf": csrf, "ends_at": "2030-06-01",
                                                          "reason": "续期"})
    assert r.status_code == 200 and "授权已延期" in page(r)
    r = session.post(f"authorizations/{auth_id}/scope",
                     {"_csrf": csrf, "dataset": "water_use", "columns": "district, month",
                      "access_mode": "aggregate_only", "reason": "新增用水数据"})
    assert r.status_code == 200 and "授权范围已变更" in page(r)
    r = session.post(f"authorizations/{auth_id}/suspend", {"_csrf": csrf, "reason": "核查"})
    assert r.status_code == 200 and "已暂停" in page(r)
    r = session.post(f"authorizations/{auth_id}/resume", {"_csrf": csrf, "reason": "核查完毕"})
    assert r.status_code == 200 and "授权已恢复" in page(r)

    # an analyst asks for more; the authority approves one request and refuses another
    catalog, log = console_world.open_catalog()
    try:
        carol = Actor("carol", Role.ANALYST, "test")
        asked = catalog.create_data_request(carol, auth_id, "water_use", ["usage_m3"], "需要用水量")
        other = catalog.create_data_request(carol, auth_id, "electricity_use", [], "需要用电数据")
    finally:
        catalog.close()
        log.close()
    queue = session.get("requests")
    assert asked.id in page(queue) and "需要用水量" in page(queue)
    r = session.post(f"requests/{asked.id}/approve", {"_csrf": csrf, "reason": ""})
    assert r.status_code == 422 and "reason" in page(r)
    r = session.post(f"requests/{asked.id}/approve", {"_csrf": csrf, "reason": "同意"})
    assert r.status_code == 200 and "申请已批准" in page(r)
    r = session.post(f"requests/{other.id}/refuse", {"_csrf": csrf, "reason": "超出场景"})
    assert r.status_code == 200 and "申请已拒绝" in page(r)
    api = {a["id"]: a for a in session.get("api/authorizations").json()}
    water = next(s for s in api[auth_id]["scope"] if s["dataset"] == "water_use")
    assert water["columns"] == ["district", "month", "usage_m3"]
    r = session.post(f"requests/{asked.id}/refuse", {"_csrf": csrf, "reason": "改主意"})
    assert r.status_code == 409 and "approved" in page(r)


def _volume(client: docker.DockerClient, user: str, with_container: bool = False) -> str:
    name = work_volume_name(PREFIX, user)
    client.volumes.create(name)
    if with_container:
        image = client.images.list()[0]
        client.containers.create(image.id, command=["true"], name=f"{PREFIX}-sandbox-{user}",
                                 labels={SANDBOX_LABEL: "1"},
                                 volumes={name: {"bind": "/home/analyst", "mode": "rw"}})
    return name


def test_revocation_destroys_working_volumes_and_records_it(
        session: BrowserSession, authority: Account, console_world: World) -> None:
    client = docker.from_env()
    session.login(authority)
    csrf = session.csrf("authorizations/new")
    # frank works only under this agreement; bob also under `row` and `second`
    r = _create(session, csrf, analysts=["frank", "bob"], scenario="撤销测试")
    auth_id = re.search(r"/authorizations/(auth-[0-9a-f]+)", str(r.url)).group(1)
    frank = _volume(client, "frank", with_container=True)
    bob = _volume(client, "bob")
    before = len(ledger_entries(console_world))
    r = session.post(f"authorizations/{auth_id}/revoke", {"_csrf": csrf, "reason": "违规使用"})
    assert r.status_code == 200 and "授权已撤销，工作数据已销毁" in page(r)
    assert f"已销毁 frank 的工作卷 {frank}" in page(r)
    assert "保留 bob 的工作卷" in page(r)
    names = {v.name for v in client.volumes.list(filters={"name": PREFIX})}
    assert frank not in names and bob in names
    assert not client.containers.list(all=True, filters={"name": f"{PREFIX}-sandbox-frank"})
    entries = ledger_entries(console_world)[before:]
    kinds = [e["type"] for e in entries]
    assert kinds == ["authorization.revoked", "authorization.access_ended",
                     "authorization.data_destroyed"]
    plan, record = entries[1]["details"], entries[2]["details"]
    assert plan["destroy"] == [{"user": "frank", "volume": frank}]
    assert plan["keep"][0]["user"] == "bob"
    assert record["destroyed"][0]["volume"] == frank
    assert record["destroyed"][0]["containers_removed"] == [f"{PREFIX}-sandbox-frank"]
    assert record["failures"] == [] and entries[2]["authorization"] == auth_id
    # done once: the page offers nothing more, and asking again is refused
    r = session.post(f"authorizations/{auth_id}/destroy", {"_csrf": csrf})
    assert r.status_code == 409 and "already destroyed" in page(r)
    r = session.post(f"authorizations/{auth_id}/extend", {"_csrf": csrf, "ends_at": "2027-12-31",
                                                          "reason": "x"})
    assert r.status_code == 409 and "can no longer be changed" in page(r)
    client.volumes.get(bob).remove()
    client.close()


def test_expired_authorizations_are_swept(console_world: World) -> None:
    """The sweeper finds agreements whose term ended and destroys their analysts' data."""
    from hub.console.ending import EndOfAuthorization
    from hub.console.hubapi import HubApi
    from hub.console.storage import SqlEndingStore
    from hub.console.volumes import SandboxVolumes

    catalog, log = console_world.open_catalog()
    client = docker.from_env()
    try:
        now = catalog.now()
        authority = Actor("zhang.wei", Role.AUTHORITY, "test")
        catalog.add_analyst(authority, "gina.sweep", OPERATOR, "Gina")
        auth = catalog.create_authorization(
            authority, operator=OPERATOR, analysts=["gina.sweep"],
            scope=[__import__("hub.catalog.agreements", fromlist=["ScopeRequest"])
                   .ScopeRequest("enterprises")],
            scenario="到期测试", use_class="public_governance", starts_at=now - timedelta(days=2),
            ends_at=now + timedelta(days=1))
        volume = _volume(client, "gina.sweep")
        later = lambda: now + timedelta(days=3)  # noqa: E731
        store = SqlEndingStore(console_world.settings.control_database_url)
        hub = HubApi("http://127.0.0.1:9/hub/api", "unused-token-0123456789")
        ending = EndOfAuthorization(catalog, hub, SandboxVolumes(PREFIX), store, later)
        assert auth.id not in ending.due() or catalog.get_authorization(auth.id).effective_status(
            later()) is AuthorizationStatus.EXPIRED
        results = ending.sweep()
        # the hub is unreachable here: the sandbox cannot be confirmed stopped, so the volume
        # stays and the ending stays pending, recorded as such
        assert "sandbox not stopped" in results[auth.id].failures[0]
        assert store.get(auth.id).status == "pending"
        assert volume in {v.name for v in client.volumes.list(filters={"name": PREFIX})}
        store.close()
    finally:
        catalog.close()
        log.close()
        client.volumes.get(work_volume_name(PREFIX, "gina.sweep")).remove()
        client.close()
