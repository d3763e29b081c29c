"""Data requests: an analyst asks for a dataset or columns outside their agreement's scope.

The request names the agreement, the dataset, the columns (none = every column) and a reason.
The authority approves it (the agreement's scope grows by what was asked, in one ledger batch
with ``authorization.scope_changed``) or refuses it, with a reason either way; the analyst who
asked may withdraw it while it is pending.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

from hub.catalog import policies
from hub.catalog import validation as v
from hub.catalog.agreements import AgreementService, ScopeRequest, dataset_facts
from hub.catalog.base import audited, new_id, retried
from hub.catalog.enums import AccessMode, Role
from hub.catalog.events import Actor, AuditEventType
from hub.catalog.exceptions import InvalidInput, PermissionDenied, PolicyRefused
from hub.catalog.permissions import Action
from hub.catalog.records import AuthorizationRecord, DataRequestRecord, DatasetRecord
from hub.catalog.states import (
    AuthorizationStatus,
    DataRequestStatus,
    check_data_request_transition,
)

R = DataRequestStatus


def request_facts(req: DataRequestRecord, ds: DatasetRecord) -> dict[str, Any]:
    return {"request": req.to_json(), "dataset_facts": dataset_facts(ds)}


class DataRequestService(AgreementService):
    @audited("create data request")
    @retried
    def create_data_request(
        self,
        actor: Actor,
        authorization: str,
        dataset: str,
        columns: Sequence[str] = (),
        reason: str = "",
        access_mode: AccessMode | str | None = None,
    ) -> DataRequestRecord:
        self._check_actor(actor, Action.CREATE_DATA_REQUEST)
        reason = v.text(reason, "reason for the request", 2000)
        mode = v.choice(AccessMode, access_mode, "access mode") if access_mode else None
        auth = self.get_authorization(authorization)
        if actor.name not in auth.analysts:
            raise PermissionDenied(f"{actor.name} is not an analyst of authorization {auth.id}")
        at = self.now()
        if auth.effective_status(at) is not AuthorizationStatus.ACTIVE:
            raise PolicyRefused(
                f"authorization {auth.id} is {auth.effective_status(at)}; data can be requested "
                "only under an active authorization"
            )
        ds = self.get_dataset(v.dataset_name(dataset))
        wanted = self._requested_columns(ds, columns)
        self._check_outside_scope(auth, ds, wanted)
        policies.check_dataset_authorizable(ds)
        if mode is not None:
            policies.check_access_mode(ds, mode)
        self._check_not_pending(auth.id, actor.name, ds.name, wanted)
        record = DataRequestRecord(
            id=new_id("req"), authorization=auth.id, requester=actor.name, dataset=ds.name,
            columns=wanted, reason=reason, status=R.PENDING, requested_at=at, access_mode=mode,
        )
        event = self._event(
            AuditEventType.DATA_REQUEST_CREATED, actor, at, operator=auth.operator,
            authorization=auth.id, dataset=ds.name,
            details={**request_facts(record, ds), "scope_now": self._scope_json(auth, ds.name)},
        )
        self._commit([record], [event])
        return self.get_data_request(record.id)

    @staticmethod
    def _requested_columns(ds: DatasetRecord, columns: Sequence[str]) -> tuple[str, ...]:
        if not columns:
            return ds.column_names
        names = v.unique_names([v.column_name(c, ds.name) for c in columns], "requested columns")
        unknown = [c for c in names if ds.column(c) is None]
        if unknown:
            raise InvalidInput(
                f"dataset {ds.name!r} has no column(s) {', '.join(unknown)}; its columns are: "
                f"{', '.join(ds.column_names)}"
            )
        return tuple(c for c in ds.column_names if c in names)

    @staticmethod
    def _check_outside_scope(
        auth: AuthorizationRecord, ds: DatasetRecord, wanted: tuple[str, ...]
    ) -> None:
        current = auth.scope_for(ds.name)
        if current is not None and set(wanted) <= current.columns:
            raise InvalidInput(
                f"dataset {ds.name!r} with column(s) {', '.join(wanted)} is already within the "
                f"scope of authorization {auth.id}"
            )

    def _check_not_pending(
        self, auth_id: str, requester: str, dataset: str, wanted: tuple[str, ...]
    ) -> None:
        for other in self.store.list_data_requests(status=R.PENDING, authorization=auth_id):
            if (other.requester, other.dataset) == (requester, dataset) and set(wanted) <= set(
                other.columns
            ):
                raise InvalidInput(
                    f"data request {other.id} for the same data is already pending"
                )

    @staticmethod
    def _scope_json(auth: AuthorizationRecord, dataset: str) -> dict[str, Any] | None:
        current = auth.scope_for(dataset)
        return current.to_json() if current else None

    # --- decisions --------------------------------------------------------------------------

    @audited("approve data request")
    @retried
    def approve_data_request(
        self,
        actor: Actor,
        request_id: str,
        reason: str,
        access_mode: AccessMode | str | None = None,
        epsilon: float | None = None,
    ) -> tuple[DataRequestRecord, AuthorizationRecord]:
        """Approve: the agreement's scope grows by the request, in the same ledger batch."""
        self._check_actor(actor)
        reason = v.text(reason, "reason for the decision", 2000)
        req = self.get_data_request(request_id)
        step = check_data_request_transition(req.status, R.APPROVED, actor.role, req.id)
        auth = self.get_authorization(req.authorization)
        at = self.now()
        policies.check_changeable(auth, at, "scope")
        current = auth.scope_for(req.dataset)
        columns = tuple(sorted(set(req.columns) | (current.columns if current else set())))
        mode = access_mode or req.access_mode
        chosen = v.choice(AccessMode, mode, "access mode") if mode else None
        scope_req = ScopeRequest(req.dataset, columns, chosen, epsilon)
        new_auth = self._rescoped(auth, [scope_req], [], at)
        granted = new_auth.scope_for(req.dataset)
        assert granted is not None
        decided = replace(
            req, status=R.APPROVED, decided_by=actor.name, decided_at=at, decision_reason=reason,
            access_mode=granted.access_mode, epsilon=granted.epsilon,
        )
        ds = self.get_dataset(req.dataset)
        approved = self._event(
            step.event, actor, at, operator=auth.operator, authorization=auth.id,
            dataset=req.dataset,
            details={**request_facts(decided, ds), "granted": granted.to_json()},
        )
        scope_changed = self.scope_changed_event(
            actor, auth, new_auth, f"data request {req.id} approved: {reason}", at, req.id
        )
        self._commit([new_auth, decided], [approved, scope_changed])
        return self.get_data_request(req.id), self.get_authorization(auth.id)

    @audited("refuse data request")
    @retried
    def refuse_data_request(self, actor: Actor, request_id: str, reason: str) -> DataRequestRecord:
        return self._close_request(actor, request_id, R.REFUSED, reason)

    @audited("withdraw data request")
    @retried
    def withdraw_data_request(
        self, actor: Actor, request_id: str, reason: str
    ) -> DataRequestRecord:
        req = self.get_data_request(request_id)
        if actor.role is Role.ANALYST and actor.name != req.requester:
            raise PermissionDenied(
                f"only {req.requester}, who made data request {req.id}, may withdraw it"
            )
        return self._close_request(actor, request_id, R.WITHDRAWN, reason)

    def _close_request(
        self, actor: Actor, request_id: str, target: DataRequestStatus, reason: str
    ) -> DataRequestRecord:
        self._check_actor(actor)
        reason = v.text(reason, "reason", 2000)
        req = self.get_data_request(request_id)
        step = check_data_request_transition(req.status, target, actor.role, req.id)
        at = self.now()
        closed = replace(req, status=target, decided_by=actor.name, decided_at=at,
                         decision_reason=reason)
        auth = self.get_authorization(req.authorization)
        event = self._event(
            step.event, actor, at, operator=auth.operator, authorization=auth.id,
            dataset=req.dataset, details=request_facts(closed, self.get_dataset(req.dataset)),
        )
        self._commit([closed], [event])
        return self.get_data_request(req.id)

    def list_data_requests(
        self, status: DataRequestStatus | None = None, authorization: str | None = None
    ) -> list[DataRequestRecord]:
        return self.store.list_data_requests(status, authorization)
