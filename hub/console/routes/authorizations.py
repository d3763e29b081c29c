"""Authorization agreements: list, create, and change (term, scope, analysts, status).

Every refusal of the rules (a 核心 or 不予开放 dataset, 重要 data asked row-level or for an
operator without a security officer, a term past five years, an analyst of another operator,
a change to an ended agreement) comes from the catalog service with its reason, and the form is
shown again with that reason and what was typed. Revoking also ends access and destroys the
analysts' working volumes (``ending.py``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.datastructures import FormData

from hub.catalog import policies
from hub.catalog import validation as v
from hub.catalog.agreements import ScopeRequest
from hub.catalog.enums import AccessMode, UseClass
from hub.catalog.exceptions import InvalidInput
from hub.catalog.states import AuthorizationStatus
from hub.console.deps import CheckedForm, CurrentActor, CurrentUser, Service
from hub.console.pages import day, on_error, render
from hub.console.routes import API_RESPONSES, FORM_RESPONSES, PAGE_RESPONSES, see_other
from hub.console.schemas import (
    AnalystsChangeIn,
    AuthorizationIn,
    AuthorizationPublic,
    ExtendIn,
    ReasonIn,
    ScopeIn,
)

router = APIRouter(tags=["authorizations"])
AuthId = Annotated[str, Path(min_length=1, max_length=60)]


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.replace("，", ",").split(",") if n.strip()]


def _epsilon(text: str, dataset: str) -> float | None:
    return v.epsilon(text.strip(), dataset) if text.strip() else None


def _mode(text: str) -> AccessMode | None:
    return v.choice(AccessMode, text, "access mode") if text.strip() else None


# --- list and create ---------------------------------------------------------------------------


@router.get("/authorizations", response_class=HTMLResponse, responses=PAGE_RESPONSES)
def authorizations_page(request: Request, user: CurrentUser, service: Service,
                        status: str = "") -> HTMLResponse:
    chosen = AuthorizationStatus(status) if status in set(AuthorizationStatus) else None
    return render(request, "authorizations.html",
                  authorizations=service.catalog.list_authorizations(status=chosen),
                  statuses=list(AuthorizationStatus), status_filter=status)


def _new_page(request: Request, values: FormData, error: str | None,
              status: int = 200) -> HTMLResponse:
    catalog = request.app.state.service.catalog
    datasets = catalog.list_datasets()
    typed = {
        "columns": values.getlist("scope_columns"), "modes": values.getlist("scope_mode"),
        "epsilons": values.getlist("scope_epsilon"), "names": values.getlist("scope_dataset")}
    scope_values = {"columns": [], "modes": [], "epsilons": []}
    for d in datasets:
        i = typed["names"].index(d.name) if d.name in typed["names"] else None
        pick = lambda key, default: (typed[key][i] if i is not None and i < len(typed[key])  # noqa: E731
                                     else default)
        scope_values["columns"].append(pick("columns", ""))
        scope_values["modes"].append(pick("modes", str(policies.default_access_mode(d))))
        scope_values["epsilons"].append(pick("epsilons", f"{policies.DEFAULT_EPSILON:g}"))
    return render(request, "authorization_new.html", status=status, values=values, error=error,
                  operators=catalog.list_operators(), analysts=catalog.list_analysts(),
                  datasets=datasets, scope_values=scope_values, use_classes=list(UseClass),
                  modes=list(AccessMode), today=day(catalog.now()))


@router.get("/authorizations/new", response_class=HTMLResponse, responses=PAGE_RESPONSES)
def new_authorization_page(request: Request, user: CurrentUser) -> HTMLResponse:
    return _new_page(request, FormData(), None)


def scope_requests(form: AuthorizationIn) -> list[ScopeRequest]:
    chosen = set(form.datasets)
    rows = {name: i for i, name in enumerate(form.scope_dataset)}
    unknown = sorted(chosen - set(rows))
    if unknown:
        raise InvalidInput(f"dataset(s) {', '.join(unknown)} are not on the form")
    out = []
    for name in form.datasets:
        i = rows[name]
        cell = lambda xs: xs[i] if i < len(xs) else ""  # noqa: E731
        columns = _names(cell(form.scope_columns))
        out.append(ScopeRequest(name, tuple(columns) if columns else None,
                                _mode(cell(form.scope_mode)),
                                _epsilon(cell(form.scope_epsilon), name)))
    return out


def _min_group(text: str) -> int:
    try:
        return int(text.strip() or policies.DEFAULT_MIN_GROUP_SIZE)
    except ValueError:
        raise InvalidInput(f"minimum group size {text!r} is not a whole number") from None


@router.post("/authorizations", response_class=HTMLResponse, responses=FORM_RESPONSES,
             dependencies=[Depends(on_error(_new_page)), CheckedForm])
def create_authorization(form: Annotated[AuthorizationIn, Form()], actor: CurrentActor,
                         service: Service) -> RedirectResponse:
    record = service.catalog.create_authorization(
        actor, operator=form.operator, analysts=form.analysts, scope=scope_requests(form),
        scenario=form.scenario, use_class=form.use_class,
        starts_at=v.parse_time(form.starts_at, "start"),
        ends_at=v.parse_time(form.ends_at, "end", end_of_day=True),
        min_group_size=_min_group(form.min_group_size))
    return see_other(f"{service.config.service_prefix}authorizations/{record.id}"
                     "?notice=authorization_created")


# --- one agreement ---------------------------------------------------------------------------


def _detail(request: Request, values: FormData, error: str | None, status: int = 200,
            warning: str | None = None) -> HTMLResponse:
    service = request.app.state.service
    auth = service.catalog.get_authorization(request.path_params["auth_id"])
    form = request.url.path.rstrip("/").rsplit("/", 1)[-1] if values else None
    return render(request, "authorization.html", status=status, values=values, error=error,
                  warning=warning, form=form, auth=auth, datasets=service.catalog.list_datasets(),
                  modes=list(AccessMode), ending=service.ending_of(auth.id),
                  latest_end=policies.add_years(auth.starts_at, policies.MAX_TERM_YEARS))


@router.get("/authorizations/{auth_id}", response_class=HTMLResponse, responses=PAGE_RESPONSES)
def authorization_page(request: Request, auth_id: AuthId, user: CurrentUser) -> HTMLResponse:
    return _detail(request, FormData(), None)


def _back(service, auth_id: str, notice: str) -> RedirectResponse:
    return see_other(f"{service.config.service_prefix}authorizations/{auth_id}?notice={notice}")


DETAIL_FORM = [Depends(on_error(_detail)), CheckedForm]


@router.post("/authorizations/{auth_id}/extend", response_class=HTMLResponse,
             responses=FORM_RESPONSES, dependencies=DETAIL_FORM)
def extend(auth_id: AuthId, form: Annotated[ExtendIn, Form()], actor: CurrentActor,
           service: Service) -> RedirectResponse:
    service.catalog.extend(actor, auth_id, v.parse_time(form.ends_at, "new end", end_of_day=True),
                           form.reason)
    return _back(service, auth_id, "extended")


@router.post("/authorizations/{auth_id}/scope", response_class=HTMLResponse,
             responses=FORM_RESPONSES, dependencies=DETAIL_FORM)
def change_scope(auth_id: AuthId, form: Annotated[ScopeIn, Form()], actor: CurrentActor,
                 service: Service) -> RedirectResponse:
    changes = []
    if form.dataset.strip():
        columns = _names(form.columns)
        changes.append(ScopeRequest(form.dataset.strip(), tuple(columns) if columns else None,
                                    _mode(form.access_mode),
                                    _epsilon(form.epsilon, form.dataset.strip())))
    service.catalog.change_scope(actor, auth_id, reason=form.reason, set_scope=changes,
                                 remove=form.remove)
    return _back(service, auth_id, "scope_changed")


@router.post("/authorizations/{auth_id}/analysts", response_class=HTMLResponse,
             responses=FORM_RESPONSES, dependencies=DETAIL_FORM)
def change_analysts(auth_id: AuthId, form: Annotated[AnalystsChangeIn, Form()],
                    actor: CurrentActor, service: Service) -> RedirectResponse:
    service.catalog.change_analysts(actor, auth_id, reason=form.reason, add=_names(form.add),
                                    remove=form.remove)
    return _back(service, auth_id, "analysts_changed")


@router.post("/authorizations/{auth_id}/suspend", response_class=HTMLResponse,
             responses=FORM_RESPONSES, dependencies=DETAIL_FORM)
def suspend(auth_id: AuthId, form: Annotated[ReasonIn, Form()], actor: CurrentActor,
            service: Service) -> RedirectResponse:
    service.catalog.suspend(actor, auth_id, form.reason)
    return _back(service, auth_id, "suspended")


@router.post("/authorizations/{auth_id}/resume", response_class=HTMLResponse,
             responses=FORM_RESPONSES, dependencies=DETAIL_FORM)
def resume(auth_id: AuthId, form: Annotated[ReasonIn, Form()], actor: CurrentActor,
           service: Service) -> RedirectResponse:
    service.catalog.resume(actor, auth_id, form.reason)
    return _back(service, auth_id, "resumed")


@router.post("/authorizations/{auth_id}/revoke", response_class=HTMLResponse,
             responses=FORM_RESPONSES, dependencies=DETAIL_FORM)
def revoke(auth_id: AuthId, form: Annotated[ReasonIn, Form()], actor: CurrentActor,
           service: Service) -> RedirectResponse:
    _, report, problem = service.revoke(actor, auth_id, form.reason)
    done = report is not None and report.complete
    return _back(service, auth_id, "revoked" if done else "revoked_pending")


@router.post("/authorizations/{auth_id}/destroy", response_class=HTMLResponse,
             responses=FORM_RESPONSES, dependencies=DETAIL_FORM)
def destroy(auth_id: AuthId, form: Annotated[ReasonIn, Form()], actor: CurrentActor,
            service: Service) -> RedirectResponse:
    service.end_authorization(actor, auth_id)
    return _back(service, auth_id, "destroyed")


@router.get("/api/authorizations", response_model=list[AuthorizationPublic],
            responses=API_RESPONSES)
def authorizations_api(user: CurrentUser, service: Service) -> list[AuthorizationPublic]:
    now = service.catalog.now()
    endings = {e.authorization: e for e in service.endings.store.all()}
    return [
        AuthorizationPublic(
            id=a.id, operator=a.operator, status=str(a.status),
            effective_status=str(a.effective_status(now)), scenario=a.scenario,
            use_class=str(a.use_class), starts_at=a.starts_at.isoformat(),
            ends_at=a.ends_at.isoformat(), analysts=sorted(a.analysts),
            scope=[s.to_json() for s in a.scope],
            data_destroyed=endings[a.id].done if a.id in endings else None)
        for a in service.catalog.list_authorizations()
    ]
