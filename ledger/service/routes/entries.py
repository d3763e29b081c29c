"""Entries of the log, decoded, with their recomputed leaf hashes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ledger.service.access import EntryReaderDep
from ledger.service.deps import ReaderDep
from ledger.service.reader import MAX_PAGE
from ledger.service.schemas import EntryPage, EntryPublic, ErrorPublic

router = APIRouter(prefix="/api/v1", tags=["entries"])
ERRORS = {401: {"model": ErrorPublic, "description": "Under the hub: no regulator identity."},
          403: {"model": ErrorPublic, "description": "Not in the regulators group."},
          404: {"model": ErrorPublic}}


@router.get(
    "/entries",
    response_model=EntryPage,
    responses=ERRORS,
    summary="Entries [start, start+limit) of the signed tree",
)
def list_entries(
    reader: ReaderDep,
    _who: EntryReaderDep,
    start: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> EntryPage:
    return reader.entries(start, limit)


@router.get("/entries/{index}", response_model=EntryPublic, responses=ERRORS, summary="One entry")
def get_entry(index: int, reader: ReaderDep, _who: EntryReaderDep) -> EntryPublic:
    return reader.entry(index)
