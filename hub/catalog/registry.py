"""The catalog side of the service: providers, datasets and their columns, operators, analysts.

Registering a dataset that exists already updates it (new version, acquisition date, grade,
columns) and records ``dataset.updated`` with what changed and which live authorizations are
affected; registering identical metadata again changes nothing and records nothing, so a catalog
file can be imported repeatedly.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hub.catalog import validation as v
from hub.catalog.base import ServiceBase, audited, retried
from hub.catalog.enums import Grade, IdentifierClass, OpenAttribute
from hub.catalog.events import Actor, AuditEventType
from hub.catalog.exceptions import AlreadyExists, InvalidInput
from hub.catalog.permissions import Action
from hub.catalog.records import (
    AnalystRecord,
    ColumnRecord,
    DatasetRecord,
    OperatorRecord,
    ProviderRecord,
)
from hub.catalog.states import AUTHORIZATION_CHANGEABLE


def clean_column(col: ColumnRecord, dataset: str) -> ColumnRecord:
    name = v.column_name(col.name, dataset)
    if col.identifier_class is IdentifierClass.DIRECT_IDENTIFIER and col.group_by_allowed:
        raise InvalidInput(
            f"column {dataset}.{name} is a direct identifier and cannot be a group-by dimension"
        )
    if not isinstance(col.group_by_allowed, bool):
        raise InvalidInput(f"column {dataset}.{name}: group_by must be true or false")
    return replace(
        col,
        name=name,
        type=v.text(col.type, f"type of column {dataset}.{name}", 60),
        description=v.text(col.description, f"description of column {dataset}.{name}", 2000,
                           required=False),
        label=v.text(col.label, f"label of column {dataset}.{name}", 100, required=False),
    )


def clean_dataset(spec: DatasetRecord) -> DatasetRecord:
    """The spec with its values checked and normalized; InvalidInput names the first problem."""
    name = v.dataset_name(spec.name)
    if not spec.columns:
        raise InvalidInput(f"dataset {name!r} has no columns")
    columns = tuple(clean_column(c, name) for c in spec.columns)
    v.unique_names([c.name for c in columns], f"columns of dataset {name!r}")
    return replace(
        spec,
        name=name,
        provider=v.text(spec.provider, f"provider of dataset {name!r}", 200),
        grade=v.choice(Grade, spec.grade, f"grade of dataset {name!r}"),
        open_attribute=v.choice(OpenAttribute, spec.open_attribute, f"open attribute of {name!r}"),
        columns=columns,
        title=v.text(spec.title, f"title of dataset {name!r}", 200, required=False),
        description=v.text(spec.description, f"description of {name!r}", 4000, required=False),
        version=v.optional_text(spec.version, f"version of dataset {name!r}", 100),
        registration_code=v.optional_text(
            spec.registration_code, f"registration code of {name!r}", 100
        ),
        shared_source=v.optional_text(spec.shared_source, f"shared source of {name!r}", 200),
        consent_reference=v.optional_text(
            spec.consent_reference, f"consent reference of {name!r}", 200
        ),
    )


def dataset_changes(old: DatasetRecord, new: DatasetRecord) -> dict[str, Any]:
    """What differs between two versions of a dataset (empty when nothing does)."""
    before, after = old.metadata_json(), new.metadata_json()
    fields = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    old_cols = {c.name: c.to_json() for c in old.columns}
    new_cols = {c.name: c.to_json() for c in new.columns}
    changes: dict[str, Any] = {}
    if fields:
        changes["fields"] = fields
    added = [n for n in new_cols if n not in old_cols]
    removed = [n for n in old_cols if n not in new_cols]
    changed = {
        n: {"before": old_cols[n], "after": new_cols[n]}
        for n in new_cols
        if n in old_cols and old_cols[n] != new_cols[n]
    }
    if added:
        changes["columns_added"] = added
    if removed:
        changes["columns_removed"] = removed
    if changed:
        changes["columns_changed"] = changed
    if not changes and list(old_cols) != list(new_cols):
        changes["column_order"] = list(new_cols)
    return changes


class RegistryService(ServiceBase):
    # --- datasets ---------------------------------------------------------------------------

    @audited("register dataset")
    @retried
    def register_dataset(self, actor: Actor, spec: DatasetRecord) -> tuple[DatasetRecord, str]:
        """Register or update a dataset; gives (record, "registered"/"updated"/"unchanged")."""
        self._check_actor(actor, Action.REGISTER_DATASET)
        spec = clean_dataset(spec)
        self._check_registration_code(spec)
        at = self.now()
        existing = self.store.get_dataset(spec.name)
        records: list = []
        events = []
        if self.store.get_provider(spec.provider) is None:
            records.append(ProviderRecord(spec.provider))
            events.append(self._event(
                AuditEventType.PROVIDER_REGISTERED, actor, at, details={"provider": spec.provider}
            ))
        if existing is None:
            record = replace(spec, registered_at=at, updated_at=at, revision=0)
            events.append(self._event(
                AuditEventType.DATASET_REGISTERED, actor, at, dataset=spec.name,
                details=record.to_json(),
            ))
            self._commit([*records, record], events)
            return self.get_dataset(spec.name), "registered"
        if spec.consent_reference is None and spec.shared_source == existing.shared_source:
            spec = replace(spec, consent_reference=existing.consent_reference)
        changes = dataset_changes(existing, spec)
        if not changes:
            return existing, "unchanged"
        record = replace(spec, registered_at=existing.registered_at, updated_at=at,
                         revision=existing.revision)
        events.append(self._event(
            AuditEventType.DATASET_UPDATED, actor, at, dataset=spec.name,
            details={"changes": changes, "affected_authorizations": self._live_users_of(spec.name),
                     "dataset": record.to_json()},
        ))
        self._commit([*records, record], events)
        return self.get_dataset(spec.name), "updated"

    def _check_registration_code(self, spec: DatasetRecord) -> None:
        if spec.registration_code is None:
            return
        for other in self.store.list_datasets():
            if other.name != spec.name and other.registration_code == spec.registration_code:
                raise AlreadyExists(
                    f"registration code {spec.registration_code!r} already belongs to dataset "
                    f"{other.name!r}"
                )

    def _live_users_of(self, dataset: str) -> list[str]:
        at = self.now()
        return [
            a.id
            for a in self.store.list_authorizations(dataset=dataset)
            if a.effective_status(at) in AUTHORIZATION_CHANGEABLE
        ]

    @audited("record consent")
    @retried
    def record_consent(self, actor: Actor, dataset: str, reference: str) -> DatasetRecord:
        """Record the providing unit's consent for data received through 政务数据共享 (R4)."""
        self._check_actor(actor, Action.RECORD_CONSENT)
        reference = v.text(reference, "consent reference (document number or link)", 200)
        ds = self.get_dataset(dataset)
        if not ds.shared_source:
            raise InvalidInput(
                f"dataset {dataset!r} is not marked as received through 政务数据共享; "
                "no consent is needed"
            )
        at = self.now()
        record = replace(ds, consent_reference=reference, updated_at=at)
        event = self._event(
            AuditEventType.DATASET_CONSENT_RECORDED, actor, at, dataset=dataset,
            details={"shared_source": ds.shared_source, "consent_reference": reference,
                     "previous_reference": ds.consent_reference},
        )
        self._commit([record], [event])
        return self.get_dataset(dataset)

    def list_datasets(self) -> list[DatasetRecord]:
        return self.store.list_datasets()

    # --- operators and analysts -------------------------------------------------------------

    @audited("create operator")
    @retried
    def create_operator(
        self,
        actor: Actor,
        name: str,
        credit_code: str | None = None,
        security_officer: str | None = None,
    ) -> OperatorRecord:
        self._check_actor(actor, Action.CREATE_OPERATOR)
        name = v.text(name, "operator name", 200)
        code = v.credit_code(credit_code) if credit_code else None
        officer = v.optional_text(security_officer, "security officer (数据安全负责人)", 100)
        if self.store.get_operator(name) is not None:
            raise AlreadyExists(f"operator {name!r} already exists")
        if code and (other := self.store.operator_by_credit_code(code)) is not None:
            raise AlreadyExists(f"credit code {code} already belongs to operator {other.name!r}")
        at = self.now()
        record = OperatorRecord(name, code, officer, created_at=at)
        event = self._event(AuditEventType.OPERATOR_CREATED, actor, at, operator=name,
                            details=record.to_json())
        self._commit([record], [event])
        return self.get_operator(name)

    @audited("name security officer")
    @retried
    def set_security_officer(self, actor: Actor, operator: str, officer: str) -> OperatorRecord:
        """Name the operator's 数据安全负责人 (needed before it may receive 重要 data)."""
        self._check_actor(actor, Action.CREATE_OPERATOR)
        officer = v.text(officer, "security officer (数据安全负责人)", 100)
        op = self.get_operator(operator)
        at = self.now()
        record = replace(op, security_officer=officer)
        event = self._event(
            AuditEventType.OPERATOR_UPDATED, actor, at, operator=operator,
            details={"security_officer": [op.security_officer, officer]},
        )
        self._commit([record], [event])
        return self.get_operator(operator)

    @audited("add analyst")
    @retried
    def add_analyst(
        self, actor: Actor, user_name: str, operator: str, display_name: str = ""
    ) -> AnalystRecord:
        self._check_actor(actor, Action.ADD_ANALYST)
        user_name = v.user_name(user_name)
        display_name = v.text(display_name, "analyst display name", 100, required=False)
        op = self.get_operator(operator)
        if (existing := self.store.get_analyst(user_name)) is not None:
            raise AlreadyExists(
                f"analyst {user_name!r} already exists (operator {existing.operator!r})"
            )
        if user_name == actor.name:
            raise InvalidInput(f"{actor.name} cannot register themself as an analyst")
        at = self.now()
        record = AnalystRecord(user_name, op.name, display_name, created_at=at)
        event = self._event(AuditEventType.ANALYST_ADDED, actor, at, operator=op.name,
                            details=record.to_json())
        self._commit([record], [event])
        return self.get_analyst(user_name)

    def list_operators(self) -> list[OperatorRecord]:
        return self.store.list_operators()

    def list_analysts(self, operator: str | None = None) -> list[AnalystRecord]:
        return self.store.list_analysts(operator)
