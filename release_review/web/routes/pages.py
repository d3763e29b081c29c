"""Server-rendered pages: the reviewers' queue and request pages, the analysts' downloads.

Every route identifies a browser session through hub OAuth (``deps.BrowserUser``) and calls the
service, which checks who may see what and writes views, votes, comments and downloads to the
ledger before anything is shown or sent. Forms post ``application/x-www-form-urlencoded`` with
the session's form token; answers redirect back to the page (no JavaScript anywhere).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from release_review.exceptions import InvalidInput
from release_review.permissions import REVIEWERS, ReviewUser
from release_review.states import STATUS_MEANING, STATUS_OWNER
from release_review.web.deps import BrowserUser, Identity, Service, session_token
from release_review.web.previews import preview

router = APIRouter(tags=["pages"])
TEXT_TYPES = {".txt": "text/plain", ".md": "text/plain", ".markdown": "text/plain",
              ".csv": "text/plain", ".json": "text/plain", ".html": "text/plain",
              ".htm": "text/plain"}


def render(request: Request, template: str, user: ReviewUser, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    identity = request.app.state.identity
    token = session_token(request) or ""
    return request.app.state.templates.TemplateResponse(
        request, template, {"user": user, "prefix": request.app.state.config.service_prefix,
                            "form_token": identity.form_token(token) if token else "",
                            "meaning": STATUS_MEANING, "owner": STATUS_OWNER, **context},
        status_code=status_code)


async def form(request: Request, identity: Identity) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", "replace")
    fields = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
    identity.check_form_token(session_token(request), fields.get("_xsrf"))
    return fields


@router.get("/", response_class=HTMLResponse)
def home(request: Request, user: BrowserUser, service: Service) -> Any:
    if user.holds(REVIEWERS):
        return render(request, "queue.html", user, queue=service.queue(user),
                      recent=service.recent(user))
    return RedirectResponse(request.app.state.config.service_prefix + "mine", status_code=303)


@router.get("/mine", response_class=HTMLResponse)
def mine(request: Request, user: BrowserUser, service: Service) -> Any:
    return render(request, "mine.html", user, requests=service.my_requests(user),
                  releases=service.downloadable(user))


@router.get("/requests/{request_id}", response_class=HTMLResponse)
def request_page(request_id: str, request: Request, user: BrowserUser, service: Service) -> Any:
    detail = service.open_request(user, request_id)
    previews = {a.name: preview(a.name, detail.contents.get(a.name),
                                a.released_size or a.size) for a in detail.artifacts}
    return render(request, "request.html", user, d=detail, r=detail.request,
                  previews=previews, quote=quote)


@router.get("/requests/{request_id}/files/{name}")
def file(request_id: str, name: str, request: Request, user: BrowserUser,
         service: Service) -> Response:
    artifact, data = service.open_file(user, request_id, name)
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    media = "image/png" if suffix == ".png" else TEXT_TYPES.get(suffix,
                                                                 "application/octet-stream")
    headers = {"Content-Disposition": "inline" if media != "application/octet-stream"
               else f"attachment; filename*=UTF-8''{quote(name)}"}
    return Response(data, media_type=media + ("; charset=utf-8" if media == "text/plain"
                                              else ""), headers=headers)


@router.post("/requests/{request_id}/vote")
async def vote(request_id: str, request: Request, user: BrowserUser, service: Service,
               identity: Identity) -> Any:
    fields = await form(request, identity)
    decision = fields.get("decision", "")
    if not decision:
        raise InvalidInput("choose approve, reject or return")
    await run_in_threadpool(service.vote, user, request_id, decision, fields.get("comment", ""))
    return RedirectResponse(f"{request.app.state.config.service_prefix}requests/{request_id}",
                            status_code=303)


@router.post("/requests/{request_id}/comment")
async def comment(request_id: str, request: Request, user: BrowserUser, service: Service,
                  identity: Identity) -> Any:
    fields = await form(request, identity)
    await run_in_threadpool(service.comment, user, request_id, fields.get("text", ""))
    return RedirectResponse(f"{request.app.state.config.service_prefix}requests/{request_id}",
                            status_code=303)


@router.get("/releases/{request_id}/download")
def download(request_id: str, user: BrowserUser, service: Service) -> Response:
    name, data = service.download(user, request_id)
    return Response(data, media_type="application/zip",
                    headers={"Content-Disposition": f"attachment; filename=\"{name}\""})
