"""Where the domain store keeps its files, and the file-system steps that keep them consistent.

Layout of ``<domain_dir>`` (directory 0700, files 0600: raw data readable by its owner only)::

    manifest.json                   which version of each dataset is current, and every version
                                    ever loaded; replaced atomically (``write_atomic``)
    .lock                           writers hold an exclusive lock on it (``writer_lock``)
    datasets/<name>/<version>.duckdb one immutable DuckDB file per loaded version, holding one
                                    table named like the dataset
    views/<generation>.duckdb       one small immutable DuckDB file per manifest generation:
                                    a view ``main.<name>`` per current dataset over its file
    incoming/<id>/                  a load in progress (the verified Parquet copy, the new file)
    spill/<id>/                     a reader's DuckDB temporary files (queries over memory)
    catalog.json                    the catalog of the last ``load_catalog_dir``

``incoming`` and ``spill`` directories are *work directories*: their creator holds an exclusive
``flock`` on ``<id>/.owner`` while it uses them, so a sweep (``sweep_work_dirs``) removes only
those whose owner is gone (it crashed), never one in use. Files in ``datasets/`` and ``views/``
are only added and removed by a writer holding ``writer_lock``; one the manifest does not name
is an orphan of a crashed or refused load and is removed by the next writer.

Readers attach the files under fixed names (``DEFAULT_CATALOG`` for the views file,
``dataset_alias(name)`` for each dataset file): the views refer to those names.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import duckdb

from hub.domain.errors import DomainError

MANIFEST = "manifest.json"
LOCK = ".lock"
DATASETS = "datasets"
VIEWS = "views"
INCOMING = "incoming"
SPILL = "spill"
OWNER = ".owner"
OLD_FILE = "domain.duckdb"  # the single-file layout this one replaces (see ``migrate``)
DEFAULT_CATALOG = "shuyu_domain"
ALIAS_PREFIX = "shuyu_ds_"  # dataset names cannot start with "shuyu", so no clash with them
WRITER_CONFIG = {"autoload_known_extensions": False, "autoinstall_known_extensions": False}


def dataset_alias(name: str) -> str:
    """The name a reader attaches a dataset's file under (the views refer to it)."""
    return ALIAS_PREFIX + name


def dataset_table(name: str) -> str:
    """The SQL name of a dataset's table in its attached file (what the view ``main.<name>``
    shows; the table also has row numbers, ``rowid``, which a view has not)."""
    return f"{sql_name(dataset_alias(name))}.main.{sql_name(name)}"


def sql_string(text: str) -> str:
    """A SQL string literal (ATTACH takes no bound parameters)."""
    return "'" + text.replace("'", "''") + "'"


def sql_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --- directories and durable writes ---------------------------------------------------------


def make_private_dir(path: Path) -> None:
    """Create `path` (and missing parents) owner-only; fsync the parent of each one made."""
    missing = []
    at = Path(path)
    while not at.exists():
        missing.append(at)
        at = at.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            continue
        fsync_dir(d.parent)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a reader sees the old or the new content, whole,
    and a crash leaves one of them: temporary file, fsync, rename, fsync of the directory."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except OSError as e:
        raise DomainError(f"cannot read {path}: {e.strerror or e}") from None
    return h.hexdigest()


# --- locks ------------------------------------------------------------------------------------


@contextmanager
def writer_lock(domain_dir: Path) -> Iterator[None]:
    """Hold the store's exclusive writer lock (waits for other writers, in any process or
    thread: ``flock`` locks belong to the open file, not to the process)."""
    make_private_dir(domain_dir)
    try:
        fd = os.open(Path(domain_dir) / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        raise DomainError(f"cannot open the domain store's lock file in {domain_dir}: "
                          f"{e.strerror or e}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


class WorkDir:
    """A private directory under `parent` that this process owns while it is open."""

    def __init__(self, parent: Path):
        make_private_dir(parent)
        self.path = Path(parent) / uuid.uuid4().hex
        self.path.mkdir(mode=0o700)
        self._fd: int | None = os.open(self.path / OWNER, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def remove(self) -> None:
        if self._fd is None:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "WorkDir":
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def sweep_work_dirs(parent: Path) -> None:
    """Remove the work directories under `parent` whose owner is gone."""
    if not parent.is_dir():
        return
    for d in parent.iterdir():
        if not d.is_dir():
            continue
        try:
            fd = os.open(d / OWNER, os.O_RDWR)
        except FileNotFoundError:
            shutil.rmtree(d, ignore_errors=True)  # its owner died before taking the lock
            continue
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            os.close(fd)  # in use
            continue
        shutil.rmtree(d, ignore_errors=True)
        os.close(fd)


# --- the views file ---------------------------------------------------------------------------


def write_views(path: Path, files: Mapping[str, Path]) -> None:
    """A DuckDB file with one view ``main.<name>`` per dataset over its attached file; it is
    written once, closed, fsynced, and only ever attached read-only afterwards."""
    path.unlink(missing_ok=True)  # an orphan of a crashed writer with the same generation
    try:
        con = duckdb.connect(str(path), config=WRITER_CONFIG)
    except duckdb.Error as e:
        raise DomainError(f"cannot create {path}: {e}") from None
    try:
        for name, file in sorted(files.items()):
            alias = sql_name(dataset_alias(name))
            con.execute(f"ATTACH {sql_string(str(file))} AS {alias} (READ_ONLY)")
            con.execute(f"CREATE VIEW main.{sql_name(name)} AS SELECT * FROM {dataset_table(name)}")
            con.execute(f"DETACH {alias}")
        con.execute("CHECKPOINT")
    except duckdb.Error as e:
        con.close()
        path.unlink(missing_ok=True)
        raise DomainError(f"cannot write the views of the domain store to {path}: {e}") from None
    con.close()
    os.chmod(path, 0o600)
    fsync_file(path)
    fsync_dir(path.parent)
