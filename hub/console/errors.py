"""Errors of the console: one base class, messages written at the raise site.

Like the catalog's errors (which the console shows as they are), each carries the readable
``message`` (safe to show: no tokens, no passwords), a stable ``code`` and the HTTP ``status``
that ``main.py``'s one exception handler answers with. Pages show the message on the form that
was refused, with what the person typed kept.
"""

from __future__ import annotations

from shuyu_server.errors import ServiceError


class ConsoleError(ServiceError):
    """Base class of every console error."""

    code = "console_error"
    status = 400


class LoginRequired(ConsoleError):
    """No valid console session: pages redirect to the hub's login, the API answers 401."""

    code = "not_authenticated"
    status = 401


class NotAuthority(ConsoleError):
    """The hub vouches for the person, but they are not in the authority group."""

    code = "not_authority"
    status = 403

    def __init__(self, message: str, user: str):
        super().__init__(message)
        self.user = user


class BadRequestToken(ConsoleError):
    """A form arrived without the console's anti-forgery token, or with a wrong one."""

    code = "bad_form_token"
    status = 403


class HubUnavailable(ConsoleError):
    """The hub could not be asked (who someone is, or to make an account); nothing was done."""

    code = "hub_unavailable"
    status = 503


class HubRefused(ConsoleError):
    """The hub answered a request of the console with an error; the message says which."""

    code = "hub_refused"
    status = 502


class UploadNotFound(ConsoleError):
    """No upload with this id (never started, or discarded after registration)."""

    code = "upload_not_found"
    status = 404


class UploadRefused(ConsoleError):
    """The uploaded file cannot be used: too large, not CSV or Parquet, unreadable."""

    code = "upload_refused"
    status = 422


class UploadNotReady(ConsoleError):
    """The upload is still being received or analysed, or it failed."""

    code = "upload_not_ready"
    status = 409


class DomainRefused(ConsoleError):
    """The domain store refused the load (name taken by another table, store in use)."""

    code = "domain_refused"
    status = 409


class DockerUnavailable(ConsoleError):
    """Docker could not be asked to remove working volumes; the destruction stays pending."""

    code = "docker_unavailable"
    status = 503
