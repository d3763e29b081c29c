"""The console's routers, one per area, and the response documentation they share."""

from __future__ import annotations

from typing import Any

from fastapi.responses import RedirectResponse

from hub.console.schemas import Problem

HTML = {"text/html": {"schema": {"type": "string"}}}
_REFUSED = "Refused: the page again (or an error page) saying why; nothing was changed."
PAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The page.", "content": HTML},
    401: {"description": "Not logged in (pages redirect to the hub's login instead).",
          "content": HTML},
    403: {"description": "Not in the authority group, or a form without its token.",
          "content": HTML},
    404: {"description": "No such record.", "content": HTML},
    409: {"description": _REFUSED, "content": HTML},
    422: {"description": _REFUSED, "content": HTML},
    502: {"description": "The hub refused a request of the console.", "content": HTML},
    503: {"description": "The ledger, hub or Docker is unavailable; nothing was changed.",
          "content": HTML},
}
FORM_RESPONSES: dict[int | str, dict[str, Any]] = {
    **PAGE_RESPONSES,
    201: {"description": "Created: the answer page (a temporary password, shown once).",
          "content": HTML},
    303: {"description": "Done: on to the changed record's page."},
}
API_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": info["description"], "model": Problem}
    for status, info in PAGE_RESPONSES.items() if status != 200
}


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)
