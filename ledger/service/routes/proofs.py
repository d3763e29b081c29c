"""Inclusion proofs (JSON, and C2SP tlog-proof@v1 bundles) and consistency proofs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from ledger.service.deps import ReaderDep
from ledger.service.schemas import ConsistencyProofPublic, ErrorPublic, InclusionProofPublic

router = APIRouter(prefix="/api/v1/proofs", tags=["proofs"])
ERRORS = {400: {"model": ErrorPublic}, 404: {"model": ErrorPublic}}
SizeQuery = Annotated[
    int | None, Query(ge=1, description="Size of a signed checkpoint (default: the latest).")
]


@router.get(
    "/inclusion/{index}",
    response_model=InclusionProofPublic,
    responses=ERRORS,
    summary="Inclusion proof of one entry in a signed tree",
)
def inclusion(index: int, reader: ReaderDep, size: SizeQuery = None) -> InclusionProofPublic:
    return reader.inclusion_public(index, size)


@router.get(
    "/inclusion/{index}/tlog-proof",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {"text/plain": {}}, "description": "A c2sp.org/tlog-proof@v1 bundle."},
        **ERRORS,
    },
    summary="Inclusion proof as an offline c2sp.org/tlog-proof@v1 bundle",
)
def inclusion_bundle(index: int, reader: ReaderDep, size: SizeQuery = None) -> PlainTextResponse:
    return PlainTextResponse(reader.inclusion_bundle(index, size))


@router.get(
    "/consistency",
    response_model=ConsistencyProofPublic,
    responses=ERRORS,
    summary="Consistency proof from an older tree size to a signed tree",
)
def consistency(
    reader: ReaderDep,
    old: Annotated[int, Query(ge=1, description="The older tree size.")],
    new: SizeQuery = None,
) -> ConsistencyProofPublic:
    return reader.consistency(old, new)
