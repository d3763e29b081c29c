"""Datasets: what the caller's authorizations cover, and one dataset in detail."""

from __future__ import annotations

from fastapi import APIRouter, Query

from hub.gateway.deps import CurrentUser, Service
from hub.gateway.schemas import DatasetDetailPublic, DatasetPublic, ErrorPublic

router = APIRouter(prefix="/datasets", tags=["datasets"])
ERRORS = {s: {"model": ErrorPublic} for s in (401, 403, 503)}


@router.get("", response_model=list[DatasetPublic], responses=ERRORS)
def list_datasets(user: CurrentUser, service: Service,
                  authorization: str | None = Query(None, max_length=120)
                  ) -> list[DatasetPublic]:
    """Every dataset the caller may query now, with grade, access mode and terms."""
    return [DatasetPublic.from_grant(g, ds) for g, ds in service.grants(user, authorization)]


@router.get("/{name}", response_model=DatasetDetailPublic, responses=ERRORS)
def describe_dataset(name: str, user: CurrentUser, service: Service,
                     authorization: str | None = Query(None, max_length=120)
                     ) -> DatasetDetailPublic:
    """One dataset as the caller may use it: columns in scope, dimensions, limits."""
    grant, ds = service.describe(user, name, authorization)
    return DatasetDetailPublic.from_grant_detail(grant, ds, service.config.max_rows)
