"""Request dependencies: who is calling (from the hub, on every request) and the service.

``CurrentUser`` resolves the ``Authorization: token …`` header through ``HubIdentity`` (the hub's
``/user`` endpoint, briefly cached) and checks the gateway's required scope; routes that declare
it never run for an unverified caller. ``Service`` is the app's ``QueryService``.

The dependencies are ``async`` so that they run in the event loop: only the route itself (and a
hub call on a cache miss) goes to a worker thread, one hop per request instead of one per
dependency.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool

from hub.gateway.identity import HubIdentity, HubUser, token_from_header
from hub.gateway.service import QueryService
from hub.service_config import caller_address


async def get_service(request: Request) -> QueryService:
    return request.app.state.service


async def get_identity(request: Request) -> HubIdentity:
    return request.app.state.identity


async def current_user(
    identity: Annotated[HubIdentity, Depends(get_identity)],
    authorization: Annotated[str | None, Header()] = None,
) -> HubUser:
    """The hub's answer about the caller's token: from the short cache without leaving the event
    loop, else asked of the hub in a worker thread (the call blocks)."""
    token = token_from_header(authorization)
    user = identity.cached_user(token)
    if user is None:
        user = await run_in_threadpool(identity.user_for_token, token)
    return user


async def client_address(request: Request) -> str | None:
    """The caller's address for the ledger (``caller_address``: the proxy's hop, else the
    peer)."""
    return caller_address(request.client.host if request.client else None,
                          request.headers.get("x-forwarded-for"))


CurrentUser = Annotated[HubUser, Depends(current_user)]
Service = Annotated[QueryService, Depends(get_service)]
ClientAddress = Annotated[str | None, Depends(client_address)]
