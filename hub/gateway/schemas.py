"""Shapes of the gateway's HTTP API: input, public output, errors (pydantic, at the edge only).

Inside, the gateway works with catalog records and ``service.QueryOutcome``; these models are
built from them in the routes and are what clients (``shuyu``) read.
"""

from __future__ import annotations

import base64

from pydantic import BaseModel, Field

from hub.catalog.enums import AccessMode, IdentifierClass
from hub.catalog.events import format_time
from hub.catalog.records import DatasetRecord, Grant
from hub.gateway.policy import MAX_SQL_CHARS
from hub.gateway.service import QueryOutcome


class QueryRequest(BaseModel):
    sql: str = Field(min_length=1, max_length=MAX_SQL_CHARS,
                     description="One read-only SELECT in DuckDB's dialect.")
    authorization: str | None = Field(
        None, max_length=120,
        description="The authorization to work under; needed only when several cover a dataset.")


class ErrorPublic(BaseModel):
    code: str = Field(description="Stable label of the error (e.g. query_refused).")
    reason: str = Field(description="What was refused or went wrong, for the analyst.")


class ColumnPublic(BaseModel):
    name: str
    type: str


class QueryResultPublic(BaseModel):
    query_id: str
    authorization: str | None
    datasets: list[str]
    access_modes: dict[str, str]
    columns: list[ColumnPublic]
    rows: int
    pages: int
    page_bytes: list[int]
    page_url: str = Field(description="Relative URL template of the pages: replace {page}.")
    groups_suppressed: int = Field(
        description="Groups removed because fewer distinct people or entities than the "
        "minimum group size were in them.")
    truncated: bool = Field(description="True if the row limit cut the result.")
    row_limit: int
    result_sha256: str = Field(
        description="SHA-256 of the pages' bytes concatenated in order, as in the ledger.")
    ledger_index: int = Field(description="Index of this query's entry in the ledger.")
    duration_ms: float
    notes: list[str]
    first_page: str | None = Field(
        None, description="Page 0 itself (base64 of its Arrow IPC bytes) when the result is "
        "one small page; the page URL serves the same bytes.")

    @classmethod
    def from_outcome(cls, o: QueryOutcome, page_url: str) -> "QueryResultPublic":
        return cls(
            query_id=o.query_id, authorization=o.authorization, datasets=o.datasets,
            access_modes=o.access_modes,
            columns=[ColumnPublic(name=n, type=t) for n, t in o.columns], rows=o.rows,
            pages=len(o.pages), page_bytes=o.pages, page_url=page_url,
            groups_suppressed=o.groups_suppressed, truncated=o.truncated,
            row_limit=o.row_limit, result_sha256=o.result_sha256,
            ledger_index=o.ledger_index, duration_ms=round(o.duration_ms, 3), notes=o.notes,
            first_page=base64.b64encode(o.first_page).decode() if o.first_page else None,
        )


class DatasetColumnPublic(BaseModel):
    name: str
    type: str
    label: str
    identifier_class: str
    identifier_class_label: str
    group_by_allowed: bool = Field(description="May be a dimension of aggregate queries.")
    returned_as: str = Field(description="'value', 'pseudonym' (keyed, per authorization) or "
                             "'never' (aggregate-only data: counted, joined, never output).")


class DatasetPublic(BaseModel):
    name: str
    title: str
    provider: str
    description: str
    grade: str
    grade_label: str
    open_attribute: str
    access_mode: str
    access_mode_label: str
    authorization: str
    scenario: str
    use_class: str
    min_group_size: int
    epsilon: float
    starts_at: str | None
    ends_at: str | None
    version: str | None
    acquired_on: str | None
    registration_code: str | None
    notes: list[str]

    @classmethod
    def from_grant(cls, g: Grant, ds: DatasetRecord) -> "DatasetPublic":
        return cls(**_dataset_fields(g, ds))


class DatasetDetailPublic(DatasetPublic):
    columns: list[DatasetColumnPublic]
    dimensions: list[str] = Field(description="Columns usable in GROUP BY and WHERE of "
                                  "aggregate queries.")
    aggregate_functions: list[str]
    row_limit: int | None

    @classmethod
    def from_grant_detail(cls, g: Grant, ds: DatasetRecord, row_limit: int
                          ) -> "DatasetDetailPublic":
        aggregate_only = g.access_mode is AccessMode.AGGREGATE_ONLY
        columns = []
        for c in g.columns:
            rec = ds.column(c.name)
            direct = c.identifier_class is IdentifierClass.DIRECT_IDENTIFIER
            columns.append(DatasetColumnPublic(
                name=c.name, type=c.type, label=rec.description if rec else "",
                identifier_class=str(c.identifier_class),
                identifier_class_label=c.identifier_class.label,
                group_by_allowed=c.group_by_allowed and not direct,
                returned_as="never" if aggregate_only and direct
                else "pseudonym" if direct else "value",
            ))
        dims = [c.name for c in columns if c.group_by_allowed] if aggregate_only else [
            c.name for c in columns]
        return cls(
            **_dataset_fields(g, ds), columns=columns, dimensions=dims,
            aggregate_functions=["COUNT", "COUNT(DISTINCT …)", "SUM", "AVG"] if aggregate_only
            else ["all allowed functions"],
            row_limit=None if aggregate_only else row_limit,
        )


def _dataset_fields(g: Grant, ds: DatasetRecord) -> dict:
    return dict(
        name=g.dataset, title=ds.title, provider=ds.provider, description=ds.description,
        grade=str(g.grade), grade_label=g.grade.label,
        open_attribute=str(ds.open_attribute), access_mode=str(g.access_mode),
        access_mode_label=g.access_mode.label, authorization=g.authorization,
        scenario=g.scenario, use_class=str(g.use_class), min_group_size=g.min_group_size,
        epsilon=g.epsilon, starts_at=format_time(g.starts_at), ends_at=format_time(g.ends_at),
        version=g.version, acquired_on=g.acquired_on.isoformat() if g.acquired_on else None,
        registration_code=g.registration_code, notes=list(g.notes),
    )
