"""The witness's HTTP interface: C2SP tlog-witness v1.0.0 ``POST <prefix>/add-checkpoint``.

Responses, exactly as the spec lists them:

=====  =====================================================================================
200    one or more cosignature lines (``— <witness> <base64>``), the checkpoint is recorded
400    malformed body, or old size larger than the checkpoint size
403    no signature on the checkpoint verifies with a key trusted for its origin
404    the origin is not a log this witness knows
409    old size is not the latest cosigned size, or same size with another root; the body is
       the latest cosigned size and a newline, ``Content-Type: text/x.tlog.size``
422    the consistency proof does not verify
=====  =====================================================================================

Refusals are raised by :mod:`ledger.witness` and turned into responses here, in one handler.
The state is recorded durably before the 200 response is sent.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from ledger.witness import (
    MAX_BODY_BYTES,
    SIZE_CONTENT_TYPE,
    MalformedRequest,
    Witness,
    WitnessConflict,
    WitnessRefusal,
)

log = logging.getLogger("shuyu.ledger.witness")


def refusal_response(e: WitnessRefusal) -> Response:
    """The one place where witness refusals become HTTP responses."""
    if isinstance(e, WitnessConflict):
        # exactly this content type, without the charset parameter Starlette adds to text/*
        return Response(
            f"{e.latest_size}\n".encode(),
            status_code=409,
            headers={"content-type": SIZE_CONTENT_TYPE},
        )
    return PlainTextResponse(f"{e}\n", status_code=e.http_status)


async def _read_body(request: Request) -> bytes:
    """The request body, refusing more than MAX_BODY_BYTES without reading it all."""
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise MalformedRequest(f"request body is larger than {MAX_BODY_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise MalformedRequest(f"request body is larger than {MAX_BODY_BYTES} bytes")
    return bytes(body)


def create_app(witness: Witness, prefix: str = "") -> FastAPI:
    """The witness app; `prefix` is the submission prefix (e.g. ``/witness``), may be empty."""
    prefix = prefix.rstrip("/")
    app = FastAPI(title="Shuyu witness", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(WitnessRefusal)
    async def _refused(request: Request, e: WitnessRefusal) -> Response:
        log.warning("refused add-checkpoint (%d): %s", e.http_status, e)
        return refusal_response(e)

    @app.post(f"{prefix}/add-checkpoint")
    async def add_checkpoint(request: Request) -> Response:
        body = await _read_body(request)
        lines = await run_in_threadpool(witness.add_checkpoint, body)
        log.info("cosigned a checkpoint: %s", lines.strip())
        return PlainTextResponse(lines, status_code=200)

    return app


def serve(witness_dir: Path, host: str, port: int, prefix: str = "") -> None:
    """Run the witness server in the foreground until interrupted."""
    import uvicorn

    witness = Witness(witness_dir)
    uvicorn.run(create_app(witness, prefix), host=host, port=port, log_level="info")
