"""Queries: run one (``POST /queries``), then fetch its result pages as Arrow IPC streams."""

from __future__ import annotations

from fastapi import APIRouter, Path, Response

from hub.gateway.deps import ClientAddress, CurrentUser, Service
from hub.gateway.results import MEDIA_TYPE
from hub.gateway.schemas import ErrorPublic, QueryRequest, QueryResultPublic

router = APIRouter(prefix="/queries", tags=["queries"])
ERRORS = {s: {"model": ErrorPublic} for s in (401, 403, 408, 413, 503)}


@router.post("", response_model=QueryResultPublic, responses=ERRORS)
def run_query(body: QueryRequest, user: CurrentUser, service: Service,
              source: ClientAddress) -> Response:
    """Check, run and record one query; its rows are in ``pages`` Arrow IPC pages.

    The body is the ``QueryResultPublic`` the model itself renders (built by pydantic, so
    already valid): returning it as a ``Response`` spares FastAPI validating it again in a second
    worker thread."""
    outcome = service.run(user, body.sql, body.authorization, source)
    result = QueryResultPublic.from_outcome(outcome,
                                            f"queries/{outcome.query_id}/pages/{{page}}")
    return Response(content=result.model_dump_json(), media_type="application/json")


@router.get(
    "/{query_id}/pages/{page}",
    response_class=Response,
    responses={200: {"content": {MEDIA_TYPE: {}}, "description": "One Arrow IPC stream."},
               404: {"model": ErrorPublic}},
)
def get_page(user: CurrentUser, service: Service,
             query_id: str = Path(pattern=r"^[0-9a-f]{32}$"),
             page: int = Path(ge=0)) -> Response:
    """One page of a result (only its owner may read it, until it expires)."""
    data = service.page(user, query_id, page)
    return Response(content=memoryview(data), media_type=MEDIA_TYPE,
                    headers={"Cache-Control": "no-store", "X-Shuyu-Page": str(page)})
