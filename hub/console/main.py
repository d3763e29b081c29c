"""Assembles the console app: routers under the hub service prefix, language, errors, sweeper.

``create_app(config, settings)`` opens the console service (catalog and ledger, domain store,
hub API, Docker) and starts the sweeper thread that destroys the working data of ended
authorizations every ``sweep_interval_seconds``. Errors become HTTP here and only here:

- JSON endpoints (``/api/…``) answer ``{"code": …, "reason": …}`` with the error's status;
- a refused form is shown again with the reason and what was typed (the route names its page
  with ``pages.on_error``); other refusals get the error page;
- no session: pages redirect to the hub's login, other requests get 401;
- someone outside the authority group gets the 403 page that says so.
"""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from hub.catalog.exceptions import CatalogError
from hub.console import cookies
from hub.console.config import ConsoleConfig, load_console_config
from hub.console.errors import ConsoleError, LoginRequired, NotAuthority
from hub.console.i18n import COOKIE, Translator, choose
from hub.console.oauth import HubOAuth
from hub.console.pages import render
from hub.console.routes import auth, authorizations, datasets, home, operators, requests
from hub.console.routes.auth import login_redirect
from hub.console.service import ConsoleService
from shuyu_server.settings import Settings, load_settings

log = logging.getLogger("shuyu.console")


def build_oauth(config: ConsoleConfig) -> HubOAuth:
    return HubOAuth(api_url=config.hub_api_url, client_id=config.client_id,
                    client_secret=config.api_token.get_secret_value(),
                    redirect_uri=config.callback_url, authorize_url=config.authorize_url,
                    cache_seconds=config.auth_cache_seconds, timeout=config.hub_timeout_seconds)


class Sweeper:
    """Runs ``ConsoleService.sweep`` every `interval` seconds in a daemon thread."""

    def __init__(self, service: ConsoleService, interval: float):
        self.service, self.interval = service, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="console-sweeper", daemon=True)

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                for auth_id, outcome in self.service.sweep().items():
                    log.info("ended authorization %s: %s", auth_id,
                             outcome if isinstance(outcome, str) else outcome.to_json())
            except Exception:  # noqa: BLE001 - keep sweeping; the next pass retries
                log.exception("sweep failed")


def _problem(request: Request, status: int, code: str, message: str) -> Response:
    prefix = request.app.state.config.service_prefix
    if request.url.path.startswith(prefix + "api/"):
        return JSONResponse(status_code=status, content={"code": code, "reason": message})
    return render(request, "error.html", status=status, message=message)


async def handle_error(request: Request, exc: Exception) -> Response:
    """The one place where errors become HTTP (see the module docstring)."""
    if isinstance(exc, RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'form'}: {e['msg']}"
                             for e in exc.errors())
        status, code, message = 422, "invalid_request", problems or "invalid request"
    else:
        status, code, message = exc.status, exc.code, exc.message  # type: ignore[attr-defined]
    prefix = request.app.state.config.service_prefix
    if isinstance(exc, LoginRequired) and request.method == "GET" and not (
            request.url.path.startswith(prefix + "api/")):
        return login_redirect(request)
    if isinstance(exc, NotAuthority) and not request.url.path.startswith(prefix + "api/"):
        return render(request, "forbidden.html", status=403, who=exc.user,
                      group=request.app.state.config.authority_group)
    renderer = getattr(request.state, "form_renderer", None)
    if renderer is not None and request.method == "POST" and not isinstance(
            exc, (LoginRequired, NotAuthority)):
        try:
            values = await request.form() if "multipart" not in request.headers.get(
                "content-type", "") else None
            return renderer(request, values, message, status)
        except (CatalogError, ConsoleError, RuntimeError):
            pass  # the page itself cannot be shown (record gone…): the error page instead
    return _problem(request, status, code, message)


def create_app(config: ConsoleConfig | None = None, settings: Settings | None = None,
               service: ConsoleService | None = None) -> FastAPI:
    config = config or load_console_config()
    settings = settings or load_settings()
    service = service or ConsoleService.open(settings, config)
    oauth = build_oauth(config)
    sweeper = Sweeper(service, config.sweep_interval_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sweeper.start()
        try:
            yield
        finally:
            sweeper.stop()
            oauth.close()
            service.close()

    prefix = config.service_prefix.rstrip("/")
    app = FastAPI(title="Shuyu authority console", version="1", lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=prefix + "/openapi.json",
                  description="Pages (HTML) and JSON endpoints of the data authority's console. "
                  "Every change is written to the ledger before it takes effect.")
    app.state.service = service
    app.state.config = config
    app.state.oauth = oauth
    app.state.cookie_key = cookies.derive_key(
        (config.cookie_secret or config.api_token).get_secret_value(), "cookies")
    for router in (auth.router, home.router, datasets.router, operators.router,
                   authorizations.router, requests.router):
        app.include_router(router, prefix=prefix)
    app.mount(prefix + "/static", StaticFiles(directory=Path(__file__).parent / "static"),
              name="static")

    @app.get(prefix + "/health", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.middleware("http")
    async def language(request: Request, call_next):  # type: ignore[no-untyped-def]
        asked = request.query_params.get("lang")
        request.state.translator = Translator(choose(
            asked, request.cookies.get(COOKIE), request.headers.get("accept-language")))
        response = await call_next(request)
        if asked in ("zh", "en"):
            response.set_cookie(COOKIE, asked, path=config.service_prefix, samesite="lax",
                                max_age=365 * 86400)
        return response

    app.add_exception_handler(CatalogError, handle_error)
    app.add_exception_handler(ConsoleError, handle_error)
    app.add_exception_handler(RequestValidationError, handle_error)
    return app
