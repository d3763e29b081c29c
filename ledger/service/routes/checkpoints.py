"""Signed checkpoints with their cosignatures, and cosignatures handed back by witnesses."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from ledger.exceptions import FormatError
from ledger.service.deps import ReaderDep
from ledger.service.schemas import (
    CheckpointPage,
    CheckpointPublic,
    CosignaturesAccepted,
    ErrorPublic,
    LogInfoPublic,
)

router = APIRouter(prefix="/api/v1", tags=["checkpoints"])
ERRORS = {400: {"model": ErrorPublic}, 404: {"model": ErrorPublic}}
MAX_NOTE_BYTES = 64 * 1024


@router.get("/log", response_model=LogInfoPublic, summary="The log's origin, key and witnesses")
def log_info(reader: ReaderDep) -> LogInfoPublic:
    return reader.info()


@router.get(
    "/checkpoint",
    response_model=CheckpointPublic,
    responses=ERRORS,
    summary="Latest signed checkpoint with cosignatures",
)
def latest_checkpoint(reader: ReaderDep) -> CheckpointPublic:
    return reader.checkpoint()


@router.get(
    "/checkpoints",
    response_model=CheckpointPage,
    responses=ERRORS,
    summary="Signed checkpoints, newest first",
)
def list_checkpoints(
    reader: ReaderDep,
    before: Annotated[int | None, Query(ge=1, description="Only sizes below this.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> CheckpointPage:
    return reader.checkpoints(before, limit)


@router.get(
    "/checkpoints/{size}",
    response_model=CheckpointPublic,
    responses=ERRORS,
    summary="The signed checkpoint of one tree size",
)
def checkpoint_of_size(size: int, reader: ReaderDep) -> CheckpointPublic:
    return reader.checkpoint(size)


@router.post(
    "/cosignatures",
    response_model=CosignaturesAccepted,
    responses=ERRORS,
    summary="Hand back a checkpoint cosigned by a registered (pull-mode) witness",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The checkpoint note as the witness holds it: the log's text and "
            "signature followed by cosignature lines.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def add_cosignatures(request: Request, reader: ReaderDep) -> CosignaturesAccepted:
    body = await request.body()
    if len(body) > MAX_NOTE_BYTES:
        raise FormatError(f"a cosigned checkpoint is at most {MAX_NOTE_BYTES} bytes")
    return await run_in_threadpool(reader.accept_cosignatures, body)
