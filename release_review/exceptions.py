"""Errors of the release review workflow: one base class, messages written at the raise site.

Each error keeps its audiences apart: ``message`` (``str(e)``) is what the analyst or reviewer
reads (never a token, a key or raw data), ``code`` is a stable label for clients and metrics, and
``status`` is the HTTP status the web app's one error handler answers with
(``release_review/web/main.py``). Package verification errors carry the member of the zip and
the hashes that disagree, so a verifier's report names what was altered.
"""

from __future__ import annotations

from shuyu_server.errors import ServiceError


class ReleaseError(ServiceError):
    """Base class of every error of the review workflow."""

    code = "release_error"
    status = 500


class InvalidInput(ReleaseError):
    """The request, its files or a reviewer's form is malformed; the message says what."""

    code = "invalid_input"
    status = 400


class NotAuthenticated(ReleaseError):
    """No hub identity, or one the hub does not recognize."""

    code = "not_authenticated"
    status = 401


class PermissionDenied(ReleaseError):
    """The caller's role does not allow this act (who may: ``permissions.py``)."""

    code = "permission_denied"
    status = 403


class NotFound(ReleaseError):
    """No such request, file or package (or not one the caller may see)."""

    code = "not_found"
    status = 404


class InvalidTransition(ReleaseError):
    """The request's status does not allow the move asked for (``states.TRANSITIONS``)."""

    code = "invalid_transition"
    status = 409


class PolicyRefused(ReleaseError):
    """The rules refuse the act as things stand (what the state allows: ``policies.py``)."""

    code = "policy_refused"
    status = 409


class ConcurrentChange(ReleaseError):
    """Someone changed the request at the same time; nothing was written. Read again, retry."""

    code = "concurrent_change"
    status = 409


class TooLarge(ReleaseError):
    """An upload exceeds the size the service accepts for one file."""

    code = "too_large"
    status = 413


class NotRecorded(ReleaseError):
    """The ledger could not record the act, so it did not take effect (fail closed)."""

    code = "ledger_unavailable"
    status = 503


class HubUnavailable(ReleaseError):
    """The hub could not be asked who the caller is; nothing is served (fail closed)."""

    code = "hub_unavailable"
    status = 503


class PackageError(ReleaseError):
    """A package could not be built (a quarantined file is missing or changed…)."""

    code = "package_error"
    status = 500


class PackageVerificationError(ReleaseError):
    """A release package failed offline verification.

    ``member`` names the file of the zip that did not verify (None for the zip as a whole);
    ``expected`` and ``actual`` are the hashes that disagree, when hashes were compared.
    """

    code = "package_invalid"
    status = 422

    def __init__(self, message: str, member: str | None = None, expected: str | None = None,
                 actual: str | None = None):
        super().__init__(message)
        self.member = member
        self.expected = expected
        self.actual = actual
