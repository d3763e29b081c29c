"""Explorer pages: filtered, paged events; one event with its proof; evidence bundles."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from ledger.console.explorer import PAGE_SIZE, SignedView, explore
from ledger.console.filters import FilterForm, parse_indexes
from ledger.console.i18n import Message
from ledger.evidence import MAX_ENTRIES, build_evidence
from ledger.exceptions import LedgerError
from ledger.index import entry_types, iter_matching, subject_values
from ledger.service.deps import ReaderDep
from ledger.service.pages.common import (
    HTML_RESPONSES,
    RegulatorDep,
    check_csrf,
    console_state,
    render,
)

router = APIRouter(prefix="/console", tags=["console"])

Text = Annotated[str | None, Query(max_length=400)]
Before = Annotated[int | None, Query(ge=1, le=2**62, description="Show entries below this index.")]
Limit = Annotated[int, Query(ge=1, le=200)]
ZIP = {200: {"content": {"application/zip": {}}, "description": "An evidence bundle."}}


def _form(operator: str | None, analyst: str | None, authorization: str | None,
          dataset: str | None, type: str | None, since: str | None,
          until: str | None) -> FilterForm:
    return FilterForm.parse({"operator": operator, "analyst": analyst,
                             "authorization": authorization, "dataset": dataset, "type": type,
                             "since": since, "until": until})


@router.get("/events", responses=HTML_RESPONSES, summary="Ledger explorer (HTML)")
def events_page(request: Request, reader: ReaderDep, user: RegulatorDep,
                operator: Text = None, analyst: Text = None, authorization: Text = None,
                dataset: Text = None, type: Text = None, since: Text = None, until: Text = None,
                before: Before = None, limit: Limit = PAGE_SIZE) -> Response:
    form = _form(operator, analyst, authorization, dataset, type, since, until)
    log = reader.log
    index = console_state(request).index(log)
    page = None
    if not form.errors:
        page = explore(log, index, form.filter, before, limit)
    choices = {k: subject_values(index.reader, k) for k in
               ("operator", "analyst", "authorization", "dataset")}
    kinds = entry_types(index.reader)
    families = sorted({k.split(".")[0] + ".*" for k in kinds if "." in k})
    return render(request, "events.html", 400 if form.errors else 200, user=user, form=form,
                  page=page, choices=choices, types=kinds + families,
                  max_entries=MAX_ENTRIES, before=before)


class EventPublic(BaseModel):
    index: int
    leaf_hash: str = Field(description="SHA-256(0x00 ‖ stored bytes), base64.")
    entry: dict[str, Any] | None
    verified: bool = Field(description="Included in the signed tree, proof checked server-side.")
    problem: str | None
    subjects: list[list[str]] = Field(description="(key, value) pairs the entry names.")


class EventsPublic(BaseModel):
    tree_size: int
    events: list[EventPublic]
    next_before: int | None = Field(description="Pass as `before` for the next (older) page.")


class ProblemPublic(BaseModel):
    detail: str
    errors: dict[str, str] = Field(default_factory=dict)


@router.get("/api/events", response_model=EventsPublic,
            responses={400: {"model": ProblemPublic}}, summary="Filtered events (JSON)")
def events_json(request: Request, reader: ReaderDep, user: RegulatorDep,
                operator: Text = None, analyst: Text = None, authorization: Text = None,
                dataset: Text = None, type: Text = None, since: Text = None, until: Text = None,
                before: Before = None, limit: Limit = PAGE_SIZE) -> Any:
    from fastapi.responses import JSONResponse

    form = _form(operator, analyst, authorization, dataset, type, since, until)
    if form.errors:
        return JSONResponse({"detail": "the filter was not applied",
                             "errors": {k: str(m) for k, m in form.errors.items()}}, 400)
    page = explore(reader.log, console_state(request).index(reader.log), form.filter, before,
                   limit)
    return EventsPublic(
        tree_size=page.tree_size, next_before=page.next_before,
        events=[EventPublic(index=e.index, leaf_hash=e.leaf_hash, entry=e.entry,
                            verified=e.verified, problem=e.problem,
                            subjects=[list(s) for s in e.subjects]) for e in page.events],
    )


@router.get("/events/{index}", responses=HTML_RESPONSES, summary="One event with its proof")
def event_page(request: Request, index: Annotated[int, Path(ge=0, le=2**62)],
               reader: ReaderDep, user: RegulatorDep) -> Response:
    view = SignedView(reader.log)
    if index >= view.size:
        return render(request, "error.html", 404, user=user, title_key="notfound.title",
                      detail=Message("err.not_in_tree", {"index": index, "size": view.size}))
    from ledger.console.explorer import _operators

    event = view.event(index, _operators(console_state(request).index(reader.log)))
    return render(request, "event.html", user=user, event=event, view=view,
                  vkey=reader.log.verifier().vkey())


@router.get("/events/{index}/raw", summary="The exact stored bytes of one entry",
            responses={200: {"content": {"application/json": {}}}, 404: HTML_RESPONSES[404]})
def event_raw(request: Request, index: Annotated[int, Path(ge=0, le=2**62)],
              reader: ReaderDep, user: RegulatorDep) -> Response:
    size = reader.tree_size()
    rows = reader.log.store.entries(index, index + 1) if index < size else []
    if not rows:
        return render(request, "error.html", 404, user=user, title_key="notfound.title",
                      detail=Message("err.not_in_tree", {"index": index, "size": size}))
    return Response(rows[0][1], media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="entry-{index}.json"'})


def _bundle(request: Request, reader: ReaderDep, user: Any, indexes: list[int],
            selection: str) -> Response:
    try:
        bundle = build_evidence(reader.log, indexes, selection, generated_by=user.name)
    except LedgerError as e:
        return render(request, "error.html", 400, user=user, title_key="error.title",
                      detail=str(e))
    name = f"evidence-{bundle.size}-{len(bundle.indexes)}.zip"
    return Response(bundle.data, media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/evidence.zip", responses={**HTML_RESPONSES, **ZIP},
            summary="Evidence bundle of one entry or of a filter's result")
def evidence_of_filter(request: Request, reader: ReaderDep, user: RegulatorDep,
                       index: Annotated[int | None, Query(ge=0, le=2**62)] = None,
                       operator: Text = None, analyst: Text = None, authorization: Text = None,
                       dataset: Text = None, type: Text = None, since: Text = None,
                       until: Text = None) -> Response:
    if index is not None:
        return _bundle(request, reader, user, [index], f"entry {index}")
    form = _form(operator, analyst, authorization, dataset, type, since, until)
    if form.errors:
        return render(request, "error.html", 400, user=user, title_key="filter.invalid",
                      detail="; ".join(m.render("en") for m in form.errors.values()))
    log = reader.log
    idx = console_state(request).index(log)
    size = reader.tree_size()
    idx.catch_up(size)
    chosen = []
    for i in iter_matching(idx.reader, form.filter, size):
        chosen.append(i)
        if len(chosen) > MAX_ENTRIES:
            return render(request, "error.html", 400, user=user, title_key="error.title",
                          detail=Message("err.too_many", {"count": f"> {MAX_ENTRIES}",
                                                          "max": MAX_ENTRIES}))
    if not chosen:
        return render(request, "error.html", 400, user=user, title_key="error.title",
                      detail=Message("err.nothing"))
    return _bundle(request, reader, user, chosen, form.describe())


@router.post("/evidence", responses={**HTML_RESPONSES, **ZIP},
             summary="Evidence bundle of the entries selected in the explorer",
             openapi_extra={"requestBody": {"content": {"application/x-www-form-urlencoded": {
                 "schema": {"type": "object", "properties": {
                     "index": {"type": "array", "items": {"type": "string"}},
                     "csrf": {"type": "string"}}}}}}})
async def evidence_of_selection(request: Request, reader: ReaderDep,
                                user: RegulatorDep) -> Response:
    from starlette.concurrency import run_in_threadpool

    form = await request.form()
    if not check_csrf(request, str(form.get("csrf") or "")):
        return render(request, "error.html", 403, user=user, title_key="error.title",
                      detail=Message("err.csrf"))
    raw = [str(v) for v in form.getlist("index")]
    indexes, error = parse_indexes(raw, MAX_ENTRIES)
    if error is None and not indexes:
        error = Message("err.nothing")
    if error is not None:
        return render(request, "error.html", 400, user=user, title_key="error.title",
                      detail=error)
    return await run_in_threadpool(_bundle, request, reader, user, indexes,
                                   f"indexes {indexes}")
