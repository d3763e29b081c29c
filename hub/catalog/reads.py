"""Hot-path reads in SQLAlchemy Core: datasets and authorizations in a fixed number of queries.

The gateway checks every query against the catalog (``access.check_user_can_query``), so these
reads avoid the ORM's per-relationship loads: a dataset is two queries, any number of
authorizations is four. ``query_context`` — what one check needs — uses statements built once
at import and reads only the rows of the one user and dataset asked about. Each function takes
an open connection, so the caller decides the transaction (one snapshot for all the queries of a
check).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, and_, bindparam, exists, select

from hub.catalog.enums import (
    AccessMode,
    Grade,
    IdentifierClass,
    OpenAttribute,
    Role,
    UpdateFrequency,
    UseClass,
)
from hub.catalog.models import (
    Analyst,
    Authorization,
    AuthorizationAnalyst,
    AuthorizationColumn,
    AuthorizationDataset,
    Dataset,
    DatasetColumn,
    Operator,
    Provider,
)
from hub.catalog.records import AuthorizationRecord, ColumnRecord, DatasetRecord, DatasetScope
from hub.catalog.states import AuthorizationStatus

D, C, P = Dataset.__table__, DatasetColumn.__table__, Provider.__table__
A, OP = Authorization.__table__, Operator.__table__
AA, AN = AuthorizationAnalyst.__table__, Analyst.__table__
AD, AC = AuthorizationDataset.__table__, AuthorizationColumn.__table__


def datasets(conn: Connection, name: str | None = None) -> list[DatasetRecord]:
    q = select(D, P.c.name.label("provider_name")).join(P, P.c.id == D.c.provider_id)
    q = q.where(D.c.name == name) if name is not None else q.order_by(D.c.name)
    rows = conn.execute(q).mappings().all()
    if not rows:
        return []
    cols: dict[int, list[ColumnRecord]] = defaultdict(list)
    cq = select(C).where(C.c.dataset_id.in_([r["id"] for r in rows])).order_by(
        C.c.dataset_id, C.c.position
    )
    for c in conn.execute(cq).mappings():
        cols[c["dataset_id"]].append(
            ColumnRecord(c["name"], c["type"], IdentifierClass(c["identifier_class"]),
                         bool(c["group_by_allowed"]), c["description"], c["label"])
        )
    return [_dataset(r, tuple(cols[r["id"]])) for r in rows]


def _dataset(r: Any, columns: tuple[ColumnRecord, ...]) -> DatasetRecord:
    return DatasetRecord(
        name=r["name"], provider=r["provider_name"], grade=Grade(r["grade"]),
        open_attribute=OpenAttribute(r["open_attribute"]), columns=columns, title=r["title"],
        description=r["description"],
        update_frequency=UpdateFrequency(r["update_frequency"]) if r["update_frequency"] else None,
        version=r["version"], acquired_on=r["acquired_on"],
        registration_code=r["registration_code"], shared_source=r["shared_source"],
        consent_reference=r["consent_reference"], registered_at=r["registered_at"],
        updated_at=r["updated_at"], revision=r["revision"],
    )


def authorizations(
    conn: Connection,
    *,
    auth_id: str | None = None,
    status: AuthorizationStatus | None = None,
    operator: str | None = None,
    analyst: str | None = None,
    dataset: str | None = None,
) -> list[AuthorizationRecord]:
    q = select(A, OP.c.name.label("operator_name")).join(OP, OP.c.id == A.c.operator_id)
    if auth_id is not None:
        q = q.where(A.c.id == auth_id)
    if status is not None:
        q = q.where(A.c.status == str(status))
    if operator is not None:
        q = q.where(OP.c.name == operator)
    if analyst is not None:
        q = q.where(exists().where(and_(
            AA.c.authorization_id == A.c.id, AA.c.analyst_id == AN.c.id,
            AN.c.user_name == analyst)))
    if dataset is not None:
        q = q.where(exists().where(and_(
            AD.c.authorization_id == A.c.id, AD.c.dataset_id == D.c.id, D.c.name == dataset)))
    rows = conn.execute(q.order_by(A.c.created_at, A.c.id)).mappings().all()
    if not rows:
        return []
    ids = [r["id"] for r in rows]
    team: dict[str, set[str]] = defaultdict(set)
    for auth, user in conn.execute(
        select(AA.c.authorization_id, AN.c.user_name)
        .join(AN, AN.c.id == AA.c.analyst_id)
        .where(AA.c.authorization_id.in_(ids))
    ):
        team[auth].add(user)
    scope_rows = conn.execute(
        select(AD.c.id, AD.c.authorization_id, AD.c.access_mode, AD.c.epsilon, D.c.name)
        .join(D, D.c.id == AD.c.dataset_id)
        .where(AD.c.authorization_id.in_(ids))
    ).all()
    columns: dict[int, set[str]] = defaultdict(set)
    if scope_rows:
        for scope_id, name in conn.execute(
            select(AC.c.scope_id, AC.c.column_name).where(
                AC.c.scope_id.in_([s.id for s in scope_rows]))
        ):
            columns[scope_id].add(name)
    scopes: dict[str, list[DatasetScope]] = defaultdict(list)
    for s in scope_rows:
        scopes[s.authorization_id].append(
            DatasetScope(s.name, AccessMode(s.access_mode), s.epsilon, frozenset(columns[s.id]))
        )
    return [_authorization(r, team[r["id"]], scopes[r["id"]]) for r in rows]


def _authorization(r: Any, team: set[str], scope: list[DatasetScope]) -> AuthorizationRecord:
    return AuthorizationRecord(
        id=r["id"], operator=r["operator_name"], scenario=r["scenario"],
        use_class=UseClass(r["use_class"]), min_group_size=r["min_group_size"],
        starts_at=r["starts_at"], ends_at=r["ends_at"],
        status=AuthorizationStatus(r["status"]), analysts=frozenset(team),
        scope=tuple(sorted(scope, key=lambda s: s.dataset)), created_by=r["created_by"],
        created_at=r["created_at"], updated_at=r["updated_at"],
        status_reason=r["status_reason"],
        status_changed_by_role=Role(r["status_changed_by_role"])
        if r["status_changed_by_role"] else None,
        revision=r["revision"],
    )


# --- the query-time check: prebuilt statements, two round trips --------------------------------

_DATASET = (
    select(D, P.c.name.label("provider_name"), C.c.name.label("c_name"),
           C.c.type.label("c_type"), C.c.identifier_class.label("c_class"),
           C.c.group_by_allowed.label("c_group_by"), C.c.description.label("c_description"),
           C.c.label.label("c_label"))
    .join(P, P.c.id == D.c.provider_id)
    .outerjoin(C, C.c.dataset_id == D.c.id)
    .where(D.c.name == bindparam("dataset"))
    .order_by(C.c.position)
)
_COVERING = (
    select(A, OP.c.name.label("operator_name"), AD.c.id.label("scope_id"),
           AD.c.access_mode.label("scope_mode"), AD.c.epsilon.label("scope_epsilon"),
           AC.c.column_name.label("scope_column"))
    .join(OP, OP.c.id == A.c.operator_id)
    .join(AD, AD.c.authorization_id == A.c.id)
    .join(D, D.c.id == AD.c.dataset_id)
    .join(AA, AA.c.authorization_id == A.c.id)
    .join(AN, AN.c.id == AA.c.analyst_id)
    .outerjoin(AC, AC.c.scope_id == AD.c.id)
    .where(D.c.name == bindparam("dataset"), AN.c.user_name == bindparam("user"))
    .order_by(A.c.created_at, A.c.id)
)


def dataset(conn: Connection, name: str) -> DatasetRecord | None:
    """One dataset by name, in one query (the gateway asks for it on every query)."""
    rows = conn.execute(_DATASET, {"dataset": name}).mappings().all()
    if not rows:
        return None
    columns = tuple(
        ColumnRecord(r["c_name"], r["c_type"], IdentifierClass(r["c_class"]),
                     bool(r["c_group_by"]), r["c_description"], r["c_label"])
        for r in rows if r["c_name"] is not None
    )
    return _dataset(rows[0], columns)


def query_context(
    conn: Connection, user: str, dataset_name: str
) -> tuple[DatasetRecord | None, list[AuthorizationRecord]]:
    """The dataset and partial views of the agreements naming `user` and it (see storage)."""
    ds = dataset(conn, dataset_name)
    if ds is None:
        return None, []
    first: dict[str, Any] = {}
    scoped: dict[str, set[str]] = defaultdict(set)
    for r in conn.execute(_COVERING, {"dataset": dataset_name, "user": user}).mappings():
        first.setdefault(r["id"], r)
        if r["scope_column"] is not None:
            scoped[r["id"]].add(r["scope_column"])
    views = [
        replace(
            _authorization(r, {user}, [DatasetScope(dataset_name, AccessMode(r["scope_mode"]),
                                                    r["scope_epsilon"],
                                                    frozenset(scoped[auth_id]))]),
            partial=True,
        )
        for auth_id, r in first.items()
    ]
    return ds, views
