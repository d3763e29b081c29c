"""Reading the domain store on the trusted side: hardened DuckDB connections that follow loads.

Terms:
- *state*: one manifest generation (which file holds each dataset's current version);
- *snapshot*: a hardened connection to one state, with its facts cache. It is built as an
  in-memory DuckDB database that attaches the state's views file (as ``shuyu_domain``, the
  default catalog) and each dataset file (as ``shuyu_ds_<name>``), all READ_ONLY, then detaches
  its own writable in-memory catalog, disables external access and locks the configuration.
  So every dataset is ``main.<name>`` (or plain ``<name>``) as before, and nothing reachable is
  writable except per-cursor temporary objects;
- *lease*: a use of a snapshot (a query, a check run, a DP computation). A snapshot stays
  open while leased, even once a newer state is current.

``DomainReader`` keeps the current snapshot. On every lease it compares the manifest's inode
with the one its snapshot was read from (one ``stat``; the snapshot keeps its manifest open,
so the inode cannot be reused while it is current). When a load has replaced the manifest, the
next lease builds a fresh snapshot; leases already running finish on the old one, which is
closed when the last of them ends. Anything worked out from the data (uniqueness of a column,
the largest number of rows per unit) belongs in ``Snapshot.facts``, which goes with its state.

Hardening (the gateway's SQL policy comes first; this is defence in depth): no external access
(files, URLs, ``COPY``, ``ATTACH`` of files, ``INSTALL``/``LOAD``), no extension autoloading or
autoinstalling, no community or unsigned extensions, no persistent secrets, no Python
replacement scans, bounded memory and threads, configuration locked. Queries that outgrow the
memory limit spill to a private directory under ``<domain_dir>/spill`` that is removed with
the snapshot.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from hub.domain.errors import DomainError
from hub.domain.layout import (
    DEFAULT_CATALOG,
    MANIFEST,
    SPILL,
    WorkDir,
    dataset_alias,
    sql_name,
    sql_string,
)
from hub.domain.manifest import Manifest, parse_manifest
from hub.domain.migrate import migrate_if_needed

BUILD_ATTEMPTS = 5  # a load may remove the files of the state being attached: read again


def hardened_config(memory_limit: str, threads: int, spill: str) -> dict[str, Any]:
    """Connection settings of every reader (external access is disabled after attaching)."""
    if threads < 1:
        raise DomainError(f"threads must be at least 1, got {threads}")
    return {
        "autoload_known_extensions": False,
        "autoinstall_known_extensions": False,
        "allow_community_extensions": False,
        "allow_unsigned_extensions": False,
        "allow_persistent_secrets": False,
        "python_enable_replacements": False,
        "memory_limit": memory_limit,
        "threads": threads,
        "temp_directory": spill,
    }


@dataclass(eq=False)
class Snapshot:
    """A hardened connection to one state of the store (see module doc)."""

    domain_dir: Path
    manifest: Manifest
    con: duckdb.DuckDBPyConnection
    use_default: bool  # fresh cursors start elsewhere: each needs ``USE shuyu_domain``
    _manifest_fd: int
    _spill: WorkDir | None
    facts: dict[Any, Any] = field(default_factory=dict)
    _leases: int = 0
    _retired: bool = False
    _idle: list[Any] = field(default_factory=list)  # see park()
    _idle_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def state(self) -> str:
        """Unique per state: a key for anything cached across snapshots."""
        return self.manifest.state

    @property
    def datasets(self) -> list[str]:
        return sorted(self.manifest.current)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor of its own (concurrent queries each take one); close it after use."""
        cur = self.con.cursor()
        if self.use_default:
            cur.execute(f"USE {DEFAULT_CATALOG}")
        return cur

    def park(self, item: Any, keep: int) -> bool:
        """Keep `item` (anything with ``close()`` built on this snapshot, e.g. a cursor and
        what it has prepared) for a later ``unpark``, at most `keep` of them; it is closed with
        the snapshot. False if it was not kept (the caller closes it)."""
        with self._idle_lock:
            if self._retired or len(self._idle) >= keep:
                return False
            self._idle.append(item)
            return True

    def unpark(self) -> Any | None:
        """An item ``park`` kept, now the caller's alone; None if there is none."""
        with self._idle_lock:
            return self._idle.pop() if self._idle else None

    def _close(self) -> None:
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for item in idle:
            try:
                item.close()
            except Exception:  # noqa: BLE001 - closing the connection below ends it anyway
                pass
        try:
            self.con.close()
        finally:
            os.close(self._manifest_fd)
            if self._spill is not None:
                self._spill.remove()


