"""The data requests queue: analysts' requests for data outside their scope, decided here.

Approving grows the agreement's scope by what was asked (the catalog records both in one
ledger batch); refusing needs a reason, which the analyst sees.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.datastructures import FormData

from hub.catalog import validation as v
from hub.catalog.enums import AccessMode
from hub.catalog.states import DataRequestStatus
from hub.console.deps import CheckedForm, CurrentActor, CurrentUser, Service
from hub.console.pages import on_error, render
from hub.console.routes import API_RESPONSES, FORM_RESPONSES, PAGE_RESPONSES, see_other
from hub.console.schemas import DataRequestPublic, DecisionIn, ReasonIn

router = APIRouter(tags=["data requests"])
RequestId = Annotated[str, Path(min_length=1, max_length=60)]


def _queue(request: Request, values: FormData, error: str | None,
           status: int = 200) -> HTMLResponse:
    catalog = request.app.state.service.catalog
    everything = catalog.list_data_requests()
    pending = [r for r in everything if r.status is DataRequestStatus.PENDING]
    decided = [r for r in reversed(everything) if r.status is not DataRequestStatus.PENDING]
    parts = request.url.path.rstrip("/").split("/")
    target = parts[-2] if values and len(parts) >= 2 else None
    return render(request, "requests.html", status=status, values=values, error=error,
                  pending=pending, decided=decided[:50], modes=list(AccessMode),
                  target=target, form=parts[-1] if values else None)


@router.get("/requests", response_class=HTMLResponse, responses=PAGE_RESPONSES)
def requests_page(request: Request, user: CurrentUser) -> HTMLResponse:
    return _queue(request, FormData(), None)


@router.post("/requests/{request_id}/approve", response_class=HTMLResponse,
             responses=FORM_RESPONSES, dependencies=[Depends(on_error(_queue)), CheckedForm])
def approve(request_id: RequestId, form: Annotated[DecisionIn, Form()], actor: CurrentActor,
            service: Service) -> RedirectResponse:
    mode = v.choice(AccessMode, form.access_mode, "access mode") if form.access_mode else None
    eps = v.epsilon(form.epsilon) if form.epsilon.strip() else None
    service.catalog.approve_data_request(actor, request_id, form.reason, mode, eps)
    return see_other(f"{service.config.service_prefix}requests?notice=approved")


@router.post("/requests/{request_id}/refuse", response_class=HTMLResponse,
             responses=FORM_RESPONSES, dependencies=[Depends(on_error(_queue)), CheckedForm])
def refuse(request_id: RequestId, form: Annotated[ReasonIn, Form()], actor: CurrentActor,
           service: Service) -> RedirectResponse:
    service.catalog.refuse_data_request(actor, request_id, form.reason)
    return see_other(f"{service.config.service_prefix}requests?notice=refused")


@router.get("/api/requests", response_model=list[DataRequestPublic], responses=API_RESPONSES)
def requests_api(user: CurrentUser, service: Service) -> list[DataRequestPublic]:
    return [DataRequestPublic(
        id=r.id, authorization=r.authorization, requester=r.requester, dataset=r.dataset,
        columns=list(r.columns), reason=r.reason, status=str(r.status),
        requested_at=r.requested_at.isoformat(), decided_by=r.decided_by,
        decision_reason=r.decision_reason) for r in service.catalog.list_data_requests()]
