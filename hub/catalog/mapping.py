"""Conversions between ORM rows (``models``) and immutable records (``records``).

``*_record(row)`` reads a row into a record (datasets and authorizations are read in Core by
``reads.py``, faster on the gateway's path); ``fill_*(row, record, …)`` copies a record's fields
onto a row, updating child rows in place by name (columns, analysts, dataset scopes) so that
unique constraints never see a delete and a re-insert of the same name in one flush.
"""

from __future__ import annotations

from sqlalchemy import inspect

from hub.catalog.enums import (
    AccessMode,
)
from hub.catalog.models import (
    Analyst,
    Authorization,
    AuthorizationAnalyst,
    AuthorizationColumn,
    AuthorizationDataset,
    DataRequest,
    Dataset,
    DatasetColumn,
    Operator,
    Provider,
)
from hub.catalog.records import (
    AnalystRecord,
    AuthorizationRecord,
    DataRequestRecord,
    DatasetRecord,
    OperatorRecord,
    ProviderRecord,
)
from hub.catalog.states import DataRequestStatus

# --- rows to records ---------------------------------------------------------------------


def provider_record(row: Provider) -> ProviderRecord:
    return ProviderRecord(name=row.name, code=row.code, revision=row.revision)


def operator_record(row: Operator) -> OperatorRecord:
    return OperatorRecord(
        name=row.name,
        credit_code=row.credit_code,
        security_officer=row.security_officer,
        created_at=row.created_at,
        revision=row.revision,
    )


def analyst_record(row: Analyst) -> AnalystRecord:
    return AnalystRecord(
        user_name=row.user_name,
        operator=row.operator.name,
        display_name=row.display_name,
        created_at=row.created_at,
        revision=row.revision,
    )


def data_request_record(row: DataRequest) -> DataRequestRecord:
    return DataRequestRecord(
        id=row.id,
        authorization=row.authorization_id,
        requester=row.requester.user_name,
        dataset=row.dataset.name,
        columns=tuple(row.columns),
        reason=row.reason,
        status=DataRequestStatus(row.status),
        requested_at=row.requested_at,
        access_mode=AccessMode(row.access_mode) if row.access_mode else None,
        epsilon=row.epsilon,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        decision_reason=row.decision_reason,
        revision=row.revision,
    )


# --- records onto rows -------------------------------------------------------------------


def fill_provider(row: Provider, rec: ProviderRecord) -> None:
    row.name = rec.name
    row.code = rec.code


def fill_dataset(row: Dataset, rec: DatasetRecord, provider: Provider) -> None:
    row.name = rec.name
    row.title = rec.title
    row.provider = provider
    row.description = rec.description
    row.update_frequency = str(rec.update_frequency) if rec.update_frequency else None
    row.version = rec.version
    row.acquired_on = rec.acquired_on
    row.registration_code = rec.registration_code
    row.grade = str(rec.grade)
    row.open_attribute = str(rec.open_attribute)
    row.shared_source = rec.shared_source
    row.consent_reference = rec.consent_reference
    row.registered_at = rec.registered_at
    row.updated_at = rec.updated_at
    existing = {c.name: c for c in row.columns} if inspect(row).persistent else {}
    wanted = {c.name for c in rec.columns}
    keep = [c for name, c in existing.items() if name in wanted]
    for position, col in enumerate(rec.columns):
        target = existing.get(col.name)
        if target is None:
            target = DatasetColumn(name=col.name)
            keep.append(target)
        target.position = position
        target.type = col.type
        target.identifier_class = str(col.identifier_class)
        target.group_by_allowed = col.group_by_allowed
        target.label = col.label
        target.description = col.description
    row.columns = keep


def fill_operator(row: Operator, rec: OperatorRecord) -> None:
    row.name = rec.name
    row.credit_code = rec.credit_code
    row.security_officer = rec.security_officer
    row.created_at = rec.created_at


def fill_analyst(row: Analyst, rec: AnalystRecord, operator: Operator) -> None:
    row.user_name = rec.user_name
    row.operator = operator
    row.display_name = rec.display_name
    row.created_at = rec.created_at


def fill_authorization(
    row: Authorization,
    rec: AuthorizationRecord,
    operator: Operator,
    analysts: dict[str, Analyst],
    datasets: dict[str, Dataset],
) -> None:
    row.id = rec.id
    row.operator = operator
    row.scenario = rec.scenario
    row.use_class = str(rec.use_class)
    row.min_group_size = rec.min_group_size
    row.starts_at = rec.starts_at
    row.ends_at = rec.ends_at
    row.status = str(rec.status)
    row.status_reason = rec.status_reason
    role = rec.status_changed_by_role
    row.status_changed_by_role = str(role) if role else None
    row.created_by = rec.created_by
    row.created_at = rec.created_at
    row.updated_at = rec.updated_at
    stored = inspect(row).persistent
    current = {a.analyst.user_name: a for a in row.analysts} if stored else {}
    row.analysts = [
        current.get(name) or AuthorizationAnalyst(analyst=analysts[name])
        for name in sorted(rec.analysts)
    ]
    scopes = {d.dataset.name: d for d in row.datasets} if stored else {}
    new_scopes = []
    for item in rec.scope:
        target = scopes.get(item.dataset) or AuthorizationDataset(dataset=datasets[item.dataset])
        target.access_mode = str(item.access_mode)
        target.epsilon = item.epsilon
        have = {c.column_name: c for c in target.columns}
        target.columns = [
            have.get(name) or AuthorizationColumn(column_name=name) for name in sorted(item.columns)
        ]
        new_scopes.append(target)
    row.datasets = new_scopes


def fill_data_request(
    row: DataRequest, rec: DataRequestRecord, requester: Analyst, dataset: Dataset
) -> None:
    row.id = rec.id
    row.authorization_id = rec.authorization
    row.requester = requester
    row.dataset = dataset
    row.columns = list(rec.columns)
    row.reason = rec.reason
    row.status = str(rec.status)
    row.requested_at = rec.requested_at
    row.access_mode = str(rec.access_mode) if rec.access_mode else None
    row.epsilon = rec.epsilon
    row.decided_by = rec.decided_by
    row.decided_at = rec.decided_at
    row.decision_reason = rec.decision_reason
