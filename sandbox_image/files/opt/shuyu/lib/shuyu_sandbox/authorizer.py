"""The sandbox's Jupyter Server authorizer: refuse the bulk-download routes, then defer.

Jupyter Server asks ``Authorizer.is_authorized(handler, user, action, resource)`` before each
request that a handler guards with ``@authorized``, and answers 403 when it returns False
(contract: ``jupyter_server/auth/authorizer.py``). ``SandboxAuthorizer`` applies the refusals
below, which hold for every user, and only then asks the authorizer it wraps: JupyterHub's scope
check when the server runs as ``jupyterhub-singleuser``, or "any authenticated user" for a plain
token-protected ``jupyter server``.

Refused:

- the resources ``nbconvert`` (``/nbconvert/<format>/<path>`` export and ``/api/nbconvert``) and
  ``terminals``;
- the raw-file routes: ``FilesHandler``, ``AuthenticatedFileHandler`` and ``ViewHandler``, and any
  handler mounted under ``files/``, ``view/``, ``nbconvert/`` or ``terminals/`` below the
  server's base URL (the config also removes the ``/files`` route and the terminal extension);
- a contents download: file content from ``GET /api/contents/<path>`` in any form but text, that
  is ``format=base64``, or no format for a file that is not a notebook (the server would fall
  back to base64 for a binary file).

These close server routes only. What a notebook shows on screen can still be copied by hand;
that is why raw data never enters the sandbox and outputs leave only through release review.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote

from jupyter_core.utils import ensure_async
from jupyter_server.auth.authorizer import AllowAllAuthorizer, Authorizer
from jupyter_server.base.handlers import AuthenticatedFileHandler
from jupyter_server.files.handlers import FilesHandler
from jupyter_server.services.api.handlers import IdentityHandler
from jupyter_server.services.contents.handlers import ContentsHandler
from jupyter_server.view.handlers import ViewHandler
from traitlets import Instance

if TYPE_CHECKING:  # imported for annotations only; the server passes these in
    from jupyter_server.auth.identity import User
    from jupyter_server.base.handlers import JupyterHandler

REFUSED_RESOURCES: dict[str, str] = {
    "nbconvert": "notebook export (nbconvert) is closed in the sandbox",
    "terminals": "terminals are closed in the sandbox",
}

REFUSED_HANDLERS: tuple[type, ...] = (FilesHandler, AuthenticatedFileHandler, ViewHandler)

# Route prefixes below the server's base URL, compared after percent-decoding.
REFUSED_PREFIXES: dict[str, str] = {
    "files/": "raw file downloads (/files) are closed in the sandbox",
    "view/": "raw file views (/view) are closed in the sandbox",
    "nbconvert/": "notebook export (nbconvert) is closed in the sandbox",
    "api/nbconvert": "notebook export (nbconvert) is closed in the sandbox",
    "terminals/": "terminals are closed in the sandbox",
    "api/terminals": "terminals are closed in the sandbox",
}

BINARY_CONTENT = "file content is served as text only; binary downloads are closed in the sandbox"
UNTYPED_CONTENT = "ask for file content with format=text; other forms are closed in the sandbox"


def route_below_base(handler: JupyterHandler) -> str:
    """The request path below the server's base URL, percent-decoded, without leading slashes."""
    path = unquote(handler.request.path)
    base = handler.base_url or "/"
    if path.startswith(base):
        path = path[len(base):]
    return path.lstrip("/")


def route_refusal(handler: JupyterHandler, resource: str) -> str | None:
    """Why this request is refused by resource, handler class or route, or None."""
    if resource in REFUSED_RESOURCES:
        return REFUSED_RESOURCES[resource]
    if isinstance(handler, REFUSED_HANDLERS):
        return f"{type(handler).__name__} is closed in the sandbox"
    route = route_below_base(handler)
    for prefix, reason in REFUSED_PREFIXES.items():
        if route.startswith(prefix):
            return reason
    return None


async def contents_refusal(handler: JupyterHandler) -> str | None:
    """Why a contents API read is refused as a download, or None.

    Only ``GET /api/contents/<path>`` with content is concerned: listings, metadata-only reads
    (``content=0``), notebooks and text reads pass.
    """
    if not isinstance(handler, ContentsHandler) or handler.request.method != "GET":
        return None
    if handler.get_query_argument("content", "1") == "0":
        return None
    fmt = handler.get_query_argument("format", None)
    if fmt == "base64":
        return BINARY_CONTENT
    if fmt is not None or handler.get_query_argument("type", None) in ("notebook", "directory"):
        return None
    # The contents route names its path group; tornado passes it percent-decoded.
    path = (handler.path_kwargs.get("path") or "").strip("/")
    if path.endswith(".ipynb"):
        return None
    if await ensure_async(handler.contents_manager.file_exists(path)):
        return UNTYPED_CONTENT
    return None


def _runs_under_hub(identity_provider: object) -> bool:
    """True when the server authenticates through JupyterHub (jupyterhub-singleuser)."""
    try:
        from jupyterhub.singleuser.extension import JupyterHubIdentityProvider
    except ImportError:
        return False
    return isinstance(identity_provider, JupyterHubIdentityProvider)


class SandboxAuthorizer(Authorizer):
    """Refuse the sandbox's closed routes for everyone, then ask the wrapped authorizer."""

    delegate = Instance(
        Authorizer,
        allow_none=True,
        help="""The authorizer asked after the sandbox refusals. Chosen at the first request:
        JupyterHub's scope check under the hub, otherwise any authenticated user.""",
    )

    def _delegate(self) -> Authorizer:
        if self.delegate is None:
            if _runs_under_hub(self.identity_provider):
                from jupyterhub.singleuser.extension import JupyterHubAuthorizer

                cls: type[Authorizer] = JupyterHubAuthorizer
            else:
                cls = AllowAllAuthorizer
            self.delegate = cls(parent=self, log=self.log, identity_provider=self.identity_provider)
        return self.delegate

    async def is_authorized(
        self, handler: JupyterHandler, user: User, action: str, resource: str
    ) -> bool:
        reason = route_refusal(handler, resource) or await contents_refusal(handler)
        if reason:
            # JupyterLab asks /api/me which resources it may use on every page load: not news.
            log = self.log.debug if isinstance(handler, IdentityHandler) else self.log.warning
            log(
                "sandbox refused %s %s (%s %s) for %s: %s",
                handler.request.method,
                handler.request.path,
                action,
                resource,
                getattr(user, "username", "?"),
                reason,
            )
            return False
        allowed = self._delegate().is_authorized(handler, user, action, resource)
        return bool(await ensure_async(allowed))
