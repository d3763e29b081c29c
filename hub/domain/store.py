"""Loading datasets into the domain store and listing what it holds (the writer's side).

Loading (``DomainStore.load``) reads the Parquet file once into memory, hashes those bytes,
refuses a hash that differs from the expected one, copies the verified bytes to a private work
directory (DuckDB reads that copy, never the source path, which could change between hashing
and reading), and builds the version's own DuckDB file there, checking its row count and
columns. Nothing else has that file open, so loading never waits for readers, and readers never
see a half-loaded table. Then, under the writer lock, ``build.commit_state`` appends
``dataset.loaded`` to the ledger (through the ``audit`` function the caller passes; if it
raises, the new file is removed and nothing changes) and makes the version current by
replacing the manifest. Replacing a loaded dataset must be asked for (``replace=True``); it
never happens silently. Concurrent loaders build their files side by side and commit one after
the other.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from hub.domain.build import build_dataset_file, commit_state
from hub.domain.errors import ChecksumMismatch, DatasetExists, DomainError
from hub.domain.layout import (
    DATASETS,
    INCOMING,
    MANIFEST,
    WorkDir,
    make_private_dir,
    sha256_of,
    write_atomic,
    writer_lock,
)
from hub.domain.manifest import (
    NAME_PATTERN,
    CurrentFile,
    DatasetVersion,
    Manifest,
    dataset_file,
    empty_manifest,
    new_version_id,
    read_manifest,
)
from hub.domain.migrate import migrate_if_needed

Audit = Callable[[dict[str, Any]], object]
"""Appends one ledger event and returns only once it is durable (e.g. ``ledger.log.Log.append``);
raises if the ledger cannot be written, which aborts the load (fail closed)."""


@dataclass(frozen=True)
class TableInfo:
    name: str
    rows: int
    version: DatasetVersion | None  # None: a table migrated without a version record


def check_dataset_name(name: str) -> str:
    if not NAME_PATTERN.match(name) or name.startswith("shuyu"):
        raise DomainError(
            f"dataset name {name!r} is not allowed: use lowercase letters, digits and '_', "
            "starting with a letter, at most 63 characters, not starting with 'shuyu'"
        )
    return name


class DomainStore:
    """Writer's view of the domain store (loading, listing); readers use ``DomainReader``."""

    def __init__(self, domain_dir: Path):
        self.dir = Path(domain_dir)
        self.path = self.dir / MANIFEST

    # --- loading -----------------------------------------------------------------------

    def check_can_load(self, names: list[str], replace: bool) -> None:
        """Refuse before any work if the store cannot be written or a dataset is loaded
        already and `replace` is False."""
        for name in names:
            check_dataset_name(name)
        self._ensure_writable()
        if replace:
            return
        loaded = sorted(set(names) & set(self._manifest().current))
        if loaded:
            raise DatasetExists(
                f"already in the domain store: {', '.join(loaded)}; "
                "pass --replace to load new versions over them"
            )

    def load(
        self,
        name: str,
        parquet: Path,
        *,
        audit: Audit,
        expected_sha256: str | None = None,
        version: str | None = None,
        acquired_on: date | None = None,
        replace: bool = False,
        expected_columns: list[tuple[str, str]] | None = None,
    ) -> DatasetVersion:
        """Load one dataset version from a Parquet file (see module doc)."""
        check_dataset_name(name)
        try:
            data = Path(parquet).read_bytes()
        except OSError as e:
            raise DomainError(f"cannot read {parquet}: {e.strerror or e}") from None
        digest = hashlib.sha256(data).hexdigest()
        if expected_sha256 is not None and digest != expected_sha256:
            raise ChecksumMismatch(
                f"{parquet} has sha256 {digest}, but the catalog says {expected_sha256}: "
                "the file changed after it was catalogued; nothing was loaded"
            )
        try:
            rows = pq.ParquetFile(pa.BufferReader(data)).metadata.num_rows
        except (pa.ArrowInvalid, OSError) as e:
            raise DomainError(f"{parquet} is not a readable Parquet file: {e}") from None
        self._ensure_writable()
        if not replace:
            self._refuse_existing(self._manifest(), name)  # early; checked again under the lock
        with WorkDir(self.dir / INCOMING) as work:
            copy = work.path / "source.parquet"
            fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            del data
            built = work.path / f"{name}.duckdb"
            build_dataset_file(built, name, "SELECT * FROM read_parquet(?)", [str(copy)], rows,
                               expected_columns)
            file_sha256 = sha256_of(built)
            copy.unlink()
            with writer_lock(self.dir):
                loaded_at = datetime.now(UTC).replace(tzinfo=None)
                loaded = DatasetVersion(name, version or digest[:12], digest, rows,
                                        Path(parquet).name, acquired_on, loaded_at, _whoami(),
                                        True, new_version_id(loaded_at))
                self._commit(built, loaded, file_sha256, replace, audit)
        return loaded

    def _commit(self, built: Path, loaded: DatasetVersion, file_sha256: str, replace: bool,
                audit: Audit) -> None:
        """Under the writer lock: refuse, or record in the ledger and make current."""
        current = read_manifest(self.dir) or empty_manifest()
        if not replace:
            self._refuse_existing(current, loaded.dataset)
        previous = current.current_version(loaded.dataset)
        file = CurrentFile(loaded.dataset, dataset_file(loaded.dataset, loaded.id),
                           loaded.id, loaded.rows, file_sha256)
        after = current.with_loaded(loaded, file)
        commit_state(self.dir, after, [(built, file.file)],
                     lambda: audit(_loaded_event(loaded, previous, file)))

    @staticmethod
    def _refuse_existing(m: Manifest, name: str) -> None:
        if name in m.current:
            previous = m.current_version(name)
            raise DatasetExists(
                f"dataset {name} is already loaded (version "
                f"{previous.version if previous else 'unknown'}); pass --replace to replace it"
            )

    def load_catalog_dir(
        self,
        directory: Path,
        *,
        audit: Audit,
        replace: bool = False,
        on_loaded: Callable[[DatasetVersion], None] | None = None,
    ) -> list[DatasetVersion]:
        """Load every dataset a ``catalog.json`` in `directory` lists, verifying each sha256,
        then copy the catalog into the domain directory for the catalog service."""
        catalog = read_catalog(directory)
        entries = catalog["datasets"]
        self.check_can_load([e["name"] for e in entries], replace)
        for e in entries:  # every file checked before anything changes; load() checks again
            digest = sha256_of(directory / e["file"])
            if digest != e["sha256"]:
                raise ChecksumMismatch(
                    f"{directory / e['file']} has sha256 {digest}, but the catalog says "
                    f"{e['sha256']}: the file changed after it was catalogued; nothing was loaded"
                )
        done = []
        for e in entries:
            try:
                loaded = self.load(
                    e["name"], directory / e["file"], audit=audit, expected_sha256=e["sha256"],
                    version=e.get("version"), acquired_on=_date_or_none(e.get("acquired_on")),
                    replace=replace,
                    expected_columns=[(c["name"], c["type"]) for c in e["columns"]],
                )
            except Exception as err:
                loaded_names = ", ".join(v.dataset for v in done) or "none"
                err.add_note(f"{e['name']} and later datasets were not loaded; already loaded "
                             f"in this run: {loaded_names}")
                raise
            done.append(loaded)
            if on_loaded:
                on_loaded(loaded)
        try:
            write_atomic(self.dir / "catalog.json", (json.dumps(
                catalog, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
        except OSError as e:
            raise DomainError(f"cannot write {self.dir / 'catalog.json'}: {e}") from None
        return done

    # --- reading -----------------------------------------------------------------------

    def tables(self) -> list[TableInfo]:
        """Every dataset with its row count and current version (from the manifest)."""
        m = self._manifest()
        return [TableInfo(name, c.rows, m.current_version(name))
                for name, c in sorted(m.current.items())]

    def versions(self, dataset: str | None = None) -> list[DatasetVersion]:
        """Every version ever loaded (of one dataset, or all), oldest first."""
        found = [v for v in self._manifest().versions if dataset is None or v.dataset == dataset]
        return sorted(found, key=lambda v: (v.loaded_at, v.dataset))

    def file_sha256(self) -> str | None:
        """sha256 of the manifest as it is on disk now (None if there is none yet). The
        manifest names each current file with its sha256, so this fingerprints the data."""
        migrate_if_needed(self.dir)
        return sha256_of(self.path) if self.path.exists() else None

    def _manifest(self) -> Manifest:
        migrate_if_needed(self.dir)
        return read_manifest(self.dir) or empty_manifest()

    def _ensure_writable(self) -> None:
        try:
            make_private_dir(self.dir / DATASETS)
            make_private_dir(self.dir / INCOMING)
        except OSError as e:
            raise DomainError(f"cannot create the domain directory {self.dir}: "
                              f"{e.strerror or e}") from None
        if not os.access(self.dir, os.W_OK):
            raise DomainError(f"the domain directory {self.dir} is not writable here")
        migrate_if_needed(self.dir)  # before any writer lock is held: it takes the lock


def read_catalog(directory: Path) -> dict[str, Any]:
    path = Path(directory) / "catalog.json"
    try:
        catalog = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise DomainError(f"cannot read {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise DomainError(f"{path} is not valid JSON: {e}") from None
    if catalog.get("format") != "shuyu-catalog/1" or not isinstance(catalog.get("datasets"), list):
        raise DomainError(f"{path} is not a shuyu-catalog/1 document")
    for e in catalog["datasets"]:
        missing = {"name", "file", "sha256", "columns"} - set(e)
        if missing:
            raise DomainError(f"{path}: dataset entry lacks {', '.join(sorted(missing))}")
        if Path(e["file"]).name != e["file"]:
            raise DomainError(f"{path}: file {e['file']!r} must be a plain name in the directory")
    return catalog


def _loaded_event(v: DatasetVersion, previous: DatasetVersion | None, file: CurrentFile) -> dict:
    return {
        "type": "dataset.loaded",
        "actor": v.loaded_by,
        "role": "authority",
        "dataset": v.dataset,
        "details": {
            "version": v.version, "sha256": v.sha256, "rows": v.rows, "source": v.source,
            "acquired_on": v.acquired_on.isoformat() if v.acquired_on else None,
            "store": file.file, "file_sha256": file.file_sha256,
            "replaces": previous.version if previous else None,
        },
    }


def _date_or_none(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _whoami() -> str:
    try:
        return f"os:{getpass.getuser()}"
    except (KeyError, OSError):
        return "os:unknown"
