"""Hub OAuth against a real JupyterHub: who may use the console, and what everyone else sees."""

from __future__ import annotations

import pytest

from tests.console.conftest import Account, BrowserSession
from tests.gateway.hubprocess import HubAdmin, RealHub


def test_authority_logs_in_through_the_hub_and_sees_the_console(
        session: BrowserSession, authority: Account) -> None:
    r = session.login(authority)
    assert r.status_code == 200, r.text[:500]
    assert str(r.url).endswith("/services/console/")
    assert "授权运营管理" in r.text and "zhang.wei" in r.text
    cookie = next(c for c in session.http.cookies.jar if c.name == "shuyu-console-session")
    assert cookie.path == "/services/console/" and cookie.has_nonstandard_attr("HttpOnly")


def test_no_session_is_sent_to_the_hub_login(console_hub: RealHub) -> None:
    s = BrowserSession(console_hub)
    try:
        r = s.get("datasets", follow_redirects=False)
        assert r.status_code == 302
        assert "/hub/api/oauth2/authorize" in r.headers["location"]
        assert "client_id=service-console" in r.headers["location"]
        api = s.get("api/datasets")
        assert api.status_code == 401 and api.json()["code"] == "not_authenticated"
    finally:
        s.close()


def test_someone_outside_the_authority_group_is_refused(
        session: BrowserSession, outsider: Account) -> None:
    r = session.login(outsider)
    assert r.status_code == 403
    assert "console" in r.text.lower()
    assert session.get("api/datasets").status_code == 401


def test_removal_from_the_authority_group_takes_effect_on_the_next_request(
        console_hub: RealHub, console_admin: HubAdmin, authority: Account) -> None:
    from tests.console.conftest import make_account

    temp = make_account(console_hub, console_admin, "li.temp", "authority")
    s = BrowserSession(console_hub)
    try:
        assert s.login(temp).status_code == 200
        assert s.get("datasets").status_code == 200
        console_admin.remove_from_group("authority", temp.name)
        r = s.get("datasets?lang=en")
        assert r.status_code == 403
        assert "not in the “authority” group" in r.text
        zh = s.get("datasets?lang=zh")
        assert zh.status_code == 403 and "不属于“authority”组" in zh.text
    finally:
        s.close()


@pytest.mark.parametrize("token", ["", "forged"])
def test_a_form_without_its_token_is_refused_and_changes_nothing(
        session: BrowserSession, authority: Account, token: str) -> None:
    session.login(authority)
    r = session.post("operators", {"_csrf": token, "name": "伪造请求有限公司"})
    assert r.status_code == 403
    assert "伪造请求有限公司" not in session.get("operators").text
