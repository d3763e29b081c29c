"""C2SP tlog-tiles: ``/checkpoint`` and ``/tile/…``, so any static tlog client can mirror the log.

Full tiles never change and are cached forever; partial tiles (the right edge) may be replaced by
wider ones and are cached briefly; the checkpoint changes with every batch and is cached for a few
seconds, as tlog-tiles asks.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from ledger.service.access import entry_reader
from ledger.service.deps import ReaderDep
from ledger.service.schemas import ErrorPublic

router = APIRouter(tags=["tlog-tiles"])

IMMUTABLE = "public, max-age=31536000, immutable"
PARTIAL = "public, max-age=60"
PRIVATE = "private, max-age=60"  # entry bundles under the hub: for the regulator who asked
CHECKPOINT = "public, max-age=5"
NOT_FOUND = {404: {"model": ErrorPublic, "description": "No such tile in the signed tree."}}


@router.get(
    "/checkpoint",
    response_class=Response,
    responses={
        200: {
            "content": {"text/plain": {}},
            "description": "The latest signed checkpoint note with its cosignatures.",
        },
        **NOT_FOUND,
    },
    summary="Latest checkpoint (C2SP tlog-checkpoint, with cosignatures)",
)
def checkpoint(reader: ReaderDep) -> Response:
    note = reader.signed().note
    return Response(
        note, media_type="text/plain; charset=utf-8", headers={"Cache-Control": CHECKPOINT}
    )


@router.get(
    "/tile/{path:path}",
    response_class=Response,
    responses={
        200: {
            "content": {"application/octet-stream": {}},
            "description": "A hash tile or an entry bundle.",
        },
        401: {"model": ErrorPublic, "description": "Entry bundle under the hub: no regulator."},
        403: {"model": ErrorPublic, "description": "Entry bundle: not in the regulators group."},
        **NOT_FOUND,
    },
    summary="Hash tile <L>/<N>[.p/<W>] or entry bundle entries/<N>[.p/<W>] (entry bundles: "
    "regulators only under the hub)",
)
async def tile(path: str, request: Request, reader: ReaderDep) -> Response:
    # Hash tiles (<L>/…) are open; anything else is an entry bundle or nothing: fail closed.
    private = not (path[:1].isascii() and path[:1].isdigit()) and await entry_reader(request) is not None
    data, full = await run_in_threadpool(reader.tile, "tile/" + path)
    cache = PRIVATE if private else IMMUTABLE if full else PARTIAL
    return Response(data, media_type="application/octet-stream", headers={"Cache-Control": cache})
