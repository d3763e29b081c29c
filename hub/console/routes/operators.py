"""Operators (运营机构) and analyst accounts.

Creating an analyst registers them in the catalog, then creates their hub account (user,
analysts group, NativeAuthenticator password); the temporary password is shown once on the
answer page and nowhere else. An analyst whose hub account could not be made (the hub was
down) shows a button that makes it later.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.datastructures import FormData

from hub.console.deps import CheckedForm, CurrentActor, CurrentUser, Service
from hub.console.errors import ConsoleError
from hub.console.pages import on_error, render
from hub.console.routes import API_RESPONSES, FORM_RESPONSES, PAGE_RESPONSES, see_other
from hub.console.schemas import AnalystIn, OperatorIn, OperatorPublic
from hub.console.service import HubAccount

router = APIRouter(tags=["operators"])


def _accounts(request: Request, names: list[str]) -> dict[str, HubAccount | None]:
    service = request.app.state.service
    out: dict[str, HubAccount | None] = {}
    for name in names:
        try:
            out[name] = service.hub_account(name)
        except ConsoleError:
            out[name] = None
    return out


def _operators_page(request: Request, values: FormData, error: str | None,
                    status: int = 200, form: str | None = None) -> HTMLResponse:
    catalog = request.app.state.service.catalog
    analysts = catalog.list_analysts()
    by_operator: dict[str, list[str]] = {}
    for a in analysts:
        by_operator.setdefault(a.operator, []).append(a.user_name)
    if form is None and values:
        form = "analyst" if "user_name" in values else "operator"
    return render(request, "operators.html", status=status, values=values, error=error,
                  form=form, operators=catalog.list_operators(), analysts=analysts,
                  analysts_by_operator=by_operator,
                  accounts=_accounts(request, [a.user_name for a in analysts]))


@router.get("/operators", response_class=HTMLResponse, responses=PAGE_RESPONSES)
def operators_page(request: Request, user: CurrentUser) -> HTMLResponse:
    return _operators_page(request, FormData(), None)


@router.post("/operators", response_class=HTMLResponse, responses=FORM_RESPONSES,
             dependencies=[Depends(on_error(_operators_page)), CheckedForm])
def create_operator(form: Annotated[OperatorIn, Form()], actor: CurrentActor,
                    service: Service) -> RedirectResponse:
    service.catalog.create_operator(actor, form.name, form.credit_code or None,
                                    form.security_officer or None)
    return see_other(f"{service.config.service_prefix}operators?notice=operator_created")


@router.post("/operators/officer", response_class=HTMLResponse, responses=FORM_RESPONSES,
             dependencies=[Depends(on_error(_operators_page)), CheckedForm])
def set_officer(operator: Annotated[str, Form(max_length=4000)],
                security_officer: Annotated[str, Form(max_length=4000)],
                actor: CurrentActor, service: Service) -> RedirectResponse:
    service.catalog.set_security_officer(actor, operator, security_officer)
    return see_other(f"{service.config.service_prefix}operators?notice=officer_set")


@router.post("/analysts", response_class=HTMLResponse, responses=FORM_RESPONSES,
             dependencies=[Depends(on_error(_operators_page)), CheckedForm])
def create_analyst(request: Request, form: Annotated[AnalystIn, Form()], actor: CurrentActor,
                   service: Service) -> HTMLResponse:
    analyst, password = service.create_analyst(actor, form.user_name, form.operator,
                                                form.display_name)
    return render(request, "analyst_created.html", status=201, analyst=analyst,
                  password=password)


@router.post("/analysts/account", response_class=HTMLResponse, responses=FORM_RESPONSES,
             dependencies=[Depends(on_error(_operators_page)), CheckedForm])
def create_account(request: Request, user_name: Annotated[str, Form(max_length=200)],
                   actor: CurrentActor, service: Service) -> HTMLResponse:
    password = service.create_hub_account(actor, user_name)
    return render(request, "analyst_created.html", status=201,
                  analyst=service.catalog.get_analyst(user_name), password=password)


@router.get("/api/operators", response_model=list[OperatorPublic], responses=API_RESPONSES)
def operators_api(user: CurrentUser, service: Service) -> list[OperatorPublic]:
    analysts = service.catalog.list_analysts()
    return [OperatorPublic(name=o.name, credit_code=o.credit_code,
                           security_officer=o.security_officer,
                           analysts=[a.user_name for a in analysts if a.operator == o.name])
            for o in service.catalog.list_operators()]
