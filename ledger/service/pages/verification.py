"""The verification page: checkpoint, signature, cosignatures, this regulator's witness, and a
consistency check against the checkpoint this browser saw last (kept in a cookie)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel

from ledger.console.i18n import Message
from ledger.console.verification import (
    SEEN_COOKIE,
    Seen,
    check_witness_name,
    verification_view,
)
from ledger.exceptions import FormatError
from ledger.service.deps import ReaderDep
from ledger.service.pages.common import (
    HTML_RESPONSES,
    RegulatorDep,
    check_csrf,
    console_state,
    render,
)

router = APIRouter(prefix="/console", tags=["console"])


def _service_url(request: Request) -> str:
    """The ledger service's public base URL, for the cosign command shown to the regulator."""
    prefix = console_state(request).prefix
    return f"{request.url.scheme}://{request.url.netloc}{prefix}"


def _page(request: Request, reader: Any, user: Any, status: int = 200,
          notice: Message | None = None, error: Message | None = None) -> Response:
    seen = Seen.from_cookie(request.cookies.get(SEEN_COOKIE))
    prefs = console_state(request).prefs(reader.log)
    view = verification_view(reader.log, seen, prefs.witness(user.name))
    response = render(request, "verification.html", status,
                      user=user, view=view, service_url=_service_url(request), notice=notice,
                      error=error)
    if view.seen is not None:
        response.set_cookie(SEEN_COOKIE, view.seen.to_cookie(), max_age=5 * 365 * 86400,
                            httponly=True, samesite="lax",
                            path=console_state(request).prefix or "/")
    return response


@router.get("/verification", responses=HTML_RESPONSES, summary="Verification page")
def verification_page(request: Request, reader: ReaderDep, user: RegulatorDep) -> Response:
    return _page(request, reader, user)


class VerificationPublic(BaseModel):
    ok: bool
    origin: str
    size: int
    root: str
    signature_ok: bool
    consistency: str
    consistency_message: str | None
    cosignatures: list[dict[str, Any]]
    witness_name: str | None
    witness_last_size: int | None


@router.get("/api/verification", response_model=VerificationPublic,
            summary="The verification page's checks (JSON); consistency against `seen` cookie")
def verification_json(request: Request, reader: ReaderDep, user: RegulatorDep) -> Any:
    seen = Seen.from_cookie(request.cookies.get(SEEN_COOKIE))
    prefs = console_state(request).prefs(reader.log)
    view = verification_view(reader.log, seen, prefs.witness(user.name))
    return VerificationPublic(
        ok=view.ok, origin=view.origin, size=view.size, root=view.root,
        signature_ok=view.signature_ok, consistency=view.consistency.state,
        consistency_message=view.consistency.message,
        cosignatures=[c.__dict__ for c in view.cosignatures], witness_name=view.witness_name,
        witness_last_size=view.witness_last[0] if view.witness_last else None,
    )


@router.post("/verification/witness", responses=HTML_RESPONSES,
             summary="Set the witness name this regulator cosigns with",
             openapi_extra={"requestBody": {"content": {"application/x-www-form-urlencoded": {
                 "schema": {"type": "object", "properties": {
                     "witness": {"type": "string"}, "csrf": {"type": "string"}}}}}}})
async def set_witness(request: Request, reader: ReaderDep, user: RegulatorDep) -> Response:
    from starlette.concurrency import run_in_threadpool

    form = await request.form()
    if not check_csrf(request, str(form.get("csrf") or "")):
        return await run_in_threadpool(_page, request, reader, user, 403, None,
                                       Message("err.csrf"))
    try:
        name = check_witness_name(str(form.get("witness") or ""))
    except FormatError:
        return await run_in_threadpool(_page, request, reader, user, 400, None,
                                       Message("err.witness_name"))
    prefs = console_state(request).prefs(reader.log)
    await run_in_threadpool(prefs.set_witness, user.name, name)
    prefix = console_state(request).prefix
    return RedirectResponse(f"{prefix}/console/verification?saved=1", status_code=303)
