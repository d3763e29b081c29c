"""Authorization agreements (授权运营协议): creation, status transitions, term and scope changes.

An agreement binds one operator and some of its analysts to datasets (and, per dataset, the
columns, access mode and privacy budget), a scenario (应用场景), a use class and a term of at
most five years. Status changes follow ``states.AUTHORIZATION_TRANSITIONS``: ``check`` first,
then ``transition()`` applies the change with its ledger event.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Sequence

from hub.catalog import policies
from hub.catalog import validation as v
from hub.catalog.base import SYSTEM_ACTOR, ServiceBase, audited, new_id, retried
from hub.catalog.enums import AccessMode, UseClass
from hub.catalog.events import Actor, AuditEvent, AuditEventType, format_time
from hub.catalog.exceptions import InvalidInput, PolicyRefused
from hub.catalog.permissions import Action
from hub.catalog.records import AuthorizationRecord, DatasetRecord, DatasetScope, OperatorRecord
from hub.catalog.states import AuthorizationStatus, check_authorization_transition

S = AuthorizationStatus


@dataclass(frozen=True)
class ScopeRequest:
    """One dataset asked for in an agreement; `columns=None` means every column."""

    dataset: str
    columns: tuple[str, ...] | None = None
    access_mode: AccessMode | None = None
    epsilon: float | None = None


def dataset_facts(ds: DatasetRecord) -> dict[str, Any]:
    """What an auditor needs to know about a dataset named in an agreement entry."""
    return {
        "dataset": ds.name,
        "provider": ds.provider,
        "grade": str(ds.grade),
        "open_attribute": str(ds.open_attribute),
        "registration_code": ds.registration_code,
        "version": ds.version,
        "acquired_on": ds.acquired_on.isoformat() if ds.acquired_on else None,
    }


class AgreementService(ServiceBase):
    # --- building and checking a scope -----------------------------------------------------

    def _scope_item(
        self, operator: OperatorRecord, req: ScopeRequest, current: DatasetScope | None = None
    ) -> tuple[DatasetScope, DatasetRecord]:
        ds = self.get_dataset(v.dataset_name(req.dataset))
        if req.columns is None:
            columns = frozenset(ds.column_names)
        else:
            columns = frozenset(v.unique_names(req.columns, f"columns of {ds.name!r}"))
        mode = req.access_mode or (current.access_mode if current else None)
        if mode:
            mode = v.choice(AccessMode, mode, "access mode")
        else:
            mode = policies.default_access_mode(ds)
        eps = req.epsilon if req.epsilon is not None else (
            current.epsilon if current else policies.DEFAULT_EPSILON
        )
        item = DatasetScope(ds.name, mode, v.epsilon(eps, ds.name), columns)
        policies.check_scope_columns(ds, columns)
        policies.check_dataset_authorizable(ds)
        policies.check_access_mode(ds, mode)
        policies.check_operator_for_grade(operator, ds)
        return item, ds

    def _analysts_of(self, operator: str, names: Sequence[str]) -> frozenset[str]:
        names = v.unique_names([v.user_name(n) for n in names], "analysts")
        if not names:
            raise InvalidInput("an authorization needs at least one analyst")
        for name in names:
            analyst = self.get_analyst(name)
            if analyst.operator != operator:
                raise PolicyRefused(
                    f"analyst {name!r} works for operator {analyst.operator!r}, not {operator!r}"
                )
        return frozenset(names)

    # --- creating ----------------------------------------------------------------------------

    @audited("create authorization")
    @retried
    def create_authorization(
        self,
        actor: Actor,
        *,
        operator: str,
        analysts: Sequence[str],
        scope: Sequence[ScopeRequest],
        scenario: str,
        use_class: UseClass | str,
        starts_at: datetime,
        ends_at: datetime,
        min_group_size: int = policies.DEFAULT_MIN_GROUP_SIZE,
    ) -> AuthorizationRecord:
        self._check_actor(actor, Action.CREATE_AUTHORIZATION)
        scenario = v.text(scenario, "scenario (应用场景)", 2000)
        use = v.choice(UseClass, use_class, "use class")
        min_group = v.min_group_size(min_group_size)
        start, end = v.aware(starts_at, "start"), v.aware(ends_at, "end")
        op = self.get_operator(operator)
        v.unique_names([s.dataset for s in scope], "datasets")
        if not scope:
            raise InvalidInput("an authorization needs at least one dataset")
        team = self._analysts_of(op.name, analysts)
        at = self.now()
        policies.check_term(start, end, at)
        items = [self._scope_item(op, req) for req in scope]
        record = AuthorizationRecord(
            id=new_id("auth"), operator=op.name, scenario=scenario, use_class=use,
            min_group_size=min_group, starts_at=start, ends_at=end, status=S.ACTIVE,
            analysts=team, scope=tuple(sorted((i for i, _ in items), key=lambda s: s.dataset)),
            created_by=actor.name, created_at=at, updated_at=at,
            status_changed_by_role=actor.role,
        )
        details = {**record.terms_json(), "datasets": [dataset_facts(ds) for _, ds in items]}
        event = self._event(AuditEventType.AUTHORIZATION_CREATED, actor, at, operator=op.name,
                            authorization=record.id, details=details)
        self._commit([record], [event])
        return self.get_authorization(record.id)

    # --- status transitions ------------------------------------------------------------------

    def transition(
        self, actor: Actor, auth_id: str, target: AuthorizationStatus, reason: str
    ) -> AuthorizationRecord:
        """Move an agreement to `target` after the transition table and policies allow it."""
        self._check_actor(actor)
        reason = v.text(reason, "reason", 2000)
        auth = self.get_authorization(auth_id)
        at = self.now()
        if target is S.EXPIRED:
            current = auth.status
            if at < auth.ends_at:
                raise PolicyRefused(
                    f"authorization {auth_id} runs until {auth.ends_at.isoformat()}; it cannot "
                    "expire before its end (revoke it instead)"
                )
        else:
            current = auth.effective_status(at)
        step = check_authorization_transition(current, target, actor.role, auth_id)
        if target is S.ACTIVE:
            policies.check_resume_allowed(auth, actor.role)
        record = replace(auth, status=target, status_reason=reason, updated_at=at,
                         status_changed_by_role=actor.role)
        event = self._event(
            step.event, actor, at, operator=auth.operator, authorization=auth_id,
            details={"from": str(auth.status), "to": str(target), "reason": reason,
                     **auth.terms_json()},
        )
        self._commit([record], [event])
        return self.get_authorization(auth_id)

    @audited("suspend authorization")
    @retried
    def suspend(self, actor: Actor, auth_id: str, reason: str) -> AuthorizationRecord:
        return self.transition(actor, auth_id, S.SUSPENDED, reason)

    @audited("resume authorization")
    @retried
    def resume(self, actor: Actor, auth_id: str, reason: str) -> AuthorizationRecord:
        return self.transition(actor, auth_id, S.ACTIVE, reason)

    @audited("revoke authorization")
    @retried
    def revoke(self, actor: Actor, auth_id: str, reason: str) -> AuthorizationRecord:
        return self.transition(actor, auth_id, S.REVOKED, reason)

    def expire_due(self, actor: Actor = SYSTEM_ACTOR) -> list[AuthorizationRecord]:
        """Record `authorization.expired` for every live agreement past its end."""
        at = self.now()
        due = [
            a
            for status in (S.ACTIVE, S.SUSPENDED)
            for a in self.store.list_authorizations(status=status)
            if a.ends_at <= at
        ]
        return [
            self.transition(actor, a.id, S.EXPIRED, f"term ended at {format_time(a.ends_at)}")
            for a in due
        ]

    # --- term and scope -----------------------------------------------------------------

    @audited("extend authorization")
    @retried
    def extend(
        self, actor: Actor, auth_id: str, ends_at: datetime, reason: str
    ) -> AuthorizationRecord:
        self._check_actor(actor, Action.EXTEND_AUTHORIZATION)
        reason = v.text(reason, "reason", 2000)
        new_end = v.aware(ends_at, "new end")
        auth = self.get_authorization(auth_id)
        at = self.now()
        policies.check_extension(auth, new_end, at)
        record = replace(auth, ends_at=new_end, updated_at=at)
        event = self._event(
            AuditEventType.AUTHORIZATION_EXTENDED, actor, at, operator=auth.operator,
            authorization=auth_id,
            details={"reason": reason, "old_end": format_time(auth.ends_at),
                     "new_end": format_time(new_end), **record.terms_json()},
        )
        self._commit([record], [event])
        return self.get_authorization(auth_id)

    @audited("change authorization scope")
    @retried
    def change_scope(
        self,
        actor: Actor,
        auth_id: str,
        *,
        reason: str,
        set_scope: Sequence[ScopeRequest] = (),
        remove: Sequence[str] = (),
    ) -> AuthorizationRecord:
        """Add or replace datasets in the scope (`set_scope`) and drop others (`remove`)."""
        self._check_actor(actor, Action.CHANGE_SCOPE)
        reason = v.text(reason, "reason", 2000)
        auth = self.get_authorization(auth_id)
        at = self.now()
        policies.check_changeable(auth, at, "scope")
        record = self._rescoped(auth, set_scope, remove, at)
        event = self.scope_changed_event(actor, auth, record, reason, at)
        self._commit([record], [event])
        return self.get_authorization(auth_id)

    def _rescoped(
        self,
        auth: AuthorizationRecord,
        set_scope: Sequence[ScopeRequest],
        remove: Sequence[str],
        at: datetime,
    ) -> AuthorizationRecord:
        v.unique_names([s.dataset for s in set_scope] + list(remove), "datasets to change")
        scope = {s.dataset: s for s in auth.scope}
        for name in remove:
            if name not in scope:
                raise InvalidInput(f"dataset {name!r} is not in the scope of {auth.id}")
            del scope[name]
        op = self.get_operator(auth.operator)
        for req in set_scope:
            item, _ = self._scope_item(op, req, scope.get(req.dataset))
            scope[item.dataset] = item
        if not scope:
            raise InvalidInput(
                f"authorization {auth.id} would cover no dataset; revoke it instead"
            )
        new_scope = tuple(sorted(scope.values(), key=lambda s: s.dataset))
        if new_scope == auth.scope:
            raise InvalidInput(f"the scope of authorization {auth.id} would not change")
        return replace(auth, scope=new_scope, updated_at=at)

    def scope_changed_event(
        self,
        actor: Actor,
        old: AuthorizationRecord,
        new: AuthorizationRecord,
        reason: str,
        at: datetime,
        data_request: str | None = None,
    ) -> AuditEvent:
        before = {s.dataset: s.to_json() for s in old.scope}
        after = {s.dataset: s.to_json() for s in new.scope}
        details: dict[str, Any] = {
            "reason": reason,
            "added": sorted(set(after) - set(before)),
            "removed": sorted(set(before) - set(after)),
            "changed": sorted(d for d in after if d in before and after[d] != before[d]),
            "before": list(before.values()),
            **new.terms_json(),
        }
        if data_request:
            details["data_request"] = data_request
        return self._event(AuditEventType.AUTHORIZATION_SCOPE_CHANGED, actor, at,
                           operator=new.operator, authorization=new.id, details=details)

    @audited("change authorization analysts")
    @retried
    def change_analysts(
        self,
        actor: Actor,
        auth_id: str,
        *,
        reason: str,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
    ) -> AuthorizationRecord:
        self._check_actor(actor, Action.CHANGE_ANALYSTS)
        reason = v.text(reason, "reason", 2000)
        auth = self.get_authorization(auth_id)
        at = self.now()
        policies.check_changeable(auth, at, "analysts")
        missing = sorted(set(remove) - auth.analysts)
        if missing:
            raise InvalidInput(f"not analysts of {auth_id}: {', '.join(missing)}")
        already = sorted(set(add) & auth.analysts)
        if already:
            raise InvalidInput(f"already analysts of {auth_id}: {', '.join(already)}")
        team = auth.analysts - set(remove)
        if add:
            team = team | self._analysts_of(auth.operator, add)
        if not team:
            raise InvalidInput(f"authorization {auth_id} would have no analyst; revoke it instead")
        if team == auth.analysts:
            raise InvalidInput(f"the analysts of authorization {auth_id} would not change")
        record = replace(auth, analysts=frozenset(team), updated_at=at)
        event = self._event(
            AuditEventType.AUTHORIZATION_ANALYSTS_CHANGED, actor, at, operator=auth.operator,
            authorization=auth_id,
            details={"reason": reason, "added": sorted(add), "removed": sorted(remove),
                     **record.terms_json()},
        )
        self._commit([record], [event])
        return self.get_authorization(auth_id)

    # --- reading ----------------------------------------------------------------------------

    def list_authorizations(
        self,
        status: AuthorizationStatus | None = None,
        operator: str | None = None,
        analyst: str | None = None,
        dataset: str | None = None,
    ) -> list[AuthorizationRecord]:
        """Agreements matching the filters; `status` is matched against the effective status."""
        at = self.now()
        found = self.store.list_authorizations(operator=operator, analyst=analyst,
                                               dataset=dataset)
        return [a for a in found if status is None or a.effective_status(at) == status]
