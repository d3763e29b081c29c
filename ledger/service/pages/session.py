"""The hub OAuth callback, signing out, the console's home and its stylesheet."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from ledger.service.auth import SESSION_COOKIE, STATE_COOKIE, LoginRequired
from ledger.service.pages.common import HTML_RESPONSES, TEMPLATES, console_state, render

router = APIRouter(tags=["console"])
STATIC = TEMPLATES.parent / "static"


@router.get("/oauth_callback", include_in_schema=False)
async def oauth_callback(request: Request, code: str = "", state: str = "") -> Response:
    console = console_state(request)
    if console.oauth is None:
        return render(request, "error.html", 503, title_key="error.title",
                      detail="the console is not configured for hub OAuth")
    if not code:
        return render(request, "error.html", 400, title_key="error.title",
                      detail="the hub sent no authorization code")
    try:
        session, next_url = await console.oauth.finish_login(
            code, state, request.cookies.get(STATE_COOKIE))
    except LoginRequired:
        return render(request, "error.html", 400, title_key="error.title",
                      detail="the login could not be completed (expired or foreign state); "
                      "open the console again")
    from ledger.service.auth import safe_next

    r = RedirectResponse(safe_next(next_url, console.home), status_code=302)
    r.set_cookie(SESSION_COOKIE, session, max_age=12 * 3600, httponly=True, samesite="lax",
                 path=console.prefix or "/", secure=console.oauth.config.secure_cookies)
    r.delete_cookie(STATE_COOKIE, path=console.prefix or "/")
    return r


@router.get("/console/logout", include_in_schema=False)
def logout(request: Request) -> Response:
    console = console_state(request)
    r = RedirectResponse("/hub/logout", status_code=302)
    r.delete_cookie(SESSION_COOKIE, path=console.prefix or "/")
    return r


@router.get("/console/", responses=HTML_RESPONSES, summary="Console home (goes to the explorer)")
def home(request: Request) -> Response:
    return RedirectResponse(f"{console_state(request).prefix}/console/events", status_code=302)


@router.get("/console/static/console.css", include_in_schema=False)
def stylesheet() -> Response:
    return FileResponse(STATIC / "console.css", media_type="text/css",
                        headers={"Cache-Control": "public, max-age=300"})
