"""The base of the services' errors (catalog, gateway, console, review, DP lane).

Every error keeps its audiences apart: ``message`` (``str(e)``) is written at the raise site for
the person who caused it (never a token, a key or raw data), ``code`` is a stable label for
clients and metrics, and ``status`` is the HTTP status a web app's one exception handler answers
with. Each area subclasses it once and names its own errors below that. (The ledger keeps its
own exceptions: it imports nothing of the other packages.)
"""

from __future__ import annotations


class ServiceError(Exception):
    """An error with a readable ``message``, a stable ``code`` and an HTTP ``status``."""

    code = "error"
    status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
