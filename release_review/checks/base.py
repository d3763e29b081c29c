"""The contract every automatic check follows.

A check is a function ``run(ctx: CheckContext) -> list[CheckResult]``: it reads the quarantined
artifacts and the trusted-side context (catalog column classes, the raw data in the domain store,
the author's ledgered queries, earlier approved releases) and returns one result per thing it
judged, each with a verdict, a one-sentence reason for the reviewer and JSON evidence. Checks never
change state; the review service stores their results and writes them to the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Callable, Protocol


class Verdict(StrEnum):
    """Stored values: renaming one needs a migration."""

    PASS = "pass"  # nothing disclosive found
    REVIEW = "review"  # a human must look (shown first in the reviewer's page)
    FAIL = "fail"  # must not be released as is


@dataclass(frozen=True)
class CheckResult:
    check: str  # stable id of the check, e.g. "identifiers", "min_cell_count"
    verdict: Verdict
    reason: str  # one sentence a reviewer can act on
    artifact: str | None = None  # name of the artifact judged, None for the whole request
    evidence: dict[str, Any] = field(default_factory=dict)  # JSON-serializable, clear identifiers masked
    suggestion: str | None = None  # e.g. "suppress 3 cells below 10" or "round to base 5"


@dataclass(frozen=True)
class Artifact:
    """One file in quarantine (content-addressed by sha256)."""

    name: str
    media_type: str
    path: Path
    sha256: str
    size: int
    released: bool = True  # False for supporting files that are reviewed but never released


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: str
    identifier_class: str  # direct_identifier | quasi_identifier | sensitive | other
    groupable: bool
    label: str = ""  # the catalog's Chinese field name (e.g. 民族), matched like the name


@dataclass(frozen=True)
class SourceDataset:
    """A dataset the author's queries touched, with the catalog's column classes."""

    name: str
    grade: str
    columns: tuple[ColumnInfo, ...]
    touched_columns: tuple[str, ...]


@dataclass(frozen=True)
class AuthoredQuery:
    """One of the author's ledgered gateway queries (index in the ledger, SQL, what it touched)."""

    ledger_index: int
    sql: str
    datasets: tuple[str, ...]
    columns: tuple[str, ...]
    at: str
    result_sha256: str | None = None


@dataclass(frozen=True)
class Thresholds:
    min_cell_count: int = 10
    dominance_n: int = 2
    dominance_k: float = 0.90
    p_ratio: float = 0.10
    min_k_anonymity: int = 10
    min_l_diversity: int = 2
    max_prosecutor_risk: float = 0.10
    differencing_min_difference: int = 10
    max_rows: int = 1_000_000
    max_bytes: int = 100 * 1024 * 1024
    zeros_are_disclosive: bool = True  # a zero count says nobody in a group has an attribute
    round_base: int = 5  # suggested rounding base for counts
    max_image_pixels: int = 40_000_000  # larger images are refused (decompression bombs)


class DomainReader(Protocol):
    """Read-only SQL over the raw data on the trusted side (a hardened DuckDB connection)."""

    def sql(self, query: str, params: list[Any] | None = None) -> Any: ...

    def register(self, view_name: str, python_object: Any) -> Any: ...  # an Arrow table as a view

    def unregister(self, view_name: str) -> Any: ...

    def close(self) -> None: ...


@dataclass
class CheckContext:
    artifacts: list[Artifact]
    author: str
    authorization_id: str
    sources: list[SourceDataset]
    queries: list[AuthoredQuery]
    domain: Callable[[], DomainReader]  # opens a fresh read-only connection
    prior_releases: list[dict[str, Any]]  # earlier approved releases of the author and authorization
    # each {"id": str, "artifacts": [{"name": str, "path": str, "media_type": str}, …]}: the
    # released files (see differencing.py); other keys are ignored
    thresholds: Thresholds = field(default_factory=Thresholds)
    pseudonym_patterns: list[str] = field(default_factory=list)  # how gateway pseudonyms look
    derived_dir: Path | None = None  # where checks write files they derive (re-encoded images);
    # None: a ``derived`` folder beside each artifact
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # shared by the checks of one run (tables loaded once); never persisted


Check = Callable[[CheckContext], list[CheckResult]]
