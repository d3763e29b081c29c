"""Shapes of the review service's API: inputs as the client sends them, outputs as it reads them.

Inputs (``…In``) are strict: unknown fields are refused, so a misspelt option is an error, not
a silent default. Outputs (``…Public``) say only what the analyst may know about their own
requests: status, files and their hashes, check verdicts and reasons, reviewers' votes and
comments, and whether a package is ready (it is downloaded in a browser, never through the API).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileIn(Strict):
    name: str = Field(description="File name as it will be released, e.g. 'by_district.csv'.")
    sha256: str = Field(description="What POST uploads answered for the file's bytes.")
    media_type: str = Field("", max_length=100)
    released: bool = Field(True, description="False: a supporting file, reviewed, never "
                                             "released.")


class RequestIn(Strict):
    title: str
    purpose: str
    context: str = ""
    authorization: str | None = None
    files: list[FileIn]


class ResubmitIn(Strict):
    files: list[FileIn]
    note: str = ""
    context: str | None = None


class WithdrawIn(Strict):
    reason: str = ""


class CommentIn(Strict):
    text: str


class DpIn(Strict):
    spec: dict[str, Any]
    title: str
    purpose: str
    context: str = ""
    authorization: str | None = None


class UploadPublic(BaseModel):
    sha256: str
    size: int


class RequestPublic(BaseModel):
    id: str
    status: str
    round: int
    title: str
    purpose: str
    authorization: str
    grade: str
    required_approvals: int
    datasets: list[str]
    kind: str
    created_at: str | None
    updated_at: str | None
    review_url: str = Field(description="Where the author follows the request and, once "
                                        "released, downloads its package, in a browser.")


class RequestDetailPublic(RequestPublic):
    context: str
    files: list[dict[str, Any]]
    checks: list[dict[str, Any]]
    votes: list[dict[str, Any]]
    comments: list[dict[str, Any]]
    package: dict[str, Any] | None
    dp: dict[str, Any] | None = None


class DpPublic(BaseModel):
    request: RequestPublic
    result: dict[str, Any]


class CommentPublic(BaseModel):
    author: str
    role: str
    text: str
    round: int
    at: str | None
    ledger_index: int | None
