"""The client: HTTP to the query gateway, Arrow pages back, DataFrames out.

Nothing here imports server code: the client knows the gateway only by its HTTP API
(``POST queries``, ``GET queries/{id}/pages/{n}``, ``GET datasets``, ``GET datasets/{name}``).
Every result is checked against the hash the gateway recorded in the ledger before it is
returned (``ResultIntegrityError`` otherwise).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa

from shuyu import _environment
from shuyu._http import Http, Response
from shuyu.errors import (
    ResultIntegrityError,
    ShuyuError,
    error_for,
    problem,
    send,
)
from shuyu.progress import page_progress

Frame = Literal["pandas", "polars", "arrow"]
PROGRESS_BYTES = 4 << 20  # show a progress bar for results larger than this (or paged)


@dataclass(frozen=True)
class QueryInfo:
    """What the gateway said about the last result (besides its rows)."""

    query_id: str
    authorization: str | None
    datasets: list[str]
    access_modes: dict[str, str]
    rows: int
    pages: int
    groups_suppressed: int
    truncated: bool
    row_limit: int
    result_sha256: str
    ledger_index: int
    duration_ms: float
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Description:
    """One dataset as the authorization allows it (``shuyu.describe``)."""

    name: str
    title: str
    grade: str
    access_mode: str
    authorization: str
    min_group_size: int
    row_limit: int | None
    dimensions: list[str]
    aggregate_functions: list[str]
    columns: list[dict[str, Any]]
    details: dict[str, Any]

    def columns_frame(self, as_: Frame = "pandas") -> Any:
        return _frame(pa.Table.from_pylist(self.columns), as_)

    def __str__(self) -> str:
        lines = [
            f"{self.name} — {self.title}",
            f"grade {self.grade}, access {self.access_mode}, authorization {self.authorization}",
        ]
        if self.access_mode == "aggregate_only":
            lines.append(f"aggregate-only: {', '.join(self.aggregate_functions)}; groups under "
                         f"{self.min_group_size} people/entities are removed")
            lines.append(f"dimensions: {', '.join(self.dimensions) or '(none)'}")
        else:
            lines.append(f"row-level, at most {self.row_limit:,} rows per query")
        for c in self.columns:
            lines.append(f"  {c['name']:<24} {c['type']:<14} {c['identifier_class_label']}"
                         f"{' (pseudonym)' if c['returned_as'] == 'pseudonym' else ''}"
                         f"{' (never returned)' if c['returned_as'] == 'never' else ''}")
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


class Client:
    """A connection to the gateway; ``shuyu.query`` and friends use one made from the env."""

    def __init__(self, gateway_url: str | None = None, token: str | None = None,
                 authorization: str | None = None, timeout: float = 900.0):
        if gateway_url is None or token is None:
            env = _environment.from_environment()
            gateway_url = gateway_url or env.gateway_url
            token = token or env.token
            authorization = authorization or env.authorization
        self.authorization = authorization
        self.last_result: QueryInfo | None = None
        self._http = Http(gateway_url, {"Authorization": f"token {token}",
                                        "User-Agent": "shuyu-client"}, timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- HTTP -----------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kw: Any) -> Response:
        response = send(self._http, "query gateway", method, path, **kw)
        if response.status_code >= 400:
            raise error_for(response.status_code, *problem(response))
        return response

    # --- datasets -------------------------------------------------------------------------

    def datasets(self, as_: Frame = "pandas") -> Any:
        """What the authorization covers: name, title, grade, access mode, terms."""
        params = {"authorization": self.authorization} if self.authorization else None
        rows = self._request("GET", "datasets", params=params).json()
        keep = ("name", "title", "grade_label", "access_mode", "access_mode_label",
                "authorization", "min_group_size", "scenario", "provider", "version",
                "acquired_on", "ends_at")
        table = pa.Table.from_pylist([{k: r.get(k) for k in keep} for r in rows]) if rows else \
            pa.table({k: pa.array([], pa.string()) for k in keep})
        return _frame(table, as_)

    def describe(self, name: str) -> Description:
        params = {"authorization": self.authorization} if self.authorization else None
        d = self._request("GET", f"datasets/{name}", params=params).json()
        return Description(
            name=d["name"], title=d["title"], grade=d["grade_label"],
            access_mode=d["access_mode"], authorization=d["authorization"],
            min_group_size=d["min_group_size"], row_limit=d.get("row_limit"),
            dimensions=d.get("dimensions", []),
            aggregate_functions=d.get("aggregate_functions", []), columns=d["columns"],
            details=d,
        )

    # --- queries --------------------------------------------------------------------------

    def query(self, sql: str, as_: Frame = "pandas", progress: bool | None = None) -> Any:
        """Run one SELECT; returns a pandas (default) or polars DataFrame, or an Arrow table."""
        if as_ not in ("pandas", "polars", "arrow"):
            raise ShuyuError(f"as_ must be 'pandas', 'polars' or 'arrow', not {as_!r}",
                             "bad_argument")
        body = {"sql": sql, "authorization": self.authorization}
        meta = self._request("POST", "queries", json=body).json()
        table = self._fetch(meta, progress)
        self.last_result = QueryInfo(
            query_id=meta["query_id"], authorization=meta.get("authorization"),
            datasets=meta["datasets"], access_modes=meta["access_modes"], rows=meta["rows"],
            pages=meta["pages"], groups_suppressed=meta["groups_suppressed"],
            truncated=meta["truncated"], row_limit=meta["row_limit"],
            result_sha256=meta["result_sha256"], ledger_index=meta["ledger_index"],
            duration_ms=meta["duration_ms"], notes=meta.get("notes", []),
        )
        return _frame(table, as_)

    def _fetch(self, meta: dict[str, Any], progress: bool | None) -> pa.Table:
        total = sum(meta["page_bytes"])
        show = progress if progress is not None else (meta["pages"] > 1 or total > PROGRESS_BYTES)
        digest = hashlib.sha256()
        tables = []
        with page_progress(show, total, meta["rows"]) as advance:
            for n in range(meta["pages"]):
                if n == 0 and meta.get("first_page"):
                    data = base64.b64decode(meta["first_page"])
                else:
                    data = self._request("GET", meta["page_url"].format(page=n)).content
                digest.update(data)
                tables.append(pa.ipc.open_stream(data).read_all())
                advance(len(data))
        if digest.hexdigest() != meta["result_sha256"]:
            raise ResultIntegrityError(
                f"result {meta['query_id']} does not match the hash recorded in the ledger "
                f"(entry {meta['ledger_index']}); it was not returned", "integrity")
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        if table.num_rows != meta["rows"]:
            raise ResultIntegrityError(
                f"result {meta['query_id']} has {table.num_rows} rows, the gateway said "
                f"{meta['rows']}", "integrity")
        return table


def _frame(table: pa.Table, as_: Frame) -> Any:
    if as_ == "arrow":
        return table
    if as_ == "polars":
        import polars as pl

        return pl.from_arrow(table)
    return table.to_pandas()
