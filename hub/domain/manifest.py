"""The domain store's manifest: which file holds each dataset's current version, and every
version ever loaded (provenance for released products: 注明数据来源和获取日期).

The manifest is ``<domain_dir>/manifest.json``, a JSON document (format ``shuyu-domain/1``)::

    {"format": "shuyu-domain/1", "generation": 3, "state": "3-5f0c9a1e",
     "views": "views/3.duckdb",
     "current": {"residents": {"file": "datasets/residents/20260105T101500-1a2b3c4d.duckdb",
                               "version_id": "20260105T101500-1a2b3c4d", "rows": 600,
                               "file_sha256": "…"}},
     "versions": [{"id": "20260105T101500-1a2b3c4d", "dataset": "residents",
                   "version": "2026-01-05", "sha256": "…", "rows": 600,
                   "source": "residents.parquet", "acquired_on": "2026-01-05",
                   "loaded_at": "2026-01-05T10:15:00.123456", "loaded_by": "os:shuyu"}]}

- ``generation`` grows by one with every change; ``state`` is unique per manifest written, so a
  reader can tell states apart even if a manifest were recreated from scratch;
- ``current`` maps each dataset to its file (relative to the domain directory), the version
  record it holds (``version_id``, null for a table migrated without one), its row count and the
  sha256 of the file;
- ``versions`` lists every version ever loaded, oldest first; ``sha256`` is the source Parquet
  file's, as the catalog promised it.

Parsing is strict (unknown formats, missing or mistyped fields, and file names outside the
layout are refused), so a reader never attaches a file the layout does not name.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from hub.domain.errors import DomainError
from hub.domain.layout import DATASETS, MANIFEST, VIEWS, write_atomic

FORMAT = "shuyu-domain/1"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}\Z")
VERSION_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_-]{0,80}\Z")


@dataclass(frozen=True)
class DatasetVersion:
    dataset: str
    version: str
    sha256: str
    rows: int
    source: str
    acquired_on: date | None
    loaded_at: datetime
    loaded_by: str
    current: bool
    id: str = ""  # names the version's file: ``datasets/<dataset>/<id>.duckdb``

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset, "version": self.version, "sha256": self.sha256,
            "rows": self.rows, "source": self.source,
            "acquired_on": self.acquired_on.isoformat() if self.acquired_on else None,
            "loaded_at": self.loaded_at.isoformat(), "loaded_by": self.loaded_by,
            "current": self.current,
        }


@dataclass(frozen=True)
class CurrentFile:
    """The file holding one dataset's current version."""

    dataset: str
    file: str  # relative to the domain directory
    version_id: str | None
    rows: int
    file_sha256: str


@dataclass(frozen=True)
class Manifest:
    generation: int
    state: str
    views: str
    current: dict[str, CurrentFile]
    versions: tuple[DatasetVersion, ...]

    def current_version(self, dataset: str) -> DatasetVersion | None:
        entry = self.current.get(dataset)
        if entry is None or entry.version_id is None:
            return None
        for v in self.versions:
            if v.id == entry.version_id and v.dataset == dataset:
                return v
        return None

    def with_loaded(self, version: DatasetVersion, file: CurrentFile) -> "Manifest":
        """The next generation: `file` (holding `version`) current for its dataset."""
        generation = self.generation + 1
        current = {**self.current, file.dataset: file}
        versions = tuple(replace(v, current=(v.dataset != version.dataset and v.current))
                         for v in self.versions) + (replace(version, current=True),)
        return Manifest(generation, new_state(generation), views_file(generation), current,
                        versions)



def new_version_id(loaded_at: datetime) -> str:
    """A fresh version id (sortable by load time; unique by its random tail)."""
    return f"{loaded_at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def new_state(generation: int) -> str:
    return f"{generation}-{uuid.uuid4().hex[:8]}"


def views_file(generation: int) -> str:
    return f"{VIEWS}/{generation}.duckdb"


def dataset_file(dataset: str, version_id: str) -> str:
    return f"{DATASETS}/{dataset}/{version_id}.duckdb"


def empty_manifest() -> Manifest:
    return Manifest(0, new_state(0), views_file(0), {}, ())


