"""Errors of the catalog and authorization service: one base class, messages written at the raise.

Each error carries what its audiences need in separate fields: the readable message (``str(e)``,
safe to show the user), a stable ``code`` for metrics and clients, and the HTTP ``status`` the
gateway and console map it to in their one exception handler. A refused change leaves the stored
state exactly as it was.

Query-time refusals (``QueryNotAuthorized`` and its subclasses) are what the gateway turns into
403 responses; they name the user, the dataset and what exactly was refused.
"""

from __future__ import annotations

from shuyu_server.errors import ServiceError


class CatalogError(ServiceError):
    """Base class of every catalog error."""

    code = "catalog_error"
    status = 400


class InvalidInput(CatalogError):
    """A value is malformed or out of range (a name, a date, an epsilon, a catalog file)."""

    code = "invalid_input"
    status = 422


class NotFound(CatalogError):
    """The named dataset, operator, analyst, authorization or request does not exist."""

    code = "not_found"
    status = 404


class AlreadyExists(CatalogError):
    """A new record would reuse a name or code that is taken."""

    code = "already_exists"
    status = 409


class ConcurrentChange(CatalogError):
    """Someone else changed the record between reading and writing; read again and retry."""

    code = "concurrent_change"
    status = 409


class PolicyRefused(CatalogError):
    """The rules do not allow this change (grade, open attribute, term, status, scope)."""

    code = "policy_refused"
    status = 409


class NotAuthorizable(PolicyRefused):
    """A dataset that may not be authorized: 核心, 不予开放, or shared data without consent."""

    code = "dataset_not_authorizable"


class InvalidTransition(PolicyRefused):
    """The status table does not allow moving from the current status to the one asked for."""

    code = "invalid_transition"


class PermissionDenied(CatalogError):
    """The actor's role may not do this (who may, as opposed to what the state allows)."""

    code = "permission_denied"
    status = 403


class NotRecorded(CatalogError):
    """The ledger could not record the change, so the change was not made (fail closed).

    Callers should retry later; nothing in the control database changed.
    """

    code = "ledger_unavailable"
    status = 503


class QueryNotAuthorized(CatalogError):
    """A user may not query a dataset (or these columns) now; `reason` says why."""

    code = "query_not_authorized"
    status = 403

    def __init__(self, message: str, user: str, dataset: str):
        super().__init__(message)
        self.user = user
        self.dataset = dataset


class NoAuthorization(QueryNotAuthorized):
    """No authorization names this user and this dataset."""

    code = "no_authorization"


class AuthorizationNotActive(QueryNotAuthorized):
    """The authorization that covers the dataset is suspended, revoked or expired."""

    code = "authorization_not_active"

    def __init__(self, message: str, user: str, dataset: str, authorization: str, status: str):
        super().__init__(message, user, dataset)
        self.authorization = authorization
        self.authorization_status = status


class OutsideTerm(QueryNotAuthorized):
    """The authorization's term has not started yet (or ended: see AuthorizationNotActive)."""

    code = "outside_term"


class ColumnsNotAuthorized(QueryNotAuthorized):
    """Some requested columns are outside the authorization's scope or do not exist."""

    code = "columns_not_authorized"

    def __init__(self, message: str, user: str, dataset: str, columns: list[str]):
        super().__init__(message, user, dataset)
        self.columns = columns


class DatasetWithdrawn(QueryNotAuthorized):
    """The dataset is now 核心 or 不予开放 (re-graded after the agreement): access is refused."""

    code = "dataset_withdrawn"


class AmbiguousAuthorization(QueryNotAuthorized):
    """Several active authorizations cover the dataset; the caller must name one."""

    code = "ambiguous_authorization"

    def __init__(self, message: str, user: str, dataset: str, authorizations: list[str]):
        super().__init__(message, user, dataset)
        self.authorizations = authorizations
