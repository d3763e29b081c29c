"""Assembles the review service: routers under the hub service prefix and one error handler.

``create_app(config, settings, service)`` opens the review service over the shared settings
(control database, ledger, domain store, quarantine and packages), the hub identity (HubOAuth)
and the check runner, and mounts the routers ``api`` (client), ``pages`` (browsers) and
``oauth``. All errors become HTTP here and only here: under ``api/`` as JSON
``{"code", "reason"}``, elsewhere as a plain page; a browser without a session is sent to the
hub's login. Every page carries a Content-Security-Policy that allows no script at all.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import jinja2
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates

from hub.catalog.exceptions import CatalogError
from release_review.checks.base import Thresholds
from release_review.exceptions import ReleaseError
from release_review.service import ReleaseReviewService, open_service
from release_review.web.config import ReviewConfig, load_review_config
from release_review.web.identity import HubIdentity, LoginRequired
from release_review.web.routes import api, oauth, pages
from release_review.web.runner import CheckRunner
from shuyu_server.settings import Settings, load_settings

TEMPLATES = Path(__file__).parent / "templates"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def build_service(settings: Settings, config: ReviewConfig) -> ReleaseReviewService:
    return open_service(settings, Thresholds(max_bytes=config.max_upload_bytes),
                        config.min_approvals)


def create_app(config: ReviewConfig | None = None, settings: Settings | None = None,
               service: ReleaseReviewService | None = None) -> FastAPI:
    config = config or load_review_config()
    settings = settings or load_settings()
    service = service or build_service(settings, config)
    identity = HubIdentity.create(config)
    runner = CheckRunner(service.run_checks, service.pending_checks, config.check_sweep_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runner.start()
        try:
            yield
        finally:
            runner.stop()
            service.close()

    prefix = config.service_prefix.rstrip("/")
    app = FastAPI(title="Shuyu release review", lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=prefix + "/api/openapi.json")
    app.state.service, app.state.identity, app.state.config = service, identity, config
    app.state.runner = runner
    app.state.templates = Jinja2Templates(env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True))
    for router in (api.router, pages.router, oauth.router):
        app.include_router(router, prefix=prefix)

    @app.get(prefix + "/health", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    def is_api(request: Request) -> bool:
        return request.url.path.startswith(prefix + "/api/")

    def error(request: Request, status: int, code: str, reason: str) -> Response:
        if is_api(request):
            return JSONResponse(status_code=status, content={"code": code, "reason": reason})
        page = app.state.templates.get_template("error.html").render(
            status=status, code=code, reason=reason, prefix=config.service_prefix)
        return HTMLResponse(page, status_code=status)

    @app.exception_handler(ReleaseError)
    async def known_error(request: Request, exc: ReleaseError) -> Response:
        if isinstance(exc, LoginRequired) and not is_api(request):
            return oauth.login_response(request, identity, exc.next_url)
        return error(request, exc.status, exc.code, exc.message)

    @app.exception_handler(CatalogError)
    async def catalog_error(request: Request, exc: CatalogError) -> Response:
        return error(request, getattr(exc, "status", 400), getattr(exc, "code", "catalog"),
                     getattr(exc, "message", str(exc)))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}"
                             for e in exc.errors())
        return error(request, 422, "invalid_request", problems or "invalid request")

    return app
