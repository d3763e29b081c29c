"""The domain store: the raw public data, one DuckDB table per dataset, on the server side only.

Terms:
- *domain store*: the DuckDB file ``<settings.domain_dir>/domain.duckdb``. Raw data never leaves
  it except as query results the gateway allows (原始数据不出域).
- *dataset version*: one load of a dataset from one Parquet file, identified by the file's
  sha256. Every version ever loaded is kept in ``shuyu_meta.dataset_versions`` (provenance for
  released products: 注明数据来源和获取日期); exactly one per dataset is current.

Loading (``DomainStore.load``) reads the Parquet file once into memory, hashes those bytes,
refuses a hash that differs from the expected one, copies the verified bytes to a private file
in the domain directory (DuckDB reads that copy, never the source path), appends
``dataset.loaded`` to the ledger (through the ``audit`` function the caller passes), and creates
the table and its version row in one transaction: a failure anywhere leaves the previous version in place. Replacing a loaded
dataset must be asked for (``replace=True``); it never happens silently.

The gateway opens the store with ``open_readonly``: read-only, no external access (files, URLs,
``COPY``, ``ATTACH``, ``INSTALL``/``LOAD``, Python replacement scans), no extension autoloading,
configuration locked, bounded memory and threads. The gateway's SQL policy comes first; this is
defence in depth. DuckDB allows one writer *or* any number of read-only openers of a file at a
time, so reloading needs the gateway's connections closed.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

DB_FILE = "domain.duckdb"
META_SCHEMA = "shuyu_meta"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

Audit = Callable[[dict[str, Any]], object]
"""Appends one ledger event and returns only once it is durable (e.g. ``ledger.log.Log.append``);
raises if the ledger cannot be written, which aborts the load (fail closed)."""


class DomainError(Exception):
    """A domain-store operation was refused or failed; the message says why."""


class DatasetExists(DomainError):
    """The dataset is already loaded and replacing it was not asked for."""


class ChecksumMismatch(DomainError):
    """A file's sha256 differs from the one its catalog promised."""


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

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset, "version": self.version, "sha256": self.sha256,
            "rows": self.rows, "source": self.source,
            "acquired_on": self.acquired_on.isoformat() if self.acquired_on else None,
            "loaded_at": self.loaded_at.isoformat(), "loaded_by": self.loaded_by,
            "current": self.current,
        }


@dataclass(frozen=True)
class TableInfo:
    name: str
    rows: int
    version: DatasetVersion | None  # None: a table without a version record (not loaded by us)


def check_dataset_name(name: str) -> str:
    if not NAME_PATTERN.match(name) or name.startswith("shuyu"):
        raise DomainError(
            f"dataset name {name!r} is not allowed: use lowercase letters, digits and '_', "
            "starting with a letter, at most 63 characters, not starting with 'shuyu'"
        )
    return name


