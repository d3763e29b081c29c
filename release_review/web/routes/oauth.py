"""Hub OAuth for browsers: the callback that turns the hub's code into a session, and logout.

The session cookie holds the hub OAuth token issued to this service for the person (HttpOnly,
SameSite=Lax, path = the service prefix); the hub checks it on every request, so logging out of
the hub or revoking the token ends the session.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from release_review.web.deps import Identity
from release_review.web.identity import SESSION_COOKIE, STATE_COOKIE

router = APIRouter(tags=["oauth"])


@router.get("/oauth_callback", include_in_schema=False)
async def oauth_callback(request: Request, identity: Identity, code: str = "",
                         state: str = "") -> RedirectResponse:
    token, next_url = await identity.finish_login(code, state,
                                                  request.cookies.get(STATE_COOKIE))
    prefix = request.app.state.config.service_prefix
    target = next_url if next_url.startswith(prefix) else prefix
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(SESSION_COOKIE, token, path=prefix, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https")
    response.delete_cookie(STATE_COOKIE, path=prefix)
    return response


@router.get("/logout", include_in_schema=False)
def logout(request: Request) -> RedirectResponse:
    prefix = request.app.state.config.service_prefix
    response = RedirectResponse("/hub/logout", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=prefix)
    return response


def login_response(request: Request, identity: Identity, next_url: str) -> RedirectResponse:
    url, state = identity.login_redirect(next_url)
    response = RedirectResponse(url, status_code=302)
    response.set_cookie(STATE_COOKIE, state, path=request.app.state.config.service_prefix,
                        httponly=True, samesite="lax", max_age=600,
                        secure=request.url.scheme == "https")
    return response
