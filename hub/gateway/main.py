"""Assembles the gateway app: routers under the hub service prefix and one error handler.

``create_app(config, settings)`` opens the catalog and ledger named by the shared settings, the
domain store (read-only, on first query) and the pseudonym keys, and asks the hub about every
token. All errors become HTTP here and only here: gateway errors and catalog refusals carry
their own status, code and reason; the body is always ``{"code": …, "reason": …}``.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from hub.catalog.exceptions import CatalogError
from hub.catalog.service import open_catalog
from hub.gateway.config import GatewayConfig, load_gateway_config
from hub.gateway.engine import Engine
from hub.gateway.exceptions import GatewayError
from hub.gateway.identity import HubIdentity
from hub.gateway.pseudonyms import PseudonymKeys
from hub.gateway.routes import datasets, queries
from hub.gateway.service import QueryService
from shuyu_server.settings import Settings, load_settings


def build_service(settings: Settings, config: GatewayConfig) -> QueryService:
    catalog = open_catalog(settings, remember_checks=True)
    engine = Engine(settings.domain_dir, memory_limit=config.memory_limit,
                    threads=config.threads, timeout=config.query_timeout_seconds)
    keys = PseudonymKeys(settings.pseudonym_keys_dir)
    return QueryService(catalog, engine, keys, catalog.log, config)


def error_response(exc: GatewayError | CatalogError) -> JSONResponse:
    return JSONResponse(status_code=exc.status, content={"code": exc.code, "reason": exc.message})


def create_app(config: GatewayConfig | None = None, settings: Settings | None = None,
               service: QueryService | None = None) -> FastAPI:
    config = config or load_gateway_config()
    settings = settings or load_settings()
    service = service or build_service(settings, config)
    identity = HubIdentity(config.hub_api_url, config.required_scope,
                           config.auth_cache_seconds, config.hub_timeout_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            identity.close()
            service.timings.close()
            service.engine.close()
            service.catalog.close()

    app = FastAPI(title="Shuyu query gateway", lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=config.service_prefix + "openapi.json")
    app.state.service = service
    app.state.identity = identity
    app.state.config = config
    prefix = config.service_prefix.rstrip("/")
    app.include_router(queries.router, prefix=prefix)
    app.include_router(datasets.router, prefix=prefix)

    @app.get(prefix + "/health", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.exception_handler(GatewayError)
    @app.exception_handler(CatalogError)
    async def known_error(request: Request, exc: GatewayError | CatalogError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}"
            for e in exc.errors())
        return JSONResponse(status_code=422, content={"code": "invalid_request",
                                                      "reason": problems or "invalid request"})

    return app
