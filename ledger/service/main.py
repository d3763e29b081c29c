"""Assembles the ledger service: routers, the one error handler, and the sequencer lifespan.

``create_app(config, sequencer=...)`` opens the log when the app starts. With ``sequencer=True``
the app is the log's one sequencer on this host: it binds the sequencer socket through which the
platform's own services append (there is no append route), and it offers new checkpoints to the
registered witnesses in the background. ``prefix`` mounts everything under a URL path, as
JupyterHub does for its services (``/services/ledger``).
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ledger.exceptions import (
    EntryError,
    FormatError,
    InconsistentTreeError,
    LedgerError,
    LedgerUnavailable,
    ProofError,
    VerificationError,
)
from ledger.log import Log, LogConfig, Sequencer
from ledger.service.reader import LedgerReader, NotFound
from ledger.service.pages import close_console, install_console
from ledger.service.routes import checkpoints, entries, proofs, tiles

log = logging.getLogger("shuyu.ledger.service")


def _status_table() -> list[tuple[type[LedgerError], int, bool]]:
    """(error class, HTTP status, whether its message is shown) — most specific first."""
    from ledger.witness_client import CosignatureRejected

    return [
        (NotFound, 404, True),
        (CosignatureRejected, 400, True),
        (FormatError, 400, True),
        (ProofError, 400, True),
        (EntryError, 400, True),
        (VerificationError, 500, True),  # integrity failures name hashes and indexes, no secrets
        (InconsistentTreeError, 500, True),
        (LedgerUnavailable, 503, False),
    ]


def error_response(exc: LedgerError) -> JSONResponse:
    """The one place where ledger errors become HTTP answers."""
    for cls, status, show in _status_table():
        if isinstance(exc, cls):
            if status >= 500:
                log.error("ledger service: %s: %s", type(exc).__name__, exc)
            detail = str(exc) if show else "the ledger database is unavailable; try again later"
            return JSONResponse({"detail": detail}, status_code=status)
    log.exception("ledger service: unexpected ledger error", exc_info=exc)
    return JSONResponse({"detail": "internal ledger error"}, status_code=500)


def _normalize_prefix(prefix: str) -> str:
    prefix = prefix.rstrip("/")
    if prefix and not prefix.startswith("/"):
        raise ValueError(f"the service prefix must start with '/', got {prefix!r}")
    return prefix


def create_app(config: LogConfig, *, sequencer: bool, prefix: str = "") -> FastAPI:
    """The ledger service for the log described by `config`."""
    prefix = _normalize_prefix(prefix)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ledger_log = Log.open(config)
        seq = pusher = keeper = None
        try:
            if sequencer:
                from ledger.service.indexkeeper import IndexKeeper
                from ledger.witness_client import WitnessPusher

                seq = Sequencer(ledger_log)
                seq.start()
                pusher = WitnessPusher(ledger_log)
                pusher.start()
            app.state.reader = LedgerReader(ledger_log)
            if sequencer:
                keeper = IndexKeeper(config.database_url, app.state.reader.tree_size)
                keeper.start()
            yield
        finally:
            await close_console(app)
            if keeper is not None:
                keeper.stop()
            if pusher is not None:
                pusher.stop()
            if seq is not None:
                seq.stop()
            ledger_log.close()

    app = FastAPI(
        title="Shuyu ledger",
        summary="Read-only view of the verifiable audit ledger (C2SP tlog-tiles and a JSON API).",
        version="1",
        lifespan=lifespan,
        openapi_url=f"{prefix}/openapi.json",
        docs_url=f"{prefix}/docs",
        redoc_url=None,
    )

    @app.exception_handler(LedgerError)
    async def _ledger_error(request: Request, exc: LedgerError) -> JSONResponse:
        return error_response(exc)

    for module in (tiles, checkpoints, entries, proofs):
        app.include_router(module.router, prefix=prefix)
    install_console(app, prefix)  # the regulator console's pages (hub OAuth, regulator role)
    return app
