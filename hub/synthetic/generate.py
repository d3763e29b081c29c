"""Generate every synthetic dataset from one seed and write them as Parquet plus ``catalog.json``.

Determinism: the seed feeds a ``numpy.random.SeedSequence`` that spawns one independent stream
per dataset (by position in ``catalog.DATASETS``), so the same (scale, seed, as-of date) give
byte-identical Parquet files and catalog with the same library versions; changing how one
dataset is drawn leaves the streams of the others alone.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hub.synthetic import DEFAULT_AS_OF, enterprises, insurance, people, transit, utilities
from hub.synthetic.catalog import DATASETS, Dataset, catalog_document, check_schema

MIN_SCALE = 100
MAX_SCALE = 10_000_000
CATALOG_FILE = "catalog.json"
ROW_GROUP_ROWS = 1 << 20


class GenerateError(ValueError):
    """Bad options or an output location that cannot be used; the message says which."""


@dataclass(frozen=True)
class Options:
    scale: int
    seed: int = 0
    as_of: date = DEFAULT_AS_OF

    def check(self) -> None:
        if not MIN_SCALE <= self.scale <= MAX_SCALE:
            raise GenerateError(
                f"--scale must be a number of residents from {MIN_SCALE:,} to {MAX_SCALE:,}, "
                f"got {self.scale:,}"
            )
        if not 0 <= self.seed < 2**63:
            raise GenerateError(f"--seed must be a non-negative integer below 2**63, got {self.seed}")
        if not date(2000, 1, 1) <= self.as_of <= date(2100, 12, 31):
            raise GenerateError(f"--as-of must be between 2000-01-01 and 2100-12-31, got {self.as_of}")

    def generator_json(self) -> dict:
        return {"command": "shuyu data generate", **asdict(self), "as_of": self.as_of.isoformat()}


def generate_tables(options: Options) -> Iterator[tuple[Dataset, pa.Table]]:
    """Yield (dataset spec, table) in catalog order; each table is checked against its spec."""
    options.check()
    streams = np.random.SeedSequence(options.seed).spawn(len(DATASETS))
    rng = {spec.name: np.random.default_rng(s) for spec, s in zip(DATASETS, streams)}
    spec = {d.name: d for d in DATASETS}

    sizes = people.household_sizes(rng["households"], options.scale)
    households, household_district = people.build_households(rng["households"], sizes)
    yield _checked(spec["households"], households)
    residents, folk = people.build_residents(
        rng["residents"], options.as_of, sizes,
        households["household_id"].combine_chunks(), household_district,
        households["address"].combine_chunks(),
    )
    del households
    yield _checked(spec["residents"], residents)
    del residents
    table, firms = enterprises.build_enterprises(rng["enterprises"], folk)
    yield _checked(spec["enterprises"], table)
    yield _checked(spec["social_insurance"],
                   insurance.build_social_insurance(rng["social_insurance"], folk, firms))
    table, cards = transit.build_bus_cards(rng["bus_cards"], folk)
    yield _checked(spec["bus_cards"], table)
    yield _checked(spec["bus_trips"], transit.build_bus_trips(rng["bus_trips"], folk, cards))
    yield _checked(spec["water_use"], utilities.build_water_use(rng["water_use"], folk))
    yield _checked(spec["electricity_use"],
                   utilities.build_electricity_use(rng["electricity_use"], folk))


def _checked(spec: Dataset, table: pa.Table) -> tuple[Dataset, pa.Table]:
    check_schema(spec, table.schema)
    return spec, table


def write_parquet(table: pa.Table, path: Path) -> str:
    """Write `table` to `path` (atomically, via a temporary file); return the file's sha256."""
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(
        table, tmp, compression="zstd", row_group_size=ROW_GROUP_ROWS, use_dictionary=True,
        write_statistics=True, store_decimal_as_integer=True,
    )
    digest = sha256_file(tmp)
    os.replace(tmp, path)
    return digest


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def prepare_out_dir(out: Path, force: bool) -> None:
    """Make sure `out` can take the files; refuse a non-empty directory unless `force`."""
    if out.exists() and not out.is_dir():
        raise GenerateError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise GenerateError(
            f"--out {out} is not empty; pass --force to overwrite the dataset files in it"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".shuyu-write-probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise GenerateError(f"cannot write to --out {out}: {e.strerror or e}") from None


def write_dataset_dir(
    out: Path,
    options: Options,
    on_progress: Callable[[str, str], None] | None = None,
) -> dict:
    """Generate every dataset into `out` as Parquet, then write ``catalog.json`` last.

    Check the directory with ``prepare_out_dir`` first (the CLI does). Each file is written by
    a background thread while the next dataset is generated (both release the GIL for most
    of their work), at most one write pending. ``on_progress(name, step)`` is called with
    step "generated", then "written", for each dataset. Returns the catalog.
    """
    options.check()
    out.mkdir(parents=True, exist_ok=True)
    entries: list[dict] = []

    def finish(spec: Dataset, rows: int, written: Future) -> None:
        digest = written.result()
        entries.append(spec.metadata(DATASETS.index(spec), options.as_of, digest, rows))
        if on_progress:
            on_progress(spec.name, "written")

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="shuyu-parquet") as pool:
        pending = None
        for spec, table in _announce(generate_tables(options), on_progress):
            if pending:
                finish(*pending)
            pending = (spec, table.num_rows,
                       pool.submit(write_parquet, table, out / f"{spec.name}.parquet"))
            del table
        if pending:
            finish(*pending)
    catalog = catalog_document(options.generator_json(), entries)
    write_catalog(out / CATALOG_FILE, catalog)
    return catalog


def _announce(tables, on_progress):
    for spec, table in tables:
        if on_progress:
            on_progress(spec.name, "generated")
        yield spec, table


def write_catalog(path: Path, catalog: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(catalog, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
