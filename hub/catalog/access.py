"""The query-time check: may this user query this dataset (and these columns) now?

``check_user_can_query(store, user, dataset, columns, at)`` is what the gateway calls before it
runs anything. It returns the effective :class:`Grant` (access mode, allowed columns with their
identifier classes, minimum group size, privacy budget, provenance) or raises a
``QueryNotAuthorized`` subclass that says exactly what was refused:

- no agreement names the user and the dataset (``NoAuthorization``);
- the agreement is suspended, revoked or past its end (``AuthorizationNotActive``): expiry is
  decided from the clock here, whether or not the expiry job has recorded it yet;
- the term has not started (``OutsideTerm``);
- the dataset is now 核心 or 不予开放, or shared data lost its consent (``DatasetWithdrawn``);
- columns outside the scope or unknown (``ColumnsNotAuthorized``);
- several active agreements cover the dataset and none was named (``AmbiguousAuthorization``).

重要 data is always served aggregate-only, even if the dataset was re-graded after the agreement.
``user_can_query`` is the bool twin; ``check_user_can_work`` is the pre-spawn check (does the user
hold any agreement in force now?).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Sequence

from hub.catalog import policies
from hub.catalog.enums import AccessMode, Grade
from hub.catalog.events import format_time
from hub.catalog.exceptions import (
    AmbiguousAuthorization,
    AuthorizationNotActive,
    ColumnsNotAuthorized,
    DatasetWithdrawn,
    NoAuthorization,
    NotAuthorizable,
    OutsideTerm,
    QueryNotAuthorized,
)
from hub.catalog.records import AuthorizationRecord, ColumnGrant, DatasetRecord, Grant
from hub.catalog.states import AuthorizationStatus
from hub.catalog.storage import CatalogStore

S = AuthorizationStatus


def _why_not_live(auth: AuthorizationRecord, at: datetime) -> str:
    status = auth.effective_status(at)
    if status is S.EXPIRED:
        return f"authorization {auth.id} expired at {format_time(auth.ends_at)}"
    if status is S.ACTIVE and at < auth.starts_at:
        return f"authorization {auth.id} starts at {format_time(auth.starts_at)}"
    why = f"authorization {auth.id} is {status}"
    return f"{why} ({auth.status_reason})" if auth.status_reason else why


def _is_live(auth: AuthorizationRecord, at: datetime) -> bool:
    return auth.effective_status(at) is S.ACTIVE and auth.starts_at <= at


def _pick(
    user: str, dataset: str, candidates: list[AuthorizationRecord], at: datetime,
    authorization: str | None,
) -> AuthorizationRecord:
    if authorization is not None:
        candidates = [a for a in candidates if a.id == authorization]
        if not candidates:
            raise NoAuthorization(
                f"authorization {authorization} does not give {user} access to dataset "
                f"{dataset!r}", user, dataset)
    if not candidates:
        raise NoAuthorization(
            f"{user} has no authorization that covers dataset {dataset!r}", user, dataset
        )
    live = [a for a in candidates if _is_live(a, at)]
    if len(live) == 1:
        return live[0]
    if len(live) > 1:
        ids = sorted(a.id for a in live)
        raise AmbiguousAuthorization(
            f"{user} holds several active authorizations covering dataset {dataset!r} "
            f"({', '.join(ids)}); name the one this session works under", user, dataset, ids)
    reasons = "; ".join(_why_not_live(a, at) for a in candidates)
    first = candidates[0]
    if all(a.effective_status(at) is S.ACTIVE for a in candidates):
        raise OutsideTerm(f"{user} may not query dataset {dataset!r} yet: {reasons}", user,
                          dataset)
    raise AuthorizationNotActive(
        f"{user} may not query dataset {dataset!r}: {reasons}", user, dataset, first.id,
        str(first.effective_status(at)))


def _check_dataset_still_authorizable(user: str, ds: DatasetRecord) -> None:
    try:
        policies.check_dataset_authorizable(ds)
    except NotAuthorizable as e:
        raise DatasetWithdrawn(f"access refused: {e}", user, ds.name) from None


def check_user_can_query(
    store: CatalogStore,
    user: str,
    dataset: str,
    columns: Sequence[str] = (),
    at: datetime | None = None,
    authorization: str | None = None,
) -> Grant:
    """The effective grant of `user` on `dataset` at `at`, or a QueryNotAuthorized saying why."""
    at = (at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    ds, candidates = store.query_context(user, dataset)
    if ds is None:
        raise NoAuthorization(f"dataset {dataset!r} is not in the catalog", user, dataset)
    auth = _pick(user, dataset, candidates, at, authorization)
    _check_dataset_still_authorizable(user, ds)
    scope = auth.scope_for(dataset)
    assert scope is not None  # the store matched the dataset
    requested = list(dict.fromkeys(columns))
    unknown = [c for c in requested if ds.column(c) is None]
    outside = [c for c in requested if ds.column(c) is not None and c not in scope.columns]
    if unknown or outside:
        parts = []
        if outside:
            parts.append(f"column(s) {', '.join(outside)} are outside the scope of {auth.id}")
        if unknown:
            parts.append(f"dataset {dataset!r} has no column(s) {', '.join(unknown)}")
        raise ColumnsNotAuthorized(
            f"{user} may not query {dataset}: {'; '.join(parts)}", user, dataset,
            outside + unknown)
    mode, notes = scope.access_mode, []
    if ds.grade is Grade.IMPORTANT and mode is not AccessMode.AGGREGATE_ONLY:
        mode = AccessMode.AGGREGATE_ONLY
        notes.append("dataset is graded 重要 (important data): served aggregate-only")
    return Grant(
        user=user, dataset=dataset, authorization=auth.id, operator=auth.operator,
        access_mode=mode,
        columns=tuple(
            ColumnGrant(c.name, c.type, c.identifier_class, c.group_by_allowed, c.label)
            for c in ds.columns if c.name in scope.columns
        ),
        requested_columns=tuple(requested), min_group_size=auth.min_group_size,
        epsilon=scope.epsilon, scenario=auth.scenario, use_class=auth.use_class, grade=ds.grade,
        starts_at=auth.starts_at, ends_at=auth.ends_at,
        registration_code=ds.registration_code, version=ds.version, acquired_on=ds.acquired_on,
        notes=tuple(notes),
    )


def user_can_query(
    store: CatalogStore,
    user: str,
    dataset: str,
    columns: Sequence[str] = (),
    at: datetime | None = None,
    authorization: str | None = None,
) -> bool:
    try:
        check_user_can_query(store, user, dataset, columns, at, authorization)
    except QueryNotAuthorized:
        return False
    return True


def check_user_can_work(
    store: CatalogStore, user: str, at: datetime | None = None
) -> list[AuthorizationRecord]:
    """The agreements in force for `user` at `at` (pre-spawn check); refuses when there are none."""
    at = (at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    held = store.list_authorizations(analyst=user)
    if not held:
        raise NoAuthorization(f"{user} holds no authorization", user, "")
    live = [a for a in held if _is_live(a, at)]
    if not live:
        reasons = "; ".join(_why_not_live(a, at) for a in held)
        raise AuthorizationNotActive(
            f"{user} holds no authorization in force: {reasons}", user, "", held[0].id,
            str(held[0].effective_status(at)))
    return live


def user_can_work(store: CatalogStore, user: str, at: datetime | None = None) -> bool:
    try:
        check_user_can_work(store, user, at)
    except QueryNotAuthorized:
        return False
    return True


def grants_for_user(
    store: CatalogStore, user: str, at: datetime | None = None,
    authorization: str | None = None,
) -> list[Grant]:
    """Every dataset `user` may query now, one grant each (what ``shuyu.datasets()`` lists).

    Datasets withdrawn since the agreement (re-graded 核心 or 不予开放) are left out.
    """
    grants = []
    for auth in check_user_can_work(store, user, at):
        if authorization is not None and auth.id != authorization:
            continue
        for item in auth.scope:
            try:
                grants.append(check_user_can_query(store, user, item.dataset, (), at, auth.id))
            except DatasetWithdrawn:
                continue
    return grants
