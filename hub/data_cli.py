"""`shuyu data …`: synthetic public data for Kunming and the domain store.

Verbs: ``generate`` (to a directory of Parquet files, or straight into the domain store),
``load`` (a generated directory into the domain store) and ``status`` (tables, row counts,
versions and hashes). Loading writes ``dataset.loaded`` to the ledger first, so the ledger must
be initialised (``shuyu ledger init``). Errors go to stderr as one line and exit non-zero.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hub.synthetic import DEFAULT_AS_OF
from ledger.exceptions import LedgerError
from shuyu_server.settings import load_settings

# numpy, pyarrow and DuckDB are imported inside the commands, so `shuyu` starts fast.
if TYPE_CHECKING:
    from ledger.log import Log

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data directory (default: settings, else ./var); the domain store is <data-dir>/domain.",
)
replace_option = click.option(
    "--replace", is_flag=True,
    help="Load new versions over datasets already in the domain store (old versions stay in "
    "the version history).",
)


def fail(message: str | BaseException, code: int = 1) -> None:
    notes = getattr(message, "__notes__", [])
    click.echo(f"error: {message}" + "".join(f" ({n})" for n in notes), err=True)
    sys.exit(code)


def parse_as_of(ctx: click.Context, param: click.Parameter, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2025-12-31") from None


@click.group()
def data() -> None:
    """Synthetic public data for Kunming and the domain store (raw data, server side only)."""


@data.command()
@click.option("--scale", type=int, default=10_000, show_default=True,
              help="Number of residents; every other dataset is sized from it.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Random seed: the same scale, seed and --as-of give identical files.")
@click.option("--as-of", "as_of", default=DEFAULT_AS_OF.isoformat(), show_default=True,
              callback=parse_as_of, help="Reference date: end of the year and week covered.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Write Parquet files and catalog.json here instead of loading the domain store.")
@click.option("--force", is_flag=True, help="With --out: overwrite dataset files in a non-empty directory.")
@replace_option
@data_dir_option
def generate(scale: int, seed: int, as_of: date, out: Path | None, force: bool, replace: bool,
             data_dir: Path | None) -> None:
    """Generate residents, households, enterprises, social insurance, bus cards and trips,
    water and electricity use; write them to --out, or load them into the domain store."""
    from hub.domain import DomainError, DomainStore
    from hub.synthetic.catalog import DATASETS
    from hub.synthetic.generate import GenerateError, Options, prepare_out_dir, write_dataset_dir

    options = Options(scale, seed, as_of)
    try:
        options.check()
        if out is not None:
            if replace:
                raise GenerateError("--replace applies to the domain store, not to --out (use --force)")
            prepare_out_dir(out, force)
    except GenerateError as e:
        raise click.UsageError(str(e)) from None
    if out is None and force:
        raise click.UsageError("--force applies to --out; to reload the domain store use --replace")

    started = time.perf_counter()
    if out is not None:
        with progress_bars([d.name for d in DATASETS], 2) as advance:
            catalog = write_dataset_dir(out, options, lambda name, _step: advance(name))
        summarize(catalog["datasets"], time.perf_counter() - started, f"wrote {out}")
        return

    settings = load_settings(data_dir=data_dir)
    store = DomainStore(settings.domain_dir)
    try:
        with open_ledger(data_dir) as log:
            store.check_can_load([d.name for d in DATASETS], replace)
            staging = settings.domain_dir / f".staging-{uuid.uuid4().hex[:12]}"
            try:
                staging.mkdir(parents=True)
                with progress_bars([d.name for d in DATASETS], 3) as advance:
                    catalog = write_dataset_dir(staging, options, lambda name, _s: advance(name))
                    store.load_catalog_dir(staging, audit=log.append, replace=replace,
                                           on_loaded=lambda v: advance(v.dataset))
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except (DomainError, LedgerError, OSError) as e:
        fail(e)
    summarize(catalog["datasets"], time.perf_counter() - started,
              f"loaded into {store.dir} (manifest sha256 {store.file_sha256()})")


@data.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@replace_option
@data_dir_option
def load(directory: Path, replace: bool, data_dir: Path | None) -> None:
    """Load a directory written by `generate --out` (catalog.json + Parquet) into the domain
    store, checking every file's sha256 against the catalog."""
    from hub.domain import DomainError, DomainStore, read_catalog

    settings = load_settings(data_dir=data_dir)
    store = DomainStore(settings.domain_dir)
    started = time.perf_counter()
    try:
        entries = read_catalog(directory)["datasets"]
        names = [e["name"] for e in entries]
        with open_ledger(data_dir) as log:
            store.check_can_load(names, replace)
            with progress_bars(names, 1) as advance:
                store.load_catalog_dir(directory, audit=log.append, replace=replace,
                                       on_loaded=lambda v: advance(v.dataset))
    except (DomainError, LedgerError, OSError) as e:
        fail(e)
    summarize(entries, time.perf_counter() - started,
              f"loaded into {store.dir} (manifest sha256 {store.file_sha256()})")


