"""Errors of the query gateway: one base class, messages written at the raise site.

Each error keeps what its audiences need apart: ``message`` (``str(e)``) is the reason shown to
the analyst and written to the ledger, ``code`` is a stable label for clients and metrics, and
``status`` is the HTTP status the gateway's one exception handler (``main.py``) answers with.
Messages never carry secrets: no tokens, keys or rewritten SQL (which holds key material as
parameters only, but is still kept server-side).

The catalog's query-time refusals (``hub.catalog.exceptions.QueryNotAuthorized``) are mapped
by the same handler; they already follow this pattern.
"""

from __future__ import annotations

from shuyu_server.errors import ServiceError


class GatewayError(ServiceError):
    """Base class of every gateway error."""

    code = "gateway_error"
    status = 500


class NotAuthenticated(GatewayError):
    """No hub token, or a token the hub does not recognize."""

    code = "not_authenticated"
    status = 401


class MissingScope(GatewayError):
    """The hub knows the token, but it lacks the scope the gateway requires."""

    code = "missing_scope"
    status = 403


class HubUnavailable(GatewayError):
    """The hub could not be asked who a token belongs to; nothing is served (fail closed)."""

    code = "hub_unavailable"
    status = 503


class QueryRefused(GatewayError):
    """The SQL was refused by policy before anything ran; the message says what and why."""

    code = "query_refused"
    status = 403

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        if code:
            self.code = code


class QueryFailed(GatewayError):
    """The query passed policy but the engine could not run it (a type error, a bad cast…)."""

    code = "query_failed"
    status = 400


class QueryTimeout(GatewayError):
    """The query ran longer than the gateway allows and was interrupted."""

    code = "query_timeout"
    status = 408


class ResultTooLarge(GatewayError):
    """The result exceeds the size the gateway will hold for one query."""

    code = "result_too_large"
    status = 413


class NotRecorded(GatewayError):
    """The ledger could not record the query, so no result is returned (fail closed)."""

    code = "ledger_unavailable"
    status = 503


class ResultNotFound(GatewayError):
    """No such result (or page) for this user: wrong id, another user's, or expired."""

    code = "result_not_found"
    status = 404


class DomainUnavailable(GatewayError):
    """The domain store cannot be opened (not loaded yet, or locked by a loader)."""

    code = "domain_unavailable"
    status = 503


class KeysUnavailable(GatewayError):
    """The pseudonym key of the authorization cannot be read or created; nothing runs."""

    code = "keys_unavailable"
    status = 503
