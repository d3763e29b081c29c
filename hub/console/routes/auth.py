"""Logging in and out: the hub OAuth callback (see ``hub/console/oauth.py``) and logout."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse

from hub.console import cookies
from hub.console.deps import SESSION_COOKIE, STATE_COOKIE, Config
from hub.console.errors import LoginRequired

router = APIRouter(tags=["login"])


@router.get("/oauth_callback", include_in_schema=False)
def oauth_callback(request: Request, config: Config,
                   code: Annotated[str, Query(max_length=500)] = "",
                   state: Annotated[str, Query(max_length=500)] = "") -> RedirectResponse:
    key = request.app.state.cookie_key
    saved = cookies.unsign(key, STATE_COOKIE, request.cookies.get(STATE_COOKIE))
    expected, _, next_url = (saved or "").partition("|")
    if not code or not state or not saved or state != expected:
        raise LoginRequired("the login did not come back from the hub as expected (state "
                            "mismatch or missing code); log in again")
    token = request.app.state.oauth.exchange(code)
    if not next_url.startswith(config.service_prefix):
        next_url = config.service_prefix
    response = RedirectResponse(next_url, status_code=302)
    response.set_cookie(SESSION_COOKIE, cookies.sign(key, SESSION_COOKIE, token),
                        path=config.service_prefix, httponly=True, samesite="lax",
                        secure=config.secure_cookies)
    response.delete_cookie(STATE_COOKIE, path=config.service_prefix)
    return response


@router.get("/logout", include_in_schema=False)
def logout(request: Request, config: Config) -> RedirectResponse:
    token = cookies.unsign(request.app.state.cookie_key, SESSION_COOKIE,
                           request.cookies.get(SESSION_COOKIE))
    if token:
        request.app.state.oauth.forget(token)
    response = RedirectResponse(f"{config.hub_host}{config.hub_base_url}hub/logout",
                                status_code=302)
    response.delete_cookie(SESSION_COOKIE, path=config.service_prefix)
    return response


def login_redirect(request: Request) -> RedirectResponse:
    """Send the browser to the hub to log in, remembering where it was going."""
    config = request.app.state.config
    oauth = request.app.state.oauth
    state = oauth.new_state()
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(oauth.authorize_url(state), status_code=302)
    response.set_cookie(STATE_COOKIE, cookies.sign(request.app.state.cookie_key, STATE_COOKIE,
                                                   f"{state}|{target}"),
                        path=config.service_prefix, httponly=True, samesite="lax",
                        secure=config.secure_cookies, max_age=600)
    return response
