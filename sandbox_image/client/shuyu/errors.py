"""Exceptions of the analyst client; each carries the gateway's reason and code.

``ShuyuError`` is the base. ``str(e)`` is the reason to read; ``e.code`` is the gateway's stable
label (e.g. ``query_refused``, ``columns_not_authorized``, ``aggregate_rule``) and ``e.status``
the HTTP status, when there was one.
"""

from __future__ import annotations

from typing import Any

from shuyu._http import Http, HttpError, Response


class ShuyuError(Exception):
    """Base class of every error raised by ``shuyu``."""

    def __init__(self, reason: str, code: str = "error", status: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.status = status


class ConfigurationError(ShuyuError):
    """The sandbox environment lacks the gateway URL or the hub token."""


class NotAuthenticated(ShuyuError):
    """The hub did not accept the token (expired, revoked, or not an analyst's)."""


class QueryRefused(ShuyuError):
    """The gateway refused the query or the dataset; the reason says what and why."""


class QueryFailed(ShuyuError):
    """The query was allowed but could not run (a type error, a timeout, a result too big)."""


class GatewayUnavailable(ShuyuError):
    """The gateway, the hub or the ledger cannot serve now; nothing was returned. Retry later."""


class ResultIntegrityError(ShuyuError):
    """The pages received do not hash to what the gateway recorded in the ledger."""


def error_for(status: int, code: str, reason: str) -> ShuyuError:
    """The exception for a gateway error response."""
    if status == 401:
        return NotAuthenticated(reason, code, status)
    if status == 403:
        return QueryRefused(reason, code, status)
    if status in (502, 503, 504):
        return GatewayUnavailable(reason, code, status)
    return QueryFailed(reason, code, status)


def send(http: Http, service: str, method: str, path: str, **kw: Any) -> Response:
    """One request to a platform service; `GatewayUnavailable` if it cannot be reached."""
    try:
        return http.request(method, path, **kw)
    except HttpError as e:
        raise GatewayUnavailable(f"cannot reach the {service}: {e}", "unreachable") from None


def problem(response: Response) -> tuple[str, str]:
    """(code, reason) of a service's error answer, JSON or not."""
    try:
        body = response.json()
        return body.get("code", "error"), body.get("reason") or str(body)
    except ValueError:
        return "error", response.text[:500] or response.reason_phrase
