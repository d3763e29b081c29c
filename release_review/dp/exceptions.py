"""Errors of the differential-privacy lane: one base class, messages written at the raise site.

Each error carries a readable message (``str(e)``, safe to show the analyst: it never quotes
raw data), a stable ``code`` for clients and metrics, and the HTTP ``status`` the review service
maps it to in its one exception handler. A refused release changes nothing: no budget is
charged and nothing is written to the ledger.
"""

from __future__ import annotations

from shuyu_server.errors import ServiceError


class DpError(ServiceError):
    """Base class of every error of the DP lane."""

    code = "dp_error"
    status = 400


class SpecInvalid(DpError):
    """The JSON query spec is malformed or asks for something the catalog does not allow."""

    code = "dp_spec_invalid"
    status = 422


class NotAuthorized(DpError):
    """The author may not release statistics of this dataset (or these columns) now."""

    code = "dp_not_authorized"
    status = 403


class BudgetExhausted(DpError):
    """The release would spend more privacy budget than remains.

    ``remaining`` is the ε still available for (authorization, dataset); ``requested`` is the
    ε-equivalent the release would have charged. Callers can show both and suggest a smaller
    epsilon/rho.
    """

    code = "dp_budget_exhausted"
    status = 429

    def __init__(self, message: str, *, remaining: float, requested: float, total: float):
        super().__init__(message)
        self.remaining = remaining
        self.requested = requested
        self.total = total


class NotRecorded(DpError):
    """The ledger could not record the charge, so nothing was released or charged (fail closed).

    Callers should retry later; the control database is unchanged.
    """

    code = "dp_ledger_unavailable"
    status = 503


class ComputationFailed(DpError):
    """The trusted side could not compute the statistics (domain store missing, engine error)."""

    code = "dp_computation_failed"
    status = 500
