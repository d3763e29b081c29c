"""Request dependencies: who is calling (asked of the hub on every request) and the service.

``ApiUser`` is an analyst's client identified by its hub token (with the release scope);
``BrowserUser`` is a person logged in through hub OAuth (the session cookie), on pages and
downloads only. Routes that declare either never run for an unverified caller.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from hub.service_config import caller_address
from release_review.permissions import ReviewUser
from release_review.service import ReleaseReviewService
from release_review.web.identity import SESSION_COOKIE, HubIdentity


def get_service(request: Request) -> ReleaseReviewService:
    return request.app.state.service


def get_identity(request: Request) -> HubIdentity:
    return request.app.state.identity


def client_address(request: Request) -> str | None:
    """The caller's address for the ledger (``caller_address``: the proxy's hop, else the
    peer)."""
    return caller_address(request.client.host if request.client else None,
                          request.headers.get("x-forwarded-for"))


async def api_user(request: Request, identity: Annotated[HubIdentity, Depends(get_identity)],
                   authorization: Annotated[str | None, Header()] = None) -> ReviewUser:
    return await identity.api_user(authorization, client_address(request))


async def browser_user(request: Request,
                       identity: Annotated[HubIdentity, Depends(get_identity)],
                       authorization: Annotated[str | None, Header()] = None) -> ReviewUser:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return await identity.browser_user(request.cookies.get(SESSION_COOKIE), authorization, here,
                                       client_address(request))


def session_token(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE)


ApiUser = Annotated[ReviewUser, Depends(api_user)]
BrowserUser = Annotated[ReviewUser, Depends(browser_user)]
Service = Annotated[ReleaseReviewService, Depends(get_service)]
Identity = Annotated[HubIdentity, Depends(get_identity)]
