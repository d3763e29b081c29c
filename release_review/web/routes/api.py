"""The API the analyst client calls from the sandbox: upload, submit, status, DP, withdraw.

Every route identifies its caller by hub token with the release scope (``deps.ApiUser``) and
calls the service; none serves a file or a package. Checks run after the response
(``runner.CheckRunner``); the client polls ``GET requests/{id}`` until the status moves on.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status

from release_review.policies import SubmittedFile
from release_review.records import ReleaseRequest
from release_review.web.deps import ApiUser, Service
from release_review.web.schemas import (
    CommentIn,
    CommentPublic,
    DpIn,
    DpPublic,
    FileIn,
    RequestDetailPublic,
    RequestIn,
    RequestPublic,
    ResubmitIn,
    UploadPublic,
    WithdrawIn,
)

router = APIRouter(prefix="/api", tags=["api"])


def _files(files: list[FileIn]) -> list[SubmittedFile]:
    return [SubmittedFile(f.name, f.sha256, 0, f.media_type, f.released) for f in files]


def public(request: Request, r: ReleaseRequest) -> RequestPublic:
    prefix = request.app.state.config.service_prefix
    return RequestPublic(**{k: v for k, v in r.to_json().items() if k in RequestPublic.model_fields},
                         review_url=f"{prefix}mine#{r.id}")


def _schedule(request: Request, r: ReleaseRequest) -> None:
    request.app.state.runner.schedule(r.id)


@router.post("/uploads", response_model=UploadPublic, status_code=status.HTTP_201_CREATED)
async def upload(request: Request, user: ApiUser, service: Service) -> Any:
    """The request body (any bytes) into quarantine; answers its sha256 for ``requests``."""
    stored = await service.upload_async(user, request.stream())
    return UploadPublic(sha256=stored.sha256, size=stored.size)


@router.post("/requests", response_model=RequestPublic, status_code=status.HTTP_201_CREATED)
def submit(body: RequestIn, request: Request, user: ApiUser, service: Service) -> Any:
    r = service.submit(user, title=body.title, purpose=body.purpose, context=body.context,
                       files=_files(body.files), authorization=body.authorization)
    _schedule(request, r)
    return public(request, r)


@router.get("/requests", response_model=list[RequestPublic])
def mine(request: Request, user: ApiUser, service: Service) -> Any:
    return [public(request, r) for r in service.my_requests(user)]


@router.get("/requests/{request_id}", response_model=RequestDetailPublic)
def one(request_id: str, request: Request, user: ApiUser, service: Service) -> Any:
    detail = service.author_view(user, request_id)
    out = detail.to_json()
    return RequestDetailPublic(**{**out, **public(request, detail.request).model_dump()})


@router.post("/requests/{request_id}/withdraw", response_model=RequestPublic)
def withdraw(request_id: str, body: WithdrawIn, request: Request, user: ApiUser,
             service: Service) -> Any:
    return public(request, service.withdraw(user, request_id, body.reason))


@router.post("/requests/{request_id}/resubmit", response_model=RequestPublic)
def resubmit(request_id: str, body: ResubmitIn, request: Request, user: ApiUser,
             service: Service) -> Any:
    r = service.resubmit(user, request_id, _files(body.files), body.note, body.context)
    _schedule(request, r)
    return public(request, r)


@router.post("/requests/{request_id}/comments", response_model=CommentPublic,
             status_code=status.HTTP_201_CREATED)
def comment(request_id: str, body: CommentIn, user: ApiUser, service: Service) -> Any:
    return CommentPublic(**service.comment(user, request_id, body.text).to_json())


@router.post("/dp", response_model=DpPublic, status_code=status.HTTP_201_CREATED)
def dp(body: DpIn, request: Request, user: ApiUser, service: Service) -> Any:
    r, result = service.submit_dp(user, body.spec, title=body.title, purpose=body.purpose,
                                  context=body.context, authorization=body.authorization)
    _schedule(request, r)
    return DpPublic(request=public(request, r), result=result)
