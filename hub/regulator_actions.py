"""The regulator's actions on the platform: a hub-managed service at ``/services/regulator/``.

Why a separate service: the regulator console is part of the ledger service, and ``ledger/``
may import nothing of ``hub/`` (a regulator must be able to run it alone), yet suspending an
authorization changes the platform and must go through the catalog service, which writes
``authorization.suspended`` to the ledger before the suspension is committed (fail closed).
So the console's authorization list links here; this service checks the same hub identity with
the same OAuth code (:mod:`ledger.service.auth`) and the same regulators group, shows the form
in the console's look, and calls :meth:`hub.catalog.agreements.AgreementService.suspend` as a
``regulator`` actor. Then:

- the gateway refuses the authorization's queries at once: it checks the catalog on every query;
- the sandbox watchdog (``hub/watchdog.py``) stops the running sandboxes of its analysts on its
  next pass (every ``SHUYU_WATCHDOG_INTERVAL`` seconds), because it asks the same catalog
  (``check_user_can_work``) whether each running user may still work.

Routes: ``GET /suspend?authorization=…`` (the form), ``POST /suspend`` (validate, suspend,
redirect to the console), ``/oauth_callback`` and ``/health``. Run by the hub as
``python -m hub.regulator_actions``.
"""

from __future__ import annotations

import os
import re
from contextlib import asynccontextmanager
from typing import Annotated, Any, AsyncIterator, Callable
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ledger.console.i18n import Message
from ledger.service.auth import HubOAuth, HubOAuthConfig
from ledger.service.pages.common import (
    HTML_RESPONSES,
    ConsoleState,
    RegulatorDep,
    check_csrf,
    install_error_pages,
    render,
)

AUTH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}\Z")
DEFAULT_CONSOLE_URL = "/services/ledger/console"


def check_suspension_form(authorization: str, reason: str) -> list[Message]:
    """Why the form cannot be acted on (empty when it can)."""
    errors = []
    if not AUTH_ID.match(authorization):
        errors.append(Message("err.auth_id", {"value": authorization[:60]}))
    if not 2 <= len(reason.strip()) <= 2000:
        errors.append(Message("err.reason"))
    return errors


def create_app(open_catalog: Callable[[], Any], prefix: str, oauth: HubOAuth | None,
               console_url: str = DEFAULT_CONSOLE_URL) -> FastAPI:
    """The service; `open_catalog()` gives the catalog service (closed at shutdown)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.catalog = await run_in_threadpool(open_catalog)
        try:
            yield
        finally:
            app.state.catalog.close()
            if oauth is not None:
                await oauth.aclose()

    app = FastAPI(title="Shuyu regulator actions", version="1", lifespan=lifespan,
                  openapi_url=f"{prefix}/openapi.json", docs_url=None, redoc_url=None)
    app.state.console = ConsoleState(prefix=prefix, oauth=oauth, actions_url=f"{prefix}/",
                                     console_base=console_url)
    install_error_pages(app)
    router = APIRouter()

    @router.get("/health", include_in_schema=False)
    def health() -> JSONResponse:
        return JSONResponse({"ok": True})

    @router.get("/oauth_callback", include_in_schema=False)
    async def oauth_callback(request: Request, code: str = "", state: str = "") -> Response:
        from ledger.service.pages.session import oauth_callback as finish

        return await finish(request, code, state)

    def form(request: Request, user: Any, authorization: str, reason: str,
             errors: list[Message], status: int) -> Response:
        return render(request, "suspend.html", status, user=user, authorization=authorization,
                      reason=reason, errors=errors, action=f"{prefix}/suspend",
                      back=f"{console_url}/authorizations")

    @router.get("/suspend", responses=HTML_RESPONSES, summary="The suspension form")
    def suspend_form(request: Request, user: RegulatorDep,
                     authorization: Annotated[str, Query(max_length=200)] = "") -> Response:
        return form(request, user, authorization, "", [], 200)

    @router.post("/suspend", responses=HTML_RESPONSES,
                 summary="Suspend an authorization (ledgered before it takes effect)")
    async def suspend(request: Request, user: RegulatorDep) -> Response:
        data = await request.form()
        authorization = str(data.get("authorization") or "").strip()
        reason = str(data.get("reason") or "")
        if not check_csrf(request, str(data.get("csrf") or "")):
            return form(request, user, authorization, reason, [Message("err.csrf")], 403)
        errors = check_suspension_form(authorization, reason)
        if errors:
            return form(request, user, authorization, reason, errors, 400)
        from hub.catalog.enums import Role
        from hub.catalog.events import Actor
        from hub.catalog.exceptions import CatalogError
        from ledger.exceptions import LedgerError

        source = request.client.host if request.client else None
        actor = Actor(user.name, Role.REGULATOR, source)
        try:
            await run_in_threadpool(request.app.state.catalog.suspend, actor, authorization,
                                    reason.strip())
        except CatalogError as e:
            refusal = Message("err.refused", {"reason": e.message})
            return form(request, user, authorization, reason, [refusal], e.status)
        except LedgerError as e:  # the ledger could not record it: nothing was suspended
            refusal = Message("err.refused", {"reason": f"the ledger is unavailable ({e})"})
            return form(request, user, authorization, reason, [refusal], 503)
        return RedirectResponse(
            f"{console_url}/authorizations?suspended={quote(authorization)}", status_code=303)

    app.include_router(router, prefix=prefix)
    return app


def main() -> None:  # pragma: no cover - started by the hub
    from shuyu_server.lifecycle import end_with_hub

    end_with_hub()
    import uvicorn

    from hub.catalog.service import open_catalog
    from shuyu_server.settings import load_settings

    settings = load_settings()
    config = HubOAuthConfig.from_env()
    if config is None:
        raise SystemExit("hub.regulator_actions runs as a JupyterHub service (no hub OAuth set)")
    url = urlsplit(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:8040"))
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/regulator/").rstrip("/")
    console = os.environ.get("SHUYU_LEDGER_CONSOLE_URL", DEFAULT_CONSOLE_URL).rstrip("/")
    app = create_app(lambda: open_catalog(settings), prefix, HubOAuth(config), console)
    uvicorn.run(app, host=url.hostname or "127.0.0.1", port=url.port or 8040, log_level="info")


if __name__ == "__main__":  # pragma: no cover
    main()
