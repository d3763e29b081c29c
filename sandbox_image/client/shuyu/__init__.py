"""Shuyu (数域) analyst client, used from notebooks inside the sandbox.

>>> import shuyu
>>> shuyu.datasets()                      # what your authorization covers
>>> print(shuyu.describe("residents"))    # columns, grade, access mode, limits
>>> df = shuyu.query("SELECT district, count(*) AS n FROM residents GROUP BY district")
>>> shuyu.last_result()                   # groups suppressed, ledger entry, notes
>>> shuyu.release.submit(df, title="…", purpose="…")   # outputs leave only through review

It talks to the query gateway over HTTP with the hub token this sandbox server was started
with (``JUPYTERHUB_API_TOKEN``) at ``SHUYU_GATEWAY_URL``; it imports nothing server-side.
Refusals raise ``shuyu.QueryRefused`` (and friends, see ``shuyu.errors``) carrying the
gateway's reason.
"""

from __future__ import annotations

import threading
from typing import Any

from shuyu import release
from shuyu.client import Client, Description, QueryInfo
from shuyu.errors import (
    ConfigurationError,
    GatewayUnavailable,
    NotAuthenticated,
    QueryFailed,
    QueryRefused,
    ResultIntegrityError,
    ShuyuError,
)

__version__ = "0.1.0"

_default: Client | None = None
_lock = threading.Lock()


def client() -> Client:
    """The client made from this sandbox's environment (created on first use)."""
    global _default
    with _lock:
        if _default is None:
            _default = Client()
        return _default


def datasets(as_: str = "pandas") -> Any:
    """The datasets your authorization covers, with grade, access mode and terms."""
    return client().datasets(as_)  # type: ignore[arg-type]


def describe(name: str) -> Description:
    """One dataset as you may use it: columns (and which are pseudonyms), dimensions, limits."""
    return client().describe(name)


def query(sql: str, as_: str = "pandas", progress: bool | None = None) -> Any:
    """Run one SELECT through the gateway; a pandas (default) or polars DataFrame."""
    return client().query(sql, as_, progress)  # type: ignore[arg-type]


def last_result() -> QueryInfo | None:
    """What the gateway said about the last query's result (suppressed groups, notes…)."""
    return client().last_result


__all__ = [
    "Client", "ConfigurationError", "Description", "GatewayUnavailable", "NotAuthenticated",
    "QueryFailed", "QueryInfo", "QueryRefused", "ResultIntegrityError", "ShuyuError",
    "client", "datasets", "describe", "last_result", "query", "release",
]