class DomainStore:
    """Writer's view of the domain store (loading, listing); the gateway uses `open_readonly`."""

    def __init__(self, domain_dir: Path):
        self.dir = Path(domain_dir)
        self.path = self.dir / DB_FILE

    # --- connections -------------------------------------------------------------------

    def _connect(self) -> duckdb.DuckDBPyConnection:
        try:
            if not self.dir.exists():
                self.dir.mkdir(parents=True, mode=0o700)  # raw data: owner only
            con = duckdb.connect(str(self.path), config={
                "autoload_known_extensions": False, "autoinstall_known_extensions": False,
            })
            os.chmod(self.path, 0o600)
        except duckdb.Error as e:
            raise DomainError(f"cannot open the domain store {self.path} for writing "
                              f"(is the gateway or another loader using it?): {e}") from None
        except OSError as e:
            raise DomainError(f"cannot create the domain directory {self.dir}: {e}") from None
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {META_SCHEMA}")
        con.execute(f"""
            CREATE TABLE IF NOT EXISTS {META_SCHEMA}.dataset_versions (
                dataset VARCHAR NOT NULL, version VARCHAR NOT NULL, sha256 VARCHAR NOT NULL,
                rows BIGINT NOT NULL, source VARCHAR NOT NULL, acquired_on DATE,
                loaded_at TIMESTAMP NOT NULL, loaded_by VARCHAR NOT NULL,
                current BOOLEAN NOT NULL)""")
        return con

    def _reader(self) -> duckdb.DuckDBPyConnection | None:
        if not self.path.exists():
            return None
        try:
            return duckdb.connect(str(self.path), read_only=True)
        except duckdb.Error as e:
            raise DomainError(f"cannot open the domain store {self.path}: {e}") from None

    # --- loading -----------------------------------------------------------------------

    def check_can_load(self, names: list[str], replace: bool) -> None:
        """Refuse before any work if the store cannot be written (another process holds it)
        or a dataset is loaded already and `replace` is False."""
        for name in names:
            check_dataset_name(name)
        self._connect().close()
        if replace:
            return
        loaded = sorted(set(names) & {t.name for t in self.tables()})
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
        """Load one dataset version from a Parquet file in one transaction (see module doc)."""
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
        con = self._connect()
        # DuckDB reads the verified bytes from a private copy in the domain directory, never
        # from the source path, which could change between hashing and reading.
        copy = self.dir / f".incoming-{uuid.uuid4().hex}.parquet"
        try:
            fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            del data
            return self._load_locked(
                con, name, copy, Path(parquet).name, digest, rows, audit,
                version or digest[:12], acquired_on, replace, expected_columns,
            )
        finally:
            con.close()
            copy.unlink(missing_ok=True)

    def _load_locked(self, con, name, copy, source_name, digest, rows, audit, version,
                     acquired_on, replace, expected_columns) -> DatasetVersion:
        previous = self._current_version(con, name)
        exists = bool(con.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = 'main' AND table_name = ?", [name]).fetchone()[0])
        if exists and not replace:
            raise DatasetExists(
                f"dataset {name} is already loaded (version "
                f"{previous.version if previous else 'unknown'}); pass --replace to replace it"
            )
        loaded = DatasetVersion(
            name, version, digest, rows, source_name, acquired_on,
            datetime.now(UTC).replace(tzinfo=None), _whoami(), True,
        )
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM read_parquet(?)',
                        [str(copy)])
            self._check_loaded(con, name, rows, expected_columns)
            con.execute(f"UPDATE {META_SCHEMA}.dataset_versions SET current = false "
                        "WHERE dataset = ?", [name])
            con.execute(f"INSERT INTO {META_SCHEMA}.dataset_versions VALUES (?,?,?,?,?,?,?,?,?)", [
                name, version, digest, rows, source_name, acquired_on, loaded.loaded_at,
                loaded.loaded_by, True])
            audit(_loaded_event(loaded, previous, self.path))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return loaded

    @staticmethod
    def _check_loaded(con, name, rows, expected_columns) -> None:
        got_rows = con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
        if got_rows != rows:
            raise DomainError(f"{name}: loaded {got_rows} rows, the file declares {rows}")
        if expected_columns is not None:
            got = [(r[0], r[1]) for r in con.execute(f'DESCRIBE "{name}"').fetchall()]
            if got != list(expected_columns):
                raise DomainError(f"{name}: columns {got} differ from the catalog's {expected_columns}")

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
            digest = _sha256_of(directory / e["file"])
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
        (self.dir / "catalog.json").write_text(
            json.dumps(catalog, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        return done

    # --- reading -----------------------------------------------------------------------

    def tables(self) -> list[TableInfo]:
        """Every dataset table with its row count and current version."""
        con = self._reader()
        if con is None:
            return []
        try:
            names = [r[0] for r in con.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'main' ORDER BY table_name").fetchall()]
            out = []
            for name in names:
                rows = con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
                out.append(TableInfo(name, rows, self._current_version(con, name)))
            return out
        finally:
            con.close()

    def versions(self, dataset: str | None = None) -> list[DatasetVersion]:
        """Every version ever loaded (of one dataset, or all), oldest first."""
        con = self._reader()
        if con is None:
            return []
        try:
            if not self._has_meta(con):
                return []
            sql = f"SELECT * FROM {META_SCHEMA}.dataset_versions"
            params: list = []
            if dataset is not None:
                sql += " WHERE dataset = ?"
                params.append(dataset)
            rows = con.execute(sql + " ORDER BY loaded_at, dataset", params).fetchall()
            return [DatasetVersion(*r) for r in rows]
        finally:
            con.close()

    def file_sha256(self) -> str | None:
        """sha256 of the database file as it is on disk now (None if there is none yet)."""
        return _sha256_of(self.path) if self.path.exists() else None

    def _current_version(self, con, name: str) -> DatasetVersion | None:
        if not self._has_meta(con):
            return None
        row = con.execute(
            f"SELECT * FROM {META_SCHEMA}.dataset_versions WHERE dataset = ? AND current",
            [name]).fetchone()
        return DatasetVersion(*row) if row else None

    @staticmethod
    def _has_meta(con) -> bool:
        return bool(con.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = ? AND table_name = 'dataset_versions'", [META_SCHEMA]
        ).fetchone()[0])


def open_readonly(
    domain_dir: Path, *, memory_limit: str = "1GB", threads: int = 2
) -> duckdb.DuckDBPyConnection:
    """The gateway's connection: read-only, no external access, configuration locked."""
    path = Path(domain_dir) / DB_FILE
    if not path.is_file():
        raise DomainError(f"no domain store at {path}; load data with `shuyu data generate` first")
    if threads < 1:
        raise DomainError(f"threads must be at least 1, got {threads}")
    config = {
        "access_mode": "READ_ONLY",
        "enable_external_access": False,
        "autoload_known_extensions": False,
        "autoinstall_known_extensions": False,
        "allow_community_extensions": False,
        "allow_unsigned_extensions": False,
        "allow_persistent_secrets": False,
        "python_enable_replacements": False,
        "memory_limit": memory_limit,
        "threads": threads,
        "lock_configuration": True,
    }
    try:
        return duckdb.connect(str(path), read_only=True, config=config)
    except (duckdb.Error, ValueError) as e:
        raise DomainError(f"cannot open the domain store {path} read-only: {e}") from None


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


def _loaded_event(v: DatasetVersion, previous: DatasetVersion | None, store: Path) -> dict:
    return {
        "type": "dataset.loaded",
        "actor": v.loaded_by,
        "role": "authority",
        "dataset": v.dataset,
        "details": {
            "version": v.version, "sha256": v.sha256, "rows": v.rows, "source": v.source,
            "acquired_on": v.acquired_on.isoformat() if v.acquired_on else None,
            "store": store.name,
            "replaces": previous.version if previous else None,
        },
    }


def _sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except OSError as e:
        raise DomainError(f"cannot read {path}: {e.strerror or e}") from None
    return h.hexdigest()


def _date_or_none(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _whoami() -> str:
    try:
        return f"os:{getpass.getuser()}"
    except (KeyError, OSError):
        return "os:unknown"
