"""Import a ``catalog.json`` (as written by ``shuyu data generate``) into the catalog.

Format ``shuyu-catalog/1`` (``hub/synthetic/catalog.py`` writes it; unknown keys are ignored so
that newer writers stay readable)::

    {"format": "shuyu-catalog/1",
     "datasets": [
      {"name": "residents", "title": {"zh": "户籍人口基础信息", "en": "…"},
       "provider": "昆明市公安局", "description": "…", "update_frequency": "monthly",
       "version": "2025-12-31+3af193278174", "acquired_on": "2025-12-31",
       "registration_code": "530100-GS-2025-0002",
       "grade": "重要" | "important", "open_attribute": "有条件" | "conditional",
       "shared_source": null,
       "columns": [{"name": "resident_id", "type": "VARCHAR",
                    "identifier_class": "direct_identifier", "group_by_allowed": false,
                    "label": "公民身份号码", "description": "…"}, …]},
      …]}

A document without ``format``, or a bare list of datasets, is read the same way; another format
is refused. ``title`` may be plain text. Alternative key spellings: ``acquisition_date`` or
``acquired_at`` for ``acquired_on``; ``open``/``openness`` for ``open_attribute``; ``class`` for
``identifier_class``; ``group_by``/``groupable`` for ``group_by_allowed``.

The whole file is parsed and checked before anything is registered, so a bad entry imports
nothing. Each dataset is then registered on its own (one ledger batch each); importing the same
file again changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hub.catalog import validation as v
from hub.catalog.enums import Grade, IdentifierClass, OpenAttribute, UpdateFrequency
from hub.catalog.events import Actor
from hub.catalog.exceptions import CatalogError, InvalidInput
from hub.catalog.records import ColumnRecord, DatasetRecord
from hub.catalog.registry import clean_dataset

ALIASES = {
    "acquired_on": ("acquired_on", "acquisition_date", "acquired_at"),
    "open_attribute": ("open_attribute", "open", "openness"),
    "identifier_class": ("identifier_class", "class", "identifier"),
    "group_by": ("group_by_allowed", "group_by", "groupable"),
}
FORMAT = "shuyu-catalog/1"


def _get(obj: dict[str, Any], key: str, default: Any = None) -> Any:
    for name in ALIASES.get(key, (key,)):
        if name in obj:
            return obj[name]
    return default


def _required(obj: dict[str, Any], key: str, where: str) -> Any:
    value = _get(obj, key)
    if value is None or value == "":
        names = " or ".join(ALIASES.get(key, (key,)))
        raise InvalidInput(f"{where}: {names} is missing")
    return value


def parse_column(obj: Any, where: str) -> ColumnRecord:
    if not isinstance(obj, dict):
        raise InvalidInput(f"{where}: a column must be an object, not {type(obj).__name__}")
    name = _required(obj, "name", where)
    where = f"{where} column {name!r}"
    group_by = _get(obj, "group_by", False)
    if not isinstance(group_by, bool):
        raise InvalidInput(f"{where}: group_by must be true or false, not {group_by!r}")
    return ColumnRecord(
        name=name,
        type=str(_required(obj, "type", where)),
        identifier_class=v.choice(
            IdentifierClass, _required(obj, "identifier_class", where), f"{where}: class"
        ),
        group_by_allowed=group_by,
        description=_get(obj, "description", "") or "",
        label=_get(obj, "label", "") or "",
    )


def _title(value: Any, where: str) -> str:
    if isinstance(value, dict):
        value = value.get("zh") or value.get("en") or ""
    if not isinstance(value, str):
        raise InvalidInput(f"{where}: title must be text or {{\"zh\": …, \"en\": …}}")
    return value


def parse_dataset(obj: Any, index: int) -> DatasetRecord:
    where = f"dataset #{index + 1}"
    if not isinstance(obj, dict):
        raise InvalidInput(f"{where} must be an object, not {type(obj).__name__}")
    name = _required(obj, "name", where)
    where = f"dataset {name!r}"
    columns = _required(obj, "columns", where)
    if not isinstance(columns, list):
        raise InvalidInput(f"{where}: columns must be a list")
    frequency = _get(obj, "update_frequency")
    version = _get(obj, "version")
    return clean_dataset(DatasetRecord(
        name=name,
        provider=_required(obj, "provider", where),
        grade=v.choice(Grade, _required(obj, "grade", where), f"{where}: grade"),
        open_attribute=v.choice(
            OpenAttribute, _required(obj, "open_attribute", where), f"{where}: open attribute"
        ),
        columns=tuple(parse_column(c, where) for c in columns),
        title=_title(_get(obj, "title", "") or "", where),
        description=_get(obj, "description", "") or "",
        update_frequency=v.choice(UpdateFrequency, frequency, f"{where}: update frequency")
        if frequency else None,
        version=str(version) if version is not None else None,
        acquired_on=v.parse_date(_get(obj, "acquired_on"), f"{where}: acquisition date"),
        registration_code=_get(obj, "registration_code"),
        shared_source=_get(obj, "shared_source"),
        consent_reference=_get(obj, "consent_reference"),
    ))


def parse_catalog(data: Any) -> list[DatasetRecord]:
    """Every dataset of a parsed catalog.json, checked; InvalidInput names the first problem."""
    if isinstance(data, dict) and data.get("format", FORMAT) != FORMAT:
        raise InvalidInput(
            f"the catalog's format is {data.get('format')!r}; this reader knows {FORMAT}"
        )
    items = data.get("datasets") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise InvalidInput("a catalog must be a list of datasets or an object with 'datasets'")
    if not items:
        raise InvalidInput("the catalog lists no datasets")
    specs = [parse_dataset(obj, i) for i, obj in enumerate(items)]
    v.unique_names([s.name for s in specs], "datasets in the catalog")
    v.unique_names([s.registration_code for s in specs if s.registration_code],
                   "registration codes in the catalog")
    return specs


def load_catalog_file(path: Path) -> list[DatasetRecord]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidInput(f"cannot read catalog {path}: {e}") from None
    try:
        data = json.loads(text)
    except ValueError as e:
        raise InvalidInput(f"catalog {path} is not JSON: {e}") from None
    try:
        return parse_catalog(data)
    except InvalidInput as e:
        raise InvalidInput(f"catalog {path}: {e}") from None


@dataclass
class ImportSummary:
    registered: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, list[str]]:
        return {"registered": self.registered, "updated": self.updated,
                "unchanged": self.unchanged}


def import_catalog(
    service: Any,
    actor: Actor,
    specs: list[DatasetRecord],
    progress: Callable[[DatasetRecord, str], None] | None = None,
) -> ImportSummary:
    """Register or update each dataset; stops at the first refusal (earlier ones stay)."""
    summary = ImportSummary()
    for spec in specs:
        try:
            _, outcome = service.register_dataset(actor, spec)
        except CatalogError as e:
            done = len(summary.registered) + len(summary.updated) + len(summary.unchanged)
            raise type(e)(
                f"dataset {spec.name!r}: {e} ({done} earlier dataset(s) were imported; "
                "importing again resumes safely)"
            ) from e
        getattr(summary, outcome).append(spec.name)
        if progress:
            progress(spec, outcome)
    return summary
