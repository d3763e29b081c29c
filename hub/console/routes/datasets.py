"""Datasets: the catalog list, registering a new one (upload → column classes → load), details.

The upload form posts the file into a hidden frame while a second frame shows the upload's
status page, which refreshes itself every second (``<meta http-equiv="refresh">``) with a
``<progress>`` bar: progress without any script. ``/api/uploads/{id}`` gives the same status as
JSON.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.datastructures import FormData

from hub.catalog.enums import Grade, IdentifierClass, OpenAttribute, UpdateFrequency
from hub.console import cookies
from hub.console.deps import CheckedForm, CurrentActor, CurrentUser, Service
from hub.console.errors import UploadNotReady
from hub.console.pages import on_error, render
from hub.console.routes import API_RESPONSES, FORM_RESPONSES, PAGE_RESPONSES, see_other
from hub.console.schemas import ColumnPublic, DatasetPublic, RegistrationIn, UploadPublic
from hub.console.service import RegistrationSpec, parse_positions
from hub.console.uploads import Upload

router = APIRouter(tags=["datasets"])
UploadId = Annotated[str, Path(min_length=1, max_length=64)]
UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["_csrf", "file"],
    "properties": {"_csrf": {"type": "string", "description": "The form's token; must come "
                                                                "before the file."},
                   "file": {"type": "string", "format": "binary",
                            "description": "A CSV or Parquet file."}}}}}}}


@router.get("/datasets", response_class=HTMLResponse, responses=PAGE_RESPONSES)
def datasets_page(request: Request, user: CurrentUser, service: Service) -> HTMLResponse:
    return render(request, "datasets.html", datasets=service.catalog.list_datasets(),
                  tables=service.domain_tables(), uploads=service.uploads.list()[:10])


@router.get("/datasets/new", response_class=HTMLResponse, responses=PAGE_RESPONSES)
def new_dataset_page(request: Request, user: CurrentUser, service: Service) -> HTMLResponse:
    upload = service.uploads.new(user.name)
    return render(request, "upload_new.html", upload=upload,
                  limit=f"{service.config.max_upload_bytes:,}")


@router.get("/datasets/{name}", response_class=HTMLResponse, responses=PAGE_RESPONSES)
def dataset_page(request: Request, name: Annotated[str, Path(max_length=100)],
                 user: CurrentUser, service: Service) -> HTMLResponse:
    ds = service.catalog.get_dataset(name)
    return render(request, "dataset.html", ds=ds, table=service.domain_tables().get(name))


@router.get("/api/datasets", response_model=list[DatasetPublic], responses=API_RESPONSES)
def datasets_api(user: CurrentUser, service: Service) -> list[DatasetPublic]:
    return [
        DatasetPublic(
            name=d.name, title=d.title, provider=d.provider, grade=str(d.grade),
            open_attribute=str(d.open_attribute), registration_code=d.registration_code,
            acquired_on=d.acquired_on.isoformat() if d.acquired_on else None, version=d.version,
            columns=[ColumnPublic(name=c.name, type=c.type,
                                  identifier_class=str(c.identifier_class),
                                  group_by_allowed=c.group_by_allowed, label=c.label)
                     for c in d.columns])
        for d in service.catalog.list_datasets()
    ]


# --- uploads ---------------------------------------------------------------------------------


def _upload_frame(request: Request, values: FormData, error: str, status: int) -> HTMLResponse:
    upload_id = request.path_params.get("upload_id", "")
    try:
        upload = request.app.state.service.uploads.get(upload_id)
    except Exception:  # noqa: BLE001 - an unknown id: the plain error page says so
        return render(request, "error.html", status=status, message=error)
    return render(request, "upload_status.html", status=status, upload=upload, frame=True)


@router.post("/uploads/{upload_id}", response_class=HTMLResponse, responses=PAGE_RESPONSES,
             openapi_extra=UPLOAD_BODY, dependencies=[Depends(on_error(_upload_frame))])
async def receive_upload(request: Request, upload_id: UploadId, user: CurrentUser,
                         service: Service) -> HTMLResponse:
    key, token = request.app.state.cookie_key, user.token
    upload = await service.uploads.receive(
        upload_id, request.headers.get("content-type"), request.headers.get("content-length"),
        request.stream(), lambda presented: cookies.csrf_ok(key, token, presented))
    return render(request, "upload_sink.html", upload=upload)


@router.get("/uploads/{upload_id}", response_class=HTMLResponse, responses=PAGE_RESPONSES)
def upload_page(request: Request, upload_id: UploadId, user: CurrentUser, service: Service,
                frame: bool = False) -> HTMLResponse:
    return render(request, "upload_status.html", upload=service.uploads.get(upload_id),
                  frame=frame)


@router.get("/api/uploads/{upload_id}", response_model=UploadPublic, responses=API_RESPONSES)
def upload_api(upload_id: UploadId, user: CurrentUser, service: Service) -> UploadPublic:
    return UploadPublic(**service.uploads.get(upload_id).to_json())


def _column_values(upload: Upload, values: FormData | None) -> dict[str, list]:
    sugg = upload.suggestions()
    if values is None or not values.getlist("column_name"):
        return {"names": [s.column for s in sugg], "labels": [""] * len(sugg),
                "classes": [str(s.identifier_class) for s in sugg],
                "group_by": [s.group_by_allowed for s in sugg]}
    n = len(sugg)
    pad = lambda xs: (list(xs) + [""] * n)[:n]  # noqa: E731
    checked = set(values.getlist("column_group_by"))
    return {"names": pad(values.getlist("column_name")),
            "labels": pad(values.getlist("column_label")),
            "classes": pad(values.getlist("column_class")),
            "group_by": [str(i) in checked for i in range(n)]}


def _register_page(request: Request, values: FormData, error: str | None,
                   status: int = 200) -> HTMLResponse:
    service = request.app.state.service
    upload = service.uploads.get(request.path_params["upload_id"])
    if upload.state != "ready":
        raise UploadNotReady(f"upload {upload.id} is {upload.state}; only an analysed upload "
                             "can be registered")
    return render(request, "register.html", status=status, upload=upload, values=values,
                  error=error, columns=upload.suggestions(),
                  col_values=_column_values(upload, values), grades=list(Grade),
                  open_attributes=list(OpenAttribute), classes=list(IdentifierClass),
                  frequencies=list(UpdateFrequency))


@router.get("/uploads/{upload_id}/register", response_class=HTMLResponse,
            responses=PAGE_RESPONSES)
def register_page(request: Request, upload_id: UploadId, user: CurrentUser) -> HTMLResponse:
    return _register_page(request, FormData(), None)


@router.post("/uploads/{upload_id}/register", response_class=HTMLResponse,
             responses=FORM_RESPONSES,
             dependencies=[Depends(on_error(_register_page)), CheckedForm])
def register(request: Request, upload_id: UploadId, form: Annotated[RegistrationIn, Form()],
             actor: CurrentActor, service: Service) -> RedirectResponse:
    spec = RegistrationSpec(
        name=form.name, provider=form.provider, grade=form.grade,
        open_attribute=form.open_attribute, title=form.title, description=form.description,
        registration_code=form.registration_code, acquired_on=form.acquired_on,
        update_frequency=form.update_frequency, shared_source=form.shared_source,
        consent_reference=form.consent_reference, column_names=form.column_name,
        column_labels=form.column_label, column_classes=form.column_class,
        group_by=parse_positions(form.column_group_by))
    record = service.register_upload(actor, upload_id, spec)
    prefix = service.config.service_prefix
    return see_other(f"{prefix}datasets/{record.name}?notice=dataset_registered")
