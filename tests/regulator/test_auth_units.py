"""The console's OAuth helpers: signed cookies, the login state, redirects kept on this host."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import pytest

from ledger.service.auth import HubOAuth, HubOAuthConfig, LoginRequired, Signer, safe_next

CONFIG = HubOAuthConfig.from_env({
    "JUPYTERHUB_API_URL": "http://127.0.0.1:9/hub/api", "JUPYTERHUB_API_TOKEN": "secret-token",
    "JUPYTERHUB_CLIENT_ID": "service-ledger", "JUPYTERHUB_SERVICE_NAME": "ledger",
})


@pytest.mark.parametrize("target, want", [
    ("/services/ledger/console/events?x=1", "/services/ledger/console/events?x=1"),
    ("https://evil.example/", "/home/"), ("//evil.example/x", "/home/"),
    ("/\\evil.example", "/home/"), ("", "/home/"), ("javascript:alert(1)", "/home/"),
])
def test_redirects_after_login_stay_on_this_host(target, want) -> None:
    assert safe_next(target, "/home/") == want


def test_signed_values_refuse_changes_other_keys_and_age() -> None:
    s = Signer("k1", "session")
    signed = s.sign("token-abc")
    assert s.unsign(signed, 60) == "token-abc"
    assert Signer("k2", "session").unsign(signed, 60) is None
    assert Signer("k1", "other-purpose").unsign(signed, 60) is None
    body, mac = signed.rsplit(".", 1)
    assert s.unsign(body + "." + ("0" if mac[0] != "0" else "1") + mac[1:], 60) is None
    assert s.unsign(signed, -1) is None
    assert s.unsign("garbage", 60) is None and s.unsign(None, 60) is None


def test_login_state_must_match_and_come_from_this_service() -> None:
    assert CONFIG is not None and CONFIG.authorize_url == "/hub/api/oauth2/authorize"
    oauth = HubOAuth(CONFIG)
    url, cookie = oauth.start_login("/services/ledger/console/events")
    query = parse_qs(urlsplit(url).query)
    assert query["client_id"] == ["service-ledger"]
    assert query["redirect_uri"] == ["/services/ledger/oauth_callback"]
    assert query["code_challenge_method"] == ["S256"]
    with pytest.raises(LoginRequired):  # another state than the one this browser was given
        asyncio.run(oauth.finish_login("code", "forged-state", cookie))
    with pytest.raises(LoginRequired):  # no state cookie at all
        asyncio.run(oauth.finish_login("code", query["state"][0], None))
    assert HubOAuthConfig.from_env({}) is None
