"""Shared plumbing of the catalog service: the clock, ids, lookups, events and the write path.

Every change goes through ``ServiceBase._commit(records, events)``, i.e. ``CatalogStore.apply``:
the records and their ledger events as one unit, ledger first. Refusals by policy or permission
are themselves recorded (``catalog.action_refused``) on a best-effort basis by ``@audited``: the
refusal stands whether or not the ledger can record it. ``@retried`` runs a change again, from
reading onwards, when a concurrent change to the same record got in first (the losing attempt
stored and logged nothing), so two approvals on one agreement both take effect.
"""

from __future__ import annotations

import functools
import secrets
from datetime import datetime, timezone
from typing import Any, Callable, Sequence, TypeVar

from hub.catalog.enums import Role
from hub.catalog.events import Actor, AuditEvent, AuditEventType
from hub.catalog.exceptions import (
    CatalogError,
    ConcurrentChange,
    InvalidInput,
    NotFound,
    PermissionDenied,
    PolicyRefused,
)
from hub.catalog.permissions import Action, check_actor_can, check_role_separation
from hub.catalog.records import (
    AnalystRecord,
    AuthorizationRecord,
    DataRequestRecord,
    DatasetRecord,
    OperatorRecord,
)
from hub.catalog.storage import CatalogStore, Record

Clock = Callable[[], datetime]
F = TypeVar("F", bound=Callable[..., Any])
SYSTEM_ACTOR = Actor("shuyu", Role.SERVICE, "scheduler")
CONFLICT_ATTEMPTS = 5


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def new_id(prefix: str) -> str:
    """A short random id such as ``auth-3f9a0c7d1e`` (40 bits: unguessable enough, easy to type)."""
    return f"{prefix}-{secrets.token_hex(5)}"


def audited(action: str) -> Callable[[F], F]:
    """Record policy and permission refusals of `action` in the ledger, then re-raise them."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(self: "ServiceBase", actor: Actor, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(self, actor, *args, **kwargs)
            except (PolicyRefused, PermissionDenied) as e:
                self._record_refusal(actor, action, e)
                raise

        return wrapper  # type: ignore[return-value]

    return decorate


def retried(fn: F) -> F:
    """Re-run `fn` (re-reading and re-checking everything) after a ConcurrentChange."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            try:
                return fn(*args, **kwargs)
            except ConcurrentChange:
                if attempt == CONFLICT_ATTEMPTS:
                    raise

    return wrapper  # type: ignore[return-value]


class ServiceBase:
    def __init__(self, store: CatalogStore, clock: Clock = utc_now):
        self.store = store
        self.clock = clock

    def now(self) -> datetime:
        at = self.clock()
        if at.tzinfo is None:
            raise ValueError("the service clock must return timezone-aware times")
        return at.astimezone(timezone.utc)

    # --- lookups that refuse missing records ---------------------------------------------

    def get_dataset(self, name: str) -> DatasetRecord:
        ds = self.store.get_dataset(name)
        if ds is None:
            raise NotFound(f"dataset {name!r} is not in the catalog")
        return ds

    def get_operator(self, name: str) -> OperatorRecord:
        op = self.store.get_operator(name)
        if op is None:
            raise NotFound(f"operator {name!r} does not exist")
        return op

    def get_analyst(self, user_name: str) -> AnalystRecord:
        analyst = self.store.get_analyst(user_name)
        if analyst is None:
            raise NotFound(f"analyst {user_name!r} does not exist")
        return analyst

    def get_authorization(self, auth_id: str) -> AuthorizationRecord:
        auth = self.store.get_authorization(auth_id)
        if auth is None:
            raise NotFound(f"authorization {auth_id!r} does not exist")
        return auth

    def get_data_request(self, request_id: str) -> DataRequestRecord:
        req = self.store.get_data_request(request_id)
        if req is None:
            raise NotFound(f"data request {request_id!r} does not exist")
        return req

    # --- permissions -----------------------------------------------------------------------

    def _check_actor(self, actor: Actor, action: Action | None = None) -> None:
        if not isinstance(actor, Actor):
            raise InvalidInput("every change needs an Actor (name and role)")
        if actor.role is not Role.SERVICE:
            is_analyst = self.store.get_analyst(actor.name) is not None
            check_role_separation(actor, is_analyst)
        if action is not None:
            check_actor_can(actor, action)

    # --- writing ------------------------------------------------------------------------------

    def _event(
        self, kind: AuditEventType, actor: Actor, at: datetime, **fields: Any
    ) -> AuditEvent:
        return AuditEvent(kind, actor, at, **fields)

    def _commit(self, records: Sequence[Record], events: Sequence[AuditEvent]) -> list[int]:
        return self.store.apply(records, events)

    def _record_refusal(self, actor: Actor, action: str, error: CatalogError) -> None:
        event = AuditEvent(
            AuditEventType.ACTION_REFUSED,
            actor,
            self.now(),
            details={"action": action, "code": error.code, "reason": error.message},
        )
        try:
            self.store.apply([], [event])
        except CatalogError:
            pass  # the refusal stands; the ledger being down is reported by the next change
