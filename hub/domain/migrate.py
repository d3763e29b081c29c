"""Converting a domain store of the single-file layout to one file per dataset version.

Before this layout, the store was one DuckDB file ``<domain_dir>/domain.duckdb``: one table per
dataset in ``main`` and every version ever loaded in ``shuyu_meta.dataset_versions``. Such a
directory is converted once, automatically, by the first writer or reader that finds it (so
``make up`` keeps working on an existing data directory), under the writer lock:

1. ``domain.duckdb`` (and its ``.wal``, if any) is renamed to ``domain.duckdb.migrating``: no
   process of the old layout can take it for a live store any more, and an interrupted
   conversion is found and started again from it;
2. each table is copied into its own file (row counts checked against the old table), each
   version record gets an id, and the first manifest is committed with a views file like any
   load (``build.commit_state``);
3. only then is ``domain.duckdb.migrating`` removed.

Nothing is recorded in the ledger: the versions, their sources and hashes are unchanged, and
the ledger's ``dataset.loaded`` entries still describe them.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import duckdb

from hub.domain.build import build_dataset_file, commit_state
from hub.domain.errors import DomainError
from hub.domain.layout import (
    INCOMING,
    MANIFEST,
    OLD_FILE,
    WRITER_CONFIG,
    WorkDir,
    fsync_dir,
    sha256_of,
    sql_name,
    sql_string,
    writer_lock,
)
from hub.domain.manifest import (
    NAME_PATTERN,
    CurrentFile,
    DatasetVersion,
    Manifest,
    dataset_file,
    new_state,
    new_version_id,
    views_file,
)

MIGRATING = OLD_FILE + ".migrating"
OLD_META = "shuyu_meta.dataset_versions"
log = logging.getLogger(__name__)


def migrate_if_needed(domain_dir: Path) -> bool:
    """Convert a single-file store in `domain_dir` (see module doc); whether it did."""
    d = Path(domain_dir)
    if (d / MANIFEST).exists() or not ((d / OLD_FILE).exists() or (d / MIGRATING).exists()):
        return False
    with writer_lock(d):
        if (d / MANIFEST).exists():
            return False  # converted by another process meanwhile
        old, moving = d / OLD_FILE, d / MIGRATING
        if old.exists():
            if moving.exists():
                raise DomainError(f"both {old} and {moving} exist: a conversion was interrupted "
                                  f"and the old store written again; keep one of them by hand")
            _rename_with_wal(old, moving)
        elif not moving.exists():
            return False
        log.warning("converting the domain store %s to one file per dataset version", moving)
        with WorkDir(d / INCOMING) as work:
            manifest, moves = _convert(moving, work.path)
            commit_state(d, manifest, moves)
        for path in (moving, moving.with_name(MIGRATING + ".wal")):
            path.unlink(missing_ok=True)
        fsync_dir(d)
        log.warning("domain store converted: %d datasets, %d versions", len(manifest.current),
                    len(manifest.versions))
        return True


def _rename_with_wal(old: Path, moving: Path) -> None:
    wal = old.with_name(old.name + ".wal")
    if wal.exists():
        os.rename(wal, moving.with_name(moving.name + ".wal"))
    os.rename(old, moving)
    fsync_dir(old.parent)


def _convert(moving: Path, work: Path) -> tuple[Manifest, list[tuple[Path, str]]]:
    tables, history = _read_old(moving)
    versions: list[DatasetVersion] = []
    for row in history:
        loaded_at = row[6]
        versions.append(DatasetVersion(*row[:8], False, new_version_id(loaded_at)))
    current: dict[str, CurrentFile] = {}
    moves: list[tuple[Path, str]] = []
    attach = f"ATTACH {sql_string(str(moving))} AS shuyu_old (READ_ONLY)"
    for name, rows in tables.items():
        if not NAME_PATTERN.match(name) or name.startswith("shuyu"):
            raise DomainError(f"table {name!r} in {moving} has a name this store does not "
                              "allow for datasets; rename or drop it there, then start again")
        recorded = [v for v, row in zip(versions, history) if row[0] == name and row[8]]
        version_id = recorded[-1].id if recorded else None
        file_id = version_id or new_version_id(datetime.now())
        built = work / f"{name}.duckdb"
        build_dataset_file(built, name, f"SELECT * FROM shuyu_old.main.{sql_name(name)}", None,
                           rows, None, attach=attach)
        current[name] = CurrentFile(name, dataset_file(name, file_id), version_id, rows,
                                    sha256_of(built))
        moves.append((built, current[name].file))
    ids = {(c.dataset, c.version_id) for c in current.values()}
    versions = [replace(v, current=(v.dataset, v.id) in ids) for v in versions]
    return Manifest(1, new_state(1), views_file(1), current, tuple(versions)), moves


def _read_old(path: Path) -> tuple[dict[str, int], list[tuple]]:
    """(row count by table, version rows oldest first) of the single-file store."""
    try:
        con = duckdb.connect(str(path), read_only=True, config=WRITER_CONFIG)
    except duckdb.Error as e:
        raise DomainError(f"cannot open the old domain store {path} to convert it: {e}") from None
    try:
        names = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "AND table_type = 'BASE TABLE' ORDER BY table_name").fetchall()]
        tables = {n: con.execute(f"SELECT count(*) FROM main.{sql_name(n)}").fetchone()[0]
                  for n in names}
        has_meta = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'shuyu_meta' "
            "AND table_name = 'dataset_versions'").fetchone()[0]
        history = con.execute(
            "SELECT dataset, version, sha256, rows, source, acquired_on, loaded_at, loaded_by, "
            f"current FROM {OLD_META} ORDER BY loaded_at, dataset").fetchall() if has_meta else []
    except duckdb.Error as e:
        raise DomainError(f"cannot read the old domain store {path}: {e}") from None
    finally:
        con.close()
    return tables, history
