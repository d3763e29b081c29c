"""Writing the domain store: building a dataset version's file, then making a new state current.

``build_dataset_file`` writes one table into a new DuckDB file in a work directory nobody else
knows, checks its row count and columns, checkpoints, closes and fsyncs it.

``commit_state`` runs under the writer lock and makes a new manifest current in this order:

1. move the new dataset files into ``datasets/<name>/`` (nothing names them yet);
2. write the new generation's views file;
3. ``before_current()``: the ledger append of a load (fail closed: if it raises, the files of
   steps 1–2 are removed and the manifest is untouched);
4. replace the manifest atomically: from here on, readers' next leases see the new state;
5. sweep: remove files the manifest no longer names (the replaced version, older views files,
   orphans of crashed writers) and work directories whose owner is gone. Readers still
   using a removed file keep it open; a reader that was about to attach it reads the new
   manifest instead.

A crash before step 4 leaves the previous state current and orphan files at most (removed by
the next writer's sweep); a crash after it leaves the new state and files to sweep.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import duckdb

from hub.domain.errors import DomainError
from hub.domain.layout import (
    DATASETS,
    INCOMING,
    SPILL,
    VIEWS,
    WRITER_CONFIG,
    fsync_dir,
    fsync_file,
    make_private_dir,
    sql_name,
    sweep_work_dirs,
    write_views,
)
from hub.domain.manifest import Manifest, write_manifest


def build_dataset_file(
    path: Path,
    name: str,
    select_sql: str,
    params: list | None,
    rows: int,
    expected_columns: Sequence[tuple[str, str]] | None,
    attach: str | None = None,
) -> None:
    """Create `path` holding table `name` from `select_sql` (after ``ATTACH`` `attach` if
    given, a SQL statement); refuse a row count other than `rows` or other columns."""
    try:
        con = duckdb.connect(str(path), config=WRITER_CONFIG)
    except duckdb.Error as e:
        raise DomainError(f"cannot create {path}: {e}") from None
    try:
        if attach:
            con.execute(attach)
        con.execute(f"CREATE TABLE main.{sql_name(name)} AS {select_sql}", params)
        got_rows = con.execute(f"SELECT count(*) FROM main.{sql_name(name)}").fetchone()[0]
        if got_rows != rows:
            raise DomainError(f"{name}: loaded {got_rows} rows, the source declares {rows}")
        if expected_columns is not None:
            got = [(r[0], r[1]) for r in
                   con.execute(f"DESCRIBE main.{sql_name(name)}").fetchall()]
            if got != list(expected_columns):
                raise DomainError(f"{name}: columns {got} differ from the catalog's "
                                  f"{list(expected_columns)}")
        con.execute("CHECKPOINT")
    except duckdb.Error as e:
        raise DomainError(f"{name}: the domain store could not load it: {e}") from None
    finally:
        con.close()
    os.chmod(path, 0o600)
    fsync_file(path)


def commit_state(
    domain_dir: Path,
    manifest: Manifest,
    moves: Sequence[tuple[Path, str]],
    before_current: Callable[[], None] | None = None,
) -> None:
    """Make `manifest` current (see module doc); `moves` are (built file, its path in the
    manifest). The caller holds the writer lock."""
    placed: list[Path] = []
    views = domain_dir / manifest.views
    try:
        for built, relative in moves:
            final = domain_dir / relative
            make_private_dir(final.parent)
            os.rename(built, final)
            placed.append(final)
            fsync_dir(final.parent)
        make_private_dir(views.parent)
        write_views(views, {name: domain_dir / c.file for name, c in manifest.current.items()})
        if before_current is not None:
            before_current()
        write_manifest(domain_dir, manifest)
    except BaseException:
        for path in [*placed, views]:
            path.unlink(missing_ok=True)
        raise
    sweep(domain_dir, manifest)


def sweep(domain_dir: Path, manifest: Manifest) -> None:
    """Remove what `manifest` does not name; never fails the operation that called it."""
    keep = {domain_dir / c.file for c in manifest.current.values()}
    keep.add(domain_dir / manifest.views)
    try:
        for d in (domain_dir / DATASETS).glob("*"):
            for f in d.iterdir() if d.is_dir() else ():
                if f not in keep:
                    f.unlink(missing_ok=True)
        for f in (domain_dir / VIEWS).glob("*"):
            if f not in keep:
                f.unlink(missing_ok=True)
        for f in domain_dir.glob(".manifest.json.*.tmp"):
            f.unlink(missing_ok=True)
        sweep_work_dirs(domain_dir / INCOMING)
        sweep_work_dirs(domain_dir / SPILL)
    except OSError:
        pass  # leftovers are harmless: the next writer sweeps again
