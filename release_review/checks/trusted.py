"""The trusted side's view of the raw data for checks: one read-only connection per run.

``connection(ctx)`` yields the run's shared connection if the registry opened one (``open_shared``
/ ``close_shared``), otherwise opens one from ``ctx.domain`` and closes it afterwards.
``registered(con, table)`` shows an Arrow table to SQL under a fresh reserved name for the
duration of a block. Submitted tables are joined with the raw data only here, on the server.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from release_review.checks.base import CheckContext, DomainReader

SHARED = "domain:connection"


def open_shared(ctx: CheckContext) -> None:
    if SHARED not in ctx.cache:
        ctx.cache[SHARED] = ctx.domain()


def close_shared(ctx: CheckContext) -> None:
    con = ctx.cache.pop(SHARED, None)
    if con is not None:
        con.close()


@contextmanager
def connection(ctx: CheckContext) -> Iterator[DomainReader]:
    shared = ctx.cache.get(SHARED)
    if shared is not None:
        yield shared
        return
    con = ctx.domain()
    try:
        yield con
    finally:
        con.close()


@contextmanager
def registered(con: DomainReader, table: Any) -> Iterator[str]:
    name = f"__shuyu_check_{uuid.uuid4().hex[:12]}"
    con.register(name, table)
    try:
        yield name
    finally:
        con.unregister(name)


def quote(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def fetch_arrow(con: DomainReader, sql: str, params: list | None = None):
    """Run `sql` and return an Arrow table (DuckDB relation or cursor alike)."""
    rel = con.sql(sql, params=params) if params else con.sql(sql)
    if rel is None:
        raise RuntimeError("the statement returned no result")
    fetch = getattr(rel, "to_arrow_table", None) or getattr(rel, "arrow")
    result = fetch()
    return result.read_all() if hasattr(result, "read_all") else result