@data.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--history", is_flag=True, help="List every version ever loaded, not just current ones.")
@data_dir_option
def status(as_json: bool, history: bool, data_dir: Path | None) -> None:
    """Tables in the domain store with row counts, current versions and sha256 (provenance)."""
    from hub.domain import DomainError, DomainStore

    store = DomainStore(load_settings(data_dir=data_dir).domain_dir)
    try:
        tables = store.tables()
        versions = store.versions() if history else []
        file_hash = store.file_sha256()
    except DomainError as e:
        fail(str(e))
    if as_json:
        click.echo(json.dumps({
            "store": str(store.path), "sha256": file_hash,
            "tables": [{"name": t.name, "rows": t.rows,
                        "version": t.version.to_json() if t.version else None} for t in tables],
            **({"history": [v.to_json() for v in versions]} if history else {}),
        }, ensure_ascii=False, indent=2))
        return
    if file_hash is None:
        click.echo(f"no domain store at {store.path}")
        return
    table = Table("dataset", "rows", "version", "sha256 of source file", "acquired", "loaded at (UTC)",
                  title=f"{store.path}  sha256 {file_hash}")
    if history:
        for v in versions:
            table.add_row(v.dataset + ("" if v.current else " (replaced)"), f"{v.rows:,}",
                          *_version_cells(v))
    for t in [] if history else tables:
        cells = _version_cells(t.version) if t.version else ["(no version record)", "", "", ""]
        table.add_row(t.name, f"{t.rows:,}", *cells)
    Console().print(table)


def _version_cells(v) -> list[str]:
    return [v.version, v.sha256, str(v.acquired_on or ""), v.loaded_at.isoformat(timespec="seconds")]


@contextmanager
def open_ledger(data_dir: Path | None) -> Iterator[Log]:
    """The ledger, which must exist: loads are recorded in it before they take effect."""
    from ledger.cli import config_for
    from ledger.log import Log

    try:
        log = Log.open(config_for(data_dir))
    except LedgerError as e:
        raise LedgerError(f"loads are recorded in the ledger, which is not ready: {e}") from None
    try:
        yield log
    finally:
        log.close()


@contextmanager
def progress_bars(names: list[str], steps: int):
    """One bar per dataset on stderr; yields advance(name) to call after each of its steps
    (generated, written, loaded)."""
    with Progress(TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=Console(stderr=True)) as progress:
        tasks = {n: progress.add_task(n, total=steps) for n in names}
        yield lambda name: progress.advance(tasks[name])


def summarize(entries: list[dict], seconds: float, where: str) -> None:
    table = Table("dataset", "rows", "grade", "open", "sha256")
    for e in entries:
        table.add_row(e["name"], f"{e['rows']:,}" if "rows" in e else "", e.get("grade", ""),
                      e.get("open_attribute", ""), e["sha256"])
    console = Console()
    console.print(table)
    console.print(f"{where} in {seconds:.1f} s")