class DomainReader:
    """The current snapshot of the store, renewed after loads (see module doc). Thread-safe."""

    def __init__(self, domain_dir: Path, *, memory_limit: str = "1GB", threads: int = 2):
        if threads < 1:
            raise DomainError(f"threads must be at least 1, got {threads}")
        self.domain_dir = Path(domain_dir)
        self.memory_limit = memory_limit
        self.threads = threads
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._ident: tuple[int, int] | None = None

    # --- leases ------------------------------------------------------------------------------

    @contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        """Lease the current snapshot for the duration of the block."""
        snap = self.acquire()
        try:
            yield snap
        finally:
            self.release(snap)

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on the current snapshot, leased for the duration of the block."""
        with self.snapshot() as snap:
            cur = snap.cursor()
            try:
                yield cur
            finally:
                cur.close()

    def connect(self) -> "LeasedConnection":
        """A connection-like object on the current snapshot, leased until it is closed."""
        return LeasedConnection(self, self.acquire())

    def close(self) -> None:
        """Close the snapshot once its leases end; a later lease opens a fresh one."""
        with self._lock:
            snap, self._snapshot, self._ident = self._snapshot, None, None
            if snap is not None:
                self._retire(snap)

    def acquire(self) -> Snapshot:
        """Lease the current snapshot (renewed first if the manifest changed); every
        ``acquire`` needs one ``release``."""
        ident = _manifest_ident(self.domain_dir)
        with self._lock:
            snap = self._snapshot
            if snap is None or ident is None or ident != self._ident:
                fresh = self._build()
                if snap is not None:
                    self._retire(snap)
                self._snapshot, snap = fresh, fresh
                self._ident = _fd_ident(fresh._manifest_fd)
            snap._leases += 1
            return snap

    def release(self, snap: Snapshot) -> None:
        with self._lock:
            snap._leases -= 1
            if snap._retired and snap._leases == 0:
                snap._close()

    @staticmethod
    def _retire(snap: Snapshot) -> None:
        snap._retired = True
        if snap._leases == 0:
            snap._close()

    # --- building a snapshot ---------------------------------------------------------------------

    def _build(self) -> Snapshot:
        last: Exception | None = None
        for _ in range(BUILD_ATTEMPTS):
            migrate_if_needed(self.domain_dir)
            path = self.domain_dir / MANIFEST
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                raise DomainError(f"no domain store at {self.domain_dir} (no {MANIFEST}); load "
                                  "data with `shuyu data generate` first") from None
            except OSError as e:
                raise DomainError(f"cannot open {path}: {e.strerror or e}") from None
            try:
                manifest = parse_manifest(_read_fd(fd), str(path))
                return self._connect(fd, manifest)
            except _StateGone as e:
                os.close(fd)
                last = e
            except BaseException:
                os.close(fd)
                raise
        raise DomainError(f"cannot open the domain store {self.domain_dir}: its files kept "
                          f"changing while they were attached ({last})")

    def _connect(self, fd: int, manifest: Manifest) -> Snapshot:
        spill = _spill_dir(self.domain_dir)
        try:
            con = duckdb.connect(":memory:", config=hardened_config(
                self.memory_limit, self.threads, str(spill.path) if spill else ""))
        except (duckdb.Error, ValueError) as e:
            if spill:
                spill.remove()
            raise DomainError(f"cannot open the domain store {self.domain_dir} read-only: "
                              f"{e}") from None
        try:
            use_default = _attach_state(con, self.domain_dir, manifest)
        except BaseException:
            con.close()
            if spill:
                spill.remove()
            raise
        return Snapshot(self.domain_dir, manifest, con, use_default, fd, spill)


class _StateGone(Exception):
    """A file of the state being attached is gone (a newer load removed it)."""


def _attach_state(con: duckdb.DuckDBPyConnection, domain_dir: Path, m: Manifest) -> bool:
    """Attach the views file first (it becomes the default for fresh cursors), then every
    dataset file, all read-only; then harden. Returns whether cursors need ``USE``."""
    files = [(DEFAULT_CATALOG, domain_dir / m.views)]
    files += [(dataset_alias(name), domain_dir / c.file) for name, c in sorted(m.current.items())]
    for alias, path in files:
        try:
            con.execute(f"ATTACH {sql_string(str(path))} AS {sql_name(alias)} (READ_ONLY)")
        except duckdb.Error as e:
            if not path.exists():
                raise _StateGone(f"{path} is gone") from None
            raise DomainError(f"cannot attach {path} read-only: {e}") from None
    try:
        con.execute(f"USE {DEFAULT_CATALOG}")
        con.execute("DETACH memory")  # the only writable catalog besides per-cursor temp
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        probe = con.cursor()
        try:
            start = probe.execute("SELECT current_database()").fetchone()[0]
        finally:
            probe.close()
    except duckdb.Error as e:
        raise DomainError(f"cannot harden the domain store connection: {e}") from None
    return start != DEFAULT_CATALOG


def _spill_dir(domain_dir: Path) -> WorkDir | None:
    """A private temporary directory for DuckDB, or None (no spilling) if the domain
    directory is not writable here."""
    try:
        return WorkDir(domain_dir / SPILL)
    except OSError:
        return None


def _read_fd(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _fd_ident(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _manifest_ident(domain_dir: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(domain_dir / MANIFEST)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class LeasedConnection:
    """A cursor on one snapshot, leased until ``close``: what the release checks use (``sql``,
    ``execute``, ``register``, ``unregister``, …, as on a DuckDB connection)."""

    def __init__(self, reader: DomainReader, snap: Snapshot, owns_reader: bool = False):
        self._reader, self._snap, self._owns = reader, snap, owns_reader
        self._cur: duckdb.DuckDBPyConnection | None = None
        try:
            self._cur = snap.cursor()
        except BaseException:
            self.close()
            raise

    @property
    def snapshot(self) -> Snapshot:
        return self._snap

    def sql(self, query: str, params: Any = None) -> Any:
        return self._cursor().sql(query, params=params)

    def execute(self, query: str, params: Any = None) -> duckdb.DuckDBPyConnection:
        return self._cursor().execute(query, params)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """Another cursor on the same snapshot (valid until this connection is closed)."""
        self._cursor()
        return self._snap.cursor()

    def __getattr__(self, name: str) -> Any:  # register, unregister, fetchall, …
        return getattr(self._cursor(), name)

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        if self._cur is None:
            raise DomainError("this domain store connection is closed")
        return self._cur

    def close(self) -> None:
        cur, self._cur = self._cur, None
        if self._snap is None:
            return
        snap, self._snap = self._snap, None  # type: ignore[assignment]
        try:
            if cur is not None:
                cur.close()
        finally:
            self._reader.release(snap)
            if self._owns:
                self._reader.close()

    def __enter__(self) -> "LeasedConnection":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_readonly(domain_dir: Path, *, memory_limit: str = "1GB",
                  threads: int = 2) -> LeasedConnection:
    """One hardened connection to the store's current state, for one-off reading (tests,
    benchmarks, tools). It keeps that state until closed; services use a ``DomainReader``."""
    reader = DomainReader(domain_dir, memory_limit=memory_limit, threads=threads)
    return LeasedConnection(reader, reader.acquire(), owns_reader=True)


__all__ = ["DomainReader", "LeasedConnection", "Snapshot", "hardened_config", "open_readonly"]
