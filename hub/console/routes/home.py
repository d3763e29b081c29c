"""The console's home page: counts, pending requests, ended agreements still holding data."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from hub.catalog.states import AuthorizationStatus, DataRequestStatus
from hub.console.deps import CurrentUser, Service
from hub.console.pages import render
from hub.console.routes import PAGE_RESPONSES

router = APIRouter(tags=["pages"])


@router.get("/", response_class=HTMLResponse, responses=PAGE_RESPONSES)
def home(request: Request, user: CurrentUser, service: Service) -> HTMLResponse:
    catalog = service.catalog
    counts = {
        "datasets": len(catalog.list_datasets()),
        "operators": len(catalog.list_operators()),
        "active": len(catalog.list_authorizations(status=AuthorizationStatus.ACTIVE)),
        "pending": len(catalog.list_data_requests(status=DataRequestStatus.PENDING)),
    }
    return render(request, "home.html", counts=counts, pending_endings=service.endings.due())