# --- format and parse ---------------------------------------------------------------------------


def format_manifest(m: Manifest) -> bytes:
    doc = {
        "format": FORMAT, "generation": m.generation, "state": m.state, "views": m.views,
        "current": {name: {"file": c.file, "version_id": c.version_id, "rows": c.rows,
                           "file_sha256": c.file_sha256}
                    for name, c in sorted(m.current.items())},
        "versions": [{"id": v.id, "dataset": v.dataset, "version": v.version, "sha256": v.sha256,
                      "rows": v.rows, "source": v.source,
                      "acquired_on": v.acquired_on.isoformat() if v.acquired_on else None,
                      "loaded_at": v.loaded_at.isoformat(), "loaded_by": v.loaded_by}
                     for v in m.versions],
    }
    return (json.dumps(doc, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def parse_manifest(data: bytes, where: str) -> Manifest:
    """The manifest in `data`, or a DomainError naming `where` and what is wrong."""
    try:
        doc = json.loads(data.decode("utf-8"))
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} document")
        generation = _int(doc, "generation")
        state = _str(doc, "state")
        views = _str(doc, "views")
        if views != views_file(generation):
            raise ValueError(f"views file {views!r} is not {views_file(generation)!r}")
        current_doc = doc.get("current")
        if not isinstance(current_doc, dict):
            raise ValueError("current is not an object")
        current = {name: _current(name, entry) for name, entry in current_doc.items()}
        versions_doc = doc.get("versions")
        if not isinstance(versions_doc, list):
            raise ValueError("versions is not a list")
        current_ids = {(c.dataset, c.version_id) for c in current.values()}
        versions = tuple(_version(v, current_ids) for v in versions_doc)
    except (ValueError, TypeError, KeyError) as e:
        raise DomainError(f"{where} is not a valid domain-store manifest: {e}") from None
    return Manifest(generation, state, views, current, versions)


def _current(name: str, entry: Any) -> CurrentFile:
    if not NAME_PATTERN.match(name) or not isinstance(entry, dict):
        raise ValueError(f"current entry {name!r} is malformed")
    version_id = entry.get("version_id")
    file = _str(entry, "file")
    stem = Path(file).name.removesuffix(".duckdb")
    if version_id is not None and (not isinstance(version_id, str) or stem != version_id):
        raise ValueError(f"{name}: file {file!r} does not hold version {version_id!r}")
    if not VERSION_ID.match(stem) or file != dataset_file(name, stem):
        raise ValueError(f"{name}: file {file!r} is outside {DATASETS}/{name}/")
    return CurrentFile(name, file, version_id, _int(entry, "rows"), _str(entry, "file_sha256"))


def _version(v: Any, current_ids: set) -> DatasetVersion:
    if not isinstance(v, dict):
        raise ValueError("a version is not an object")
    acquired = v.get("acquired_on")
    dataset, vid = _str(v, "dataset"), _str(v, "id")
    return DatasetVersion(
        dataset, _str(v, "version"), _str(v, "sha256"), _int(v, "rows"), _str(v, "source"),
        date.fromisoformat(acquired) if acquired else None,
        datetime.fromisoformat(_str(v, "loaded_at")), _str(v, "loaded_by"),
        (dataset, vid) in current_ids, vid)


def _str(doc: dict, key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{key} is missing or not a string")
    return value


def _int(doc: dict, key: str) -> int:
    value = doc.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{key} is missing or not a non-negative integer")
    return value


# --- on disk -------------------------------------------------------------------------------------


def read_manifest(domain_dir: Path) -> Manifest | None:
    """The manifest as it is now (None if there is none)."""
    path = Path(domain_dir) / MANIFEST
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise DomainError(f"cannot read {path}: {e.strerror or e}") from None
    return parse_manifest(data, str(path))


def write_manifest(domain_dir: Path, m: Manifest) -> None:
    """Replace the manifest atomically (the caller holds the writer lock)."""
    try:
        write_atomic(Path(domain_dir) / MANIFEST, format_manifest(m))
    except OSError as e:
        raise DomainError(f"cannot write {Path(domain_dir) / MANIFEST}: "
                          f"{e.strerror or e}") from None
