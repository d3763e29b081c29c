"""Rendering the console's pages: one Jinja2 environment, one ``render`` with the page basics.

Every page gets the translator ``t`` and ``label`` (enum members in the page's language), the
service prefix, the signed-in user, the form token ``csrf``, ``lang_url(code)`` for the language
switch, a ``notice`` (from ``?notice=<key>`` after a successful form), and ``day``/``when`` for
times (shown in China Standard Time). Form pages also get ``values`` (what was typed) and
``error`` (why it was refused) when they are shown again after a refusal.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.datastructures import FormData

from hub.catalog.validation import CHINA_STANDARD_TIME
from hub.console.i18n import Translator

TEMPLATES = Path(__file__).parent / "templates"
ENV = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
Renderer = Callable[[Request, FormData, str, int], HTMLResponse]


def day(at: datetime | None) -> str:
    return at.astimezone(CHINA_STANDARD_TIME).date().isoformat() if at else "—"


def when(at: datetime | None) -> str:
    if at is None:
        return "—"
    return at.astimezone(CHINA_STANDARD_TIME).strftime("%Y-%m-%d %H:%M") + " (UTC+8)"


def translator(request: Request) -> Translator:
    return getattr(request.state, "translator", None) or Translator("zh")


def lang_url(request: Request) -> Callable[[str], str]:
    def build(code: str) -> str:
        query = [(k, v) for k, v in request.query_params.multi_items()
                 if k not in ("lang", "notice")]
        return f"{request.url.path}?{urlencode(query + [('lang', code)])}"
    return build


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    t = translator(request)
    notice_key = request.query_params.get("notice", "")
    notice = t(f"notice.{notice_key}") if f"notice.{notice_key}" in t.messages else None
    service = getattr(request.app.state, "service", None)
    page: dict[str, Any] = {
        "t": t, "label": t.label, "lang": t.lang, "prefix": request.app.state.config.service_prefix,
        "user": getattr(request.state, "user_name", None),
        "csrf": getattr(request.state, "csrf", ""), "lang_url": lang_url(request),
        "notice": notice, "error": None, "warning": None, "values": FormData(), "form": None,
        "day": day, "when": when, "now": service.catalog.now() if service else None,
        "status": status,
    }
    page.update(context)
    html = ENV.get_template(template).render(**page)
    headers = {"Cache-Control": "no-store", "Content-Language": t.lang,
               "X-Frame-Options": "SAMEORIGIN"}
    return HTMLResponse(html, status_code=status, headers=headers)


def on_error(renderer: Renderer) -> Callable[[Request], None]:
    """A route dependency: if the form is refused, show it again with `renderer`."""
    def register(request: Request) -> None:
        request.state.form_renderer = renderer
    return register
