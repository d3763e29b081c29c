"""Shapes at the edge of the console: form inputs (``…In``) and JSON answers (``…Public``).

Form fields are plain text on purpose: the catalog service checks every value and its refusals
say what was wrong in words (a wrong grade lists the choices, a wrong credit code says which
check character was expected), which the form then shows next to what was typed. Pydantic only
checks that the fields are there and of the right basic kind.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

TEXT = 4000


class FormBase(BaseModel):
    model_config = ConfigDict(extra="ignore")

    csrf: str = Field("", alias="_csrf", max_length=200,
                      description="The anti-forgery token of the page the form came from.")


class OperatorIn(FormBase):
    name: str = Field(max_length=TEXT, description="Registered name of the operating company.")
    credit_code: str = Field("", max_length=TEXT,
                             description="统一社会信用代码 (18 characters, GB 32100-2015).")
    security_officer: str = Field("", max_length=TEXT,
                                  description="数据安全负责人 (needed for 重要 data).")


class OfficerIn(FormBase):
    security_officer: str = Field(max_length=TEXT)


class AnalystIn(FormBase):
    user_name: str = Field(max_length=TEXT, description="The hub user name to create.")
    operator: str = Field(max_length=TEXT)
    display_name: str = Field("", max_length=TEXT)


class ReasonIn(FormBase):
    reason: str = Field("", max_length=TEXT)


class ExtendIn(ReasonIn):
    ends_at: str = Field(max_length=100, description="New end: a date (YYYY-MM-DD, the whole "
                         "day in China Standard Time) or an ISO 8601 date-time.")


class ScopeIn(ReasonIn):
    dataset: str = Field("", max_length=100, description="Dataset to add or change.")
    columns: str = Field("", max_length=TEXT,
                         description="Comma-separated columns; empty: every column.")
    access_mode: str = Field("", max_length=50)
    epsilon: str = Field("", max_length=50)
    remove: list[str] = Field(default_factory=list, description="Datasets to drop.")


class AnalystsChangeIn(ReasonIn):
    add: str = Field("", max_length=TEXT, description="Comma-separated user names to add.")
    remove: list[str] = Field(default_factory=list)


class AuthorizationIn(FormBase):
    operator: str = Field(max_length=TEXT)
    analysts: list[str] = Field(default_factory=list)
    datasets: list[str] = Field(default_factory=list,
                                description="Datasets in the scope (checkboxes).")
    scenario: str = Field("", max_length=TEXT)
    use_class: str = Field("", max_length=50)
    starts_at: str = Field("", max_length=100)
    ends_at: str = Field("", max_length=100)
    min_group_size: str = Field("10", max_length=20)
    # one row per catalog dataset on the form, aligned by position; only the rows whose
    # dataset is also in `datasets` (checked) count
    scope_dataset: list[str] = Field(default_factory=list)
    scope_columns: list[str] = Field(default_factory=list,
                                     description="Comma-separated columns; empty: all.")
    scope_mode: list[str] = Field(default_factory=list)
    scope_epsilon: list[str] = Field(default_factory=list)


class DecisionIn(ReasonIn):
    access_mode: str = Field("", max_length=50)
    epsilon: str = Field("", max_length=50)


class RegistrationIn(FormBase):
    name: str = Field(max_length=100, description="Dataset name: the table in the domain store.")
    title: str = Field("", max_length=TEXT)
    description: str = Field("", max_length=TEXT)
    provider: str = Field("", max_length=TEXT, description="The data-holding unit.")
    grade: str = Field("", max_length=50)
    open_attribute: str = Field("", max_length=50)
    registration_code: str = Field("", max_length=200)
    acquired_on: str = Field("", max_length=50, description="Acquisition date (YYYY-MM-DD).")
    update_frequency: str = Field("", max_length=50)
    shared_source: str = Field("", max_length=TEXT)
    consent_reference: str = Field("", max_length=TEXT)
    column_name: list[str] = Field(default_factory=list)
    column_label: list[str] = Field(default_factory=list)
    column_class: list[str] = Field(default_factory=list)
    column_group_by: list[str] = Field(default_factory=list,
                                       description="Positions (0, 1, …) of group-by columns.")


class Problem(BaseModel):
    """Every error of the JSON endpoints."""

    code: str
    reason: str


class UploadPublic(BaseModel):
    id: str
    state: str
    filename: str | None
    received: int
    expected: int | None
    size: int
    percent: int | None
    stage: str | None
    rows: int | None
    sha256: str | None
    error: str | None
    dataset: str | None


class ColumnPublic(BaseModel):
    name: str
    type: str
    identifier_class: str
    group_by_allowed: bool
    label: str


class DatasetPublic(BaseModel):
    name: str
    title: str
    provider: str
    grade: str
    open_attribute: str
    registration_code: str | None
    acquired_on: str | None
    version: str | None
    columns: list[ColumnPublic]


class OperatorPublic(BaseModel):
    name: str
    credit_code: str | None
    security_officer: str | None
    analysts: list[str]


class AuthorizationPublic(BaseModel):
    id: str
    operator: str
    status: str
    effective_status: str
    scenario: str
    use_class: str
    starts_at: str
    ends_at: str
    analysts: list[str]
    scope: list[dict[str, Any]]
    data_destroyed: bool | None


class DataRequestPublic(BaseModel):
    id: str
    authorization: str
    requester: str
    dataset: str
    columns: list[str]
    reason: str
    status: str
    requested_at: str
    decided_by: str | None
    decision_reason: str
