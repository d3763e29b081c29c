"""What every console page shares: state, the regulator check, templates, language, CSRF.

``ConsoleState`` lives on ``app.state.console``: the log (through the service's reader), the
subject index, the regulators' preferences and the hub OAuth client. ``RegulatorDep`` is the
route dependency that admits only members of the regulators group; the three ways it refuses
(:class:`~ledger.service.auth.LoginRequired`, ``NotAllowed``, ``AuthUnavailable``) become a
redirect to the hub, a 403 page and a 503 page in :func:`install_error_pages`, the one place
where they turn into HTTP. Forms carry a CSRF token bound to the session cookie.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ledger.console.i18n import COOKIE as LANG_COOKIE
from ledger.console.i18n import LANGS, Message, choose_lang, translate
from ledger.note import b64
from ledger.service.auth import (
    SESSION_COOKIE,
    STATE_COOKIE,
    AuthUnavailable,
    ConsoleUser,
    HubOAuth,
    LoginRequired,
    NotAllowed,
)

TEMPLATES = Path(__file__).parent / "templates"
HTML = {"content": {"text/html": {}}}
HTML_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {**HTML, "description": "An HTML page."},
    302: {"description": "Redirect to the hub's login (no session)."},
    400: {**HTML, "description": "The form had errors; the page explains them."},
    403: {**HTML, "description": "Not a regulator."},
    404: {**HTML, "description": "No such entry."},
    503: {**HTML, "description": "The console cannot check identity now."},
}

env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                  trim_blocks=True, lstrip_blocks=True)
env.filters["b64"] = b64


@dataclass
class ConsoleState:
    prefix: str  # the service's URL prefix, '' at the root
    oauth: HubOAuth | None
    actions_url: str | None = None  # the hub-side regulator actions service (suspension)
    console_base: str | None = None  # where the console's pages are, when not `prefix/console`
    closers: list[Any] = field(default_factory=list)
    _index: Any = None
    _prefs: Any = None

    @property
    def base(self) -> str:
        return self.console_base or f"{self.prefix}/console"

    @property
    def home(self) -> str:
        """Where a browser goes after logging in when no page was asked for."""
        return f"{self.base}/"

    def index(self, log: Any) -> Any:
        if self._index is None:
            from ledger.index import SubjectIndex

            self._index = SubjectIndex(log.config.database_url)
            self.closers.append(self._index)
        return self._index

    def prefs(self, log: Any) -> Any:
        if self._prefs is None:
            from ledger.console.verification import RegulatorPrefs

            self._prefs = RegulatorPrefs(log.config.database_url)
            self.closers.append(self._prefs)
        return self._prefs

    def close(self) -> None:
        for c in self.closers:
            c.close()
        self.closers.clear()
        self._index = self._prefs = None


def console_state(request: Request) -> ConsoleState:
    return request.app.state.console


def lang_of(request: Request) -> str:
    return choose_lang(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE),
                       request.headers.get("accept-language"))


async def require_regulator(request: Request) -> ConsoleUser:
    state = console_state(request)
    if state.oauth is None:
        raise AuthUnavailable(
            "the console needs the hub's OAuth: run the ledger service as a JupyterHub service "
            "(see hub/jupyterhub_config.py); the checkpoint, tiles and proofs work without it"
        )
    token = state.oauth.token_of(request.cookies.get(SESSION_COOKIE))
    user = await state.oauth.user_for_token(token) if token else None
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target if request.method == "GET" else state.home)
    if state.oauth.config.group not in user.groups:
        raise NotAllowed(user.name, state.oauth.config.group)
    return user


RegulatorDep = Annotated[ConsoleUser, Depends(require_regulator)]


def csrf_token(request: Request) -> str:
    state = console_state(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if state.oauth is None or not cookie:
        return ""
    return state.oauth.csrf_token(cookie)


def check_csrf(request: Request, token: str | None) -> bool:
    state = console_state(request)
    if state.oauth is None:
        return False
    return state.oauth.check_csrf(request.cookies.get(SESSION_COOKIE), token)


def url_with(request: Request, **changes: Any) -> str:
    """The current URL with some query parameters replaced (None removes one)."""
    params = dict(request.query_params)
    for k, v in changes.items():
        if v is None:
            params.pop(k, None)
        else:
            params[k] = str(v)
    return request.url.path + (f"?{urlencode(params)}" if params else "")


def render(request: Request, template: str, status: int = 200, user: ConsoleUser | None = None,
           **context: Any) -> HTMLResponse:
    lang = lang_of(request)
    state = console_state(request)

    def t(key: str, **params: Any) -> str:
        return translate(key, lang, **params)

    def msg(m: Message | str) -> str:
        return m.render(lang) if isinstance(m, Message) else str(m)

    other = "en" if lang == "zh" else "zh"
    html = env.get_template(template).render(
        request=request, lang=lang, t=t, msg=msg, user=user, prefix=state.prefix,
        base=state.base, csrf=csrf_token(request), actions_url=state.actions_url,
        lang_url=url_with(request, lang=other), url_with=lambda **c: url_with(request, **c),
        **context,
    )
    response = HTMLResponse(html, status_code=status)
    if request.query_params.get("lang") in LANGS:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax",
                            path=state.prefix or "/")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def install_error_pages(app: FastAPI) -> None:
    """Turn the console's auth refusals into a redirect to the hub, a 403 or a 503 page."""

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        state = console_state(request)
        from ledger.service.auth import safe_next

        assert state.oauth is not None
        url, cookie = state.oauth.start_login(safe_next(exc.next_url, state.home))
        r = RedirectResponse(url, status_code=302)
        r.set_cookie(STATE_COOKIE, cookie, max_age=600, httponly=True, samesite="lax",
                     path=state.prefix or "/", secure=state.oauth.config.secure_cookies)
        return r

    @app.exception_handler(NotAllowed)
    async def _forbidden(request: Request, exc: NotAllowed) -> Response:
        return render(request, "forbidden.html", 403, who=exc.user, group=exc.group)

    @app.exception_handler(AuthUnavailable)
    async def _unavailable(request: Request, exc: AuthUnavailable) -> Response:
        return render(request, "error.html", 503, title_key="error.title", detail=str(exc))
