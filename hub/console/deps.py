"""Request dependencies: who is at the browser (hub OAuth, authority group), the service.

``CurrentUser`` resolves the console's session cookie through the hub on every request (briefly
cached, ``oauth.py``) and refuses anyone outside the authority group; routes that declare it
never run otherwise. ``CheckedForm`` additionally requires the form's anti-forgery token.
``Service`` is the app's ``ConsoleService``; ``Actor`` is the ledger's view of the caller (name,
authority role, source address).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie

from hub.catalog.events import Actor
from hub.console import cookies
from hub.console.config import ConsoleConfig
from hub.console.errors import BadRequestToken, LoginRequired, NotAuthority
from hub.console.oauth import HubOAuth, HubUser
from hub.console.service import ConsoleService
from hub.service_config import caller_address

SESSION_COOKIE = "shuyu-console-session"
STATE_COOKIE = "shuyu-console-oauth-state"
session_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False,
                              description="The console's session, set after hub OAuth login.")


def get_service(request: Request) -> ConsoleService:
    return request.app.state.service


def get_config(request: Request) -> ConsoleConfig:
    return request.app.state.config


def get_oauth(request: Request) -> HubOAuth:
    return request.app.state.oauth


def session_token(request: Request, cookie: str | None) -> str | None:
    return cookies.unsign(request.app.state.cookie_key, SESSION_COOKIE, cookie)


def current_user(
    request: Request,
    oauth: Annotated[HubOAuth, Depends(get_oauth)],
    config: Annotated[ConsoleConfig, Depends(get_config)],
    cookie: Annotated[str | None, Depends(session_cookie)] = None,
) -> HubUser:
    token = session_token(request, cookie)
    if token is None:
        raise LoginRequired("log in through the hub to use the console")
    user = oauth.user_for_token(token)
    request.state.user_name = user.name
    request.state.csrf = cookies.csrf_token(request.app.state.cookie_key, token)
    if config.authority_group not in user.groups:
        raise NotAuthority(f"{user.name} is not in the {config.authority_group} group; the "
                           "console is for the data authority only", user.name)
    return user


async def checked_form(request: Request, user: Annotated[HubUser, Depends(current_user)]) -> None:
    form = await request.form()
    presented = form.get("_csrf")
    if not cookies.csrf_ok(request.app.state.cookie_key, user.token,
                           presented if isinstance(presented, str) else None):
        raise BadRequestToken("the form's security token is missing or out of date (was the "
                              "page open in another session?); reload the page and try again")


def client_address(request: Request) -> str | None:
    """The caller's address for the ledger (``caller_address``: the proxy's hop, else the
    peer)."""
    return caller_address(request.client.host if request.client else None,
                          request.headers.get("x-forwarded-for"))


def current_actor(request: Request, user: Annotated[HubUser, Depends(current_user)]) -> Actor:
    return ConsoleService.actor(user.name, f"console {client_address(request) or ''}".strip())


CurrentUser = Annotated[HubUser, Depends(current_user)]
CheckedForm = Depends(checked_form)
CurrentActor = Annotated[Actor, Depends(current_actor)]
Service = Annotated[ConsoleService, Depends(get_service)]
Config = Annotated[ConsoleConfig, Depends(get_config)]
