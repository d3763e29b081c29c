"""The domain store while the system runs: loads beside open readers and running queries,
concurrent loaders (threads and processes), a refused ledger append, a crash between the new
file and the manifest, and the conversion of a store of the old single-file layout.

Everything is real: DuckDB files, the writer lock, the ledger where a load is recorded, other
processes. Where a test needs a load to wait at a given point, it holds the store's writer lock
itself (``writer_lock``) and watches the work directory for the loader's finished file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hub.domain import DatasetExists, DomainReader, DomainStore, open_readonly, read_manifest
from hub.domain.layout import writer_lock
from hub.domain.migrate import MIGRATING
from hub.gateway.engine import Engine
from hub.synthetic.generate import Options, write_dataset_dir
from tests.hub.test_domain import ledger_events, loaded_store, open_test_log

SCALE = 600
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("generated")
    write_dataset_dir(out, Options(SCALE, 3))
    return out


@pytest.fixture(scope="module")
def bigger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bigger")
    write_dataset_dir(out, Options(SCALE + 200, 4))
    return out


@pytest.fixture
def log(tmp_path: Path):
    log = open_test_log(tmp_path)
    yield log
    log.close()


@pytest.fixture
def store(tmp_path: Path, source: Path, log) -> DomainStore:
    """residents and households loaded."""
    return loaded_store(tmp_path / "domain", source, log)


def rows(parquet: Path) -> int:
    return pq.ParquetFile(parquet).metadata.num_rows


def store_files(store: DomainStore) -> dict[str, bytes]:
    """Every file of the store with its content (the writer lock file aside)."""
    return {str(p.relative_to(store.dir)): p.read_bytes()
            for p in sorted(store.dir.rglob("*")) if p.is_file() and p.name != ".lock"}


def wait_for(predicate, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def built_files(store: DomainStore) -> list[Path]:
    """Loads waiting to commit: finished files in work directories (source copy removed)."""
    return [p for p in (store.dir / "incoming").glob("*/*.duckdb")
            if not (p.parent / "source.parquet").exists()]


# --- readers and loads ------------------------------------------------------------------------


def test_loads_while_a_query_runs_and_the_reader_follows(store, source, bigger, log) -> None:
    reader = DomainReader(store.dir, memory_limit="256MB", threads=1)
    try:
        with reader.cursor() as cur:
            assert cur.execute("SELECT count(*) FROM residents").fetchone()[0] == SCALE
        with reader.snapshot() as before:
            before.facts["probe"] = "computed on the first state"
            cur = before.cursor()
            # a query that is running: started, first batch read, the rest still to come
            stream = cur.sql("SELECT r.resident_id, g.range AS copy FROM residents r, "
                             "range(100) g").to_arrow_reader(1000)
            first = stream.read_next_batch()
            # replace residents (the file it scans is removed by the load) and add a dataset
            store.load("residents", bigger / "residents.parquet", audit=log.append,
                       replace=True)
            store.load("water_use", source / "water_use.parquet", audit=log.append)
            scanned = first.num_rows + sum(b.num_rows for b in stream)
            assert scanned == SCALE * 100  # finished on the state it started on
            # the open lease still sees its own state, whole
            assert cur.execute("SELECT count(*) FROM residents").fetchone()[0] == SCALE
            with pytest.raises(duckdb.CatalogException):
                cur.execute("SELECT count(*) FROM water_use").fetchall()
            cur.close()
            # the next use sees the new state, on a fresh connection and with fresh facts
            with reader.snapshot() as after:
                assert after is not before and after.state != before.state
                assert "probe" not in after.facts and before.facts["probe"]
                c = after.cursor()
                assert c.execute("SELECT count(*) FROM residents").fetchone()[0] == SCALE + 200
                assert c.execute("SELECT count(*) FROM water_use").fetchone()[0] == rows(
                    source / "water_use.parquet")
                c.close()
            old_spill = before._spill.path
            assert old_spill.is_dir()
        # the old state's last lease ended: its connection is closed, its spill dir removed
        with pytest.raises(duckdb.ConnectionException):
            before.con.execute("SELECT 1")
        assert not old_spill.exists()
        with reader.snapshot() as again:
            assert again is after  # unchanged store: the same connection, no rebuild
    finally:
        reader.close()
    events = [e for e in ledger_events(log) if e["type"] == "dataset.loaded"]
    assert [e["dataset"] for e in events] == ["households", "residents", "residents", "water_use"]


def test_facts_cached_per_state_are_dropped_by_a_load(store, source, log, tmp_path) -> None:
    """The gateway's uniqueness facts decide how groups are counted: after a load makes a key
    no longer unique, the engine must not use the old answer."""
    engine = Engine(store.dir, memory_limit="256MB", threads=1, timeout=60)
    try:
        assert engine.entity_unique("households", "household_id") is True
        households = pq.read_table(source / "households.parquet")
        doubled = tmp_path / "households.parquet"
        pq.write_table(pa.concat_tables([households, households.slice(0, 5)]), doubled)
        with engine.snapshot() as old:
            store.load("households", doubled, audit=log.append, replace=True)
            assert engine.entity_unique("households", "household_id", old) is True
            assert engine.entity_unique("households", "household_id") is False
            result = engine.execute("SELECT count(*) FROM households", None, max_rows=1,
                                    max_bytes=1 << 20, snapshot=old)
            assert result.table.column(0)[0].as_py() == households.num_rows
        result = engine.execute("SELECT count(*) FROM households", None, max_rows=1,
                                max_bytes=1 << 20)
        assert result.table.column(0)[0].as_py() == households.num_rows + 5
    finally:
        engine.close()


def test_a_connection_closed_while_leased_keeps_its_state_until_released(store, bigger,
                                                                         log) -> None:
    reader = DomainReader(store.dir, memory_limit="256MB", threads=1)
    con = reader.connect()
    reader.close()  # as a service shutting down while a check still runs
    store.load("residents", bigger / "residents.parquet", audit=log.append, replace=True)
    assert con.execute("SELECT count(*) FROM residents").fetchone()[0] == SCALE
    con.close()
    con.close()  # twice is harmless
    with reader.cursor() as cur:  # a closed reader opens the current state again on use
        assert cur.execute("SELECT count(*) FROM residents").fetchone()[0] == SCALE + 200
    reader.close()


# --- concurrent loaders ----------------------------------------------------------------------


def test_loaders_in_threads_wait_for_each_other(store, source, log) -> None:
    names = ["water_use", "electricity_use", "enterprises"]
    results: dict[str, object] = {}

    def load(name: str) -> None:
        try:
            results[name] = store.load(name, source / f"{name}.parquet", audit=log.append)
        except Exception as e:  # noqa: BLE001 - reported below
            results[name] = e

    generation = read_manifest(store.dir).generation
    with writer_lock(store.dir):  # every loader builds its file, then waits here
        threads = [threading.Thread(target=load, args=(n,)) for n in names]
        for t in threads:
            t.start()
        wait_for(lambda: len(built_files(store)) == len(names), "all files built")
        assert read_manifest(store.dir).generation == generation  # none committed yet
    for t in threads:
        t.join(120)
    assert all(not isinstance(r, Exception) for r in results.values()), results
    m = read_manifest(store.dir)
    assert m.generation == generation + len(names)  # one after the other, none lost
    assert sorted(m.current) == sorted(["households", "residents", *names])
    assert {v.dataset for v in store.versions() if v.current} == set(m.current)
    assert [e["dataset"] for e in ledger_events(log)][-3:] == [
        v.dataset for v in sorted(store.versions(), key=lambda v: v.loaded_at)][-3:]
    with open_readonly(store.dir) as con:
        for name in names:
            assert con.execute(f"SELECT count(*) FROM {name}").fetchone()[0] == rows(
                source / f"{name}.parquet")


def test_two_first_loads_of_one_dataset_one_wins(store, source, log) -> None:
    results: list[object] = []

    def load() -> None:
        try:
            results.append(store.load("water_use", source / "water_use.parquet",
                                      audit=log.append))
        except DatasetExists as e:
            results.append(e)

    with writer_lock(store.dir):
        threads = [threading.Thread(target=load) for _ in range(2)]
        for t in threads:
            t.start()
        wait_for(lambda: len(built_files(store)) == 2, "both files built")
    for t in threads:
        t.join(120)
    refused = [r for r in results if isinstance(r, DatasetExists)]
    assert len(results) == 2 and len(refused) == 1
    assert "already loaded" in str(refused[0])
    assert len(store.versions("water_use")) == 1
    assert len(list((store.dir / "datasets" / "water_use").iterdir())) == 1
    assert list((store.dir / "incoming").iterdir()) == []


LOADER = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from hub.domain import DomainStore

    domain, name, parquet, events = sys.argv[1:5]
    crash = len(sys.argv) > 5

    def audit(event):
        if crash:
            import os
            os._exit(17)  # dies after the new file is in place, before the manifest
        with open(events, "a") as f:
            f.write(json.dumps(event) + "\\n")

    DomainStore(Path(domain)).load(name, Path(parquet), audit=audit)
""")


def loader(store: DomainStore, name: str, parquet: Path, events: Path,
           crash: bool = False) -> subprocess.Popen:
    args = [sys.executable, "-c", LOADER, str(store.dir), name, str(parquet), str(events)]
    return subprocess.Popen(args + (["crash"] if crash else []), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_loaders_in_processes_wait_for_each_other(store, source, tmp_path) -> None:
    events = tmp_path / "events.jsonl"
    generation = read_manifest(store.dir).generation
    names = ["water_use", "bus_cards"]
    with writer_lock(store.dir):
        procs = [loader(store, n, source / f"{n}.parquet", events) for n in names]
        wait_for(lambda: len(built_files(store)) == 2 or any(p.poll() is not None
                                                              for p in procs),
                 "both processes built their files")
        assert all(p.poll() is None for p in procs)  # both waiting for the lock
        assert read_manifest(store.dir).generation == generation
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0, out.decode()
    m = read_manifest(store.dir)
    assert m.generation == generation + 2
    assert set(names) <= set(m.current)
    recorded = [json.loads(line) for line in events.read_text().splitlines()]
    assert sorted(e["dataset"] for e in recorded) == sorted(names)
    # the ledger order is the commit order
    assert [e["details"]["store"] for e in recorded] == [
        m.current[e["dataset"]].file for e in recorded]


# --- failures ----------------------------------------------------------------------------------


def test_a_refused_ledger_append_changes_nothing(store, source, bigger) -> None:
    before = store_files(store)

    def ledger_down(event: dict) -> None:
        raise RuntimeError("ledger unavailable")

    for name, parquet, replace in [("water_use", source / "water_use.parquet", False),
                                   ("residents", bigger / "residents.parquet", True)]:
        with pytest.raises(RuntimeError, match="ledger unavailable"):
            store.load(name, parquet, audit=ledger_down, replace=replace)
        assert store_files(store) == before  # manifest, data and views files, byte for byte
    assert list((store.dir / "incoming").iterdir()) == []
    with open_readonly(store.dir) as con:
        assert con.execute("SELECT count(*) FROM residents").fetchone()[0] == SCALE


def test_a_crash_before_the_manifest_leaves_the_previous_state(store, source, tmp_path,
                                                               log) -> None:
    manifest = (store.dir / "manifest.json").read_bytes()
    reader = DomainReader(store.dir, memory_limit="256MB", threads=1)
    try:
        with reader.snapshot() as snap:
            state = snap.state
        p = loader(store, "water_use", source / "water_use.parquet", tmp_path / "e.jsonl",
                   crash=True)
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 17, out.decode()
        assert (store.dir / "manifest.json").read_bytes() == manifest
        orphans = list((store.dir / "datasets" / "water_use").iterdir())
        assert len(orphans) == 1  # the crashed load's file, named by no manifest
        assert len(list((store.dir / "incoming").iterdir())) == 1  # its work directory
        with reader.snapshot() as snap:
            assert snap.state == state and "water_use" not in snap.datasets
        assert store.tables() == [t for t in store.tables() if t.name != "water_use"]
        # the next load sweeps what the crash left
        store.load("water_use", source / "water_use.parquet", audit=log.append)
        assert not orphans[0].exists()
        assert list((store.dir / "incoming").iterdir()) == []
        m = read_manifest(store.dir)
        assert sorted(p.name for p in (store.dir / "views").iterdir()) == [
            Path(m.views).name]
        with reader.cursor() as cur:
            assert cur.execute("SELECT count(*) FROM water_use").fetchone()[0] == rows(
                source / "water_use.parquet")
    finally:
        reader.close()


# --- the old single-file layout -----------------------------------------------------------------


OLD_VERSIONS = """CREATE TABLE shuyu_meta.dataset_versions (
    dataset VARCHAR NOT NULL, version VARCHAR NOT NULL, sha256 VARCHAR NOT NULL,
    rows BIGINT NOT NULL, source VARCHAR NOT NULL, acquired_on DATE,
    loaded_at TIMESTAMP NOT NULL, loaded_by VARCHAR NOT NULL, current BOOLEAN NOT NULL)"""


def old_layout(domain: Path, source: Path, bigger: Path) -> list[tuple]:
    """A store as the single-file layout wrote it: residents loaded twice (the first version
    replaced), households once; the version rows it holds."""
    domain.mkdir(mode=0o700, parents=True)
    con = duckdb.connect(str(domain / "domain.duckdb"))
    con.execute("CREATE SCHEMA shuyu_meta")
    con.execute(OLD_VERSIONS)
    versions = [
        ("residents", "v1", "a" * 64, SCALE, "residents.parquet", "2025-01-01",
         "2026-01-01 08:00:00", "os:old", False),
        ("households", "v1", "b" * 64, rows(source / "households.parquet"), "households.parquet",
         None, "2026-01-01 08:00:01", "os:old", True),
        ("residents", "v2", "c" * 64, SCALE + 200, "residents.parquet", "2025-06-30",
         "2026-02-01 09:30:00", "os:old", True),
    ]
    con.executemany("INSERT INTO shuyu_meta.dataset_versions VALUES (?,?,?,?,?,?,?,?,?)",
                    versions)
    con.execute("CREATE TABLE residents AS SELECT * FROM read_parquet(?)",
                [str(bigger / "residents.parquet")])
    con.execute("CREATE TABLE households AS SELECT * FROM read_parquet(?)",
                [str(source / "households.parquet")])
    con.close()
    return versions


def same_rows(con, table: str, parquet: Path) -> bool:
    key = pq.read_schema(parquet).names[0]
    got = con.sql(f"SELECT * FROM {table} ORDER BY {key}").to_arrow_table()
    want = duckdb.sql(f"SELECT * FROM read_parquet('{parquet}') ORDER BY {key}").to_arrow_table()
    return got.equals(want)


def test_an_old_store_is_converted_once_and_keeps_everything(tmp_path, source, bigger,
                                                             log) -> None:
    domain = tmp_path / "var" / "domain"
    old_versions = old_layout(domain, source, bigger)
    store = DomainStore(domain)
    tables = {t.name: t for t in store.tables()}  # the first use converts
    assert not (domain / "domain.duckdb").exists() and not (domain / MIGRATING).exists()
    assert sorted(tables) == ["households", "residents"]
    assert tables["residents"].rows == SCALE + 200
    assert tables["residents"].version.version == "v2"
    history = [(v.dataset, v.version, v.sha256, v.rows, v.source,
                v.acquired_on.isoformat() if v.acquired_on else None,
                v.loaded_at.isoformat(sep=" "), v.loaded_by, v.current)
               for v in store.versions()]
    assert history == old_versions
    with open_readonly(domain) as con:
        assert same_rows(con, "residents", bigger / "residents.parquet")
        assert same_rows(con, "households", source / "households.parquet")
    # converted once: later uses read the manifest; loads work as in any store
    generation = read_manifest(domain).generation
    assert DomainStore(domain).tables() == list(tables.values())
    assert read_manifest(domain).generation == generation
    loaded = store.load("residents", source / "residents.parquet", audit=log.append,
                        replace=True)
    assert [v.version for v in store.versions("residents")] == ["v1", "v2", loaded.version]
    assert [e["details"]["replaces"] for e in ledger_events(log)] == ["v2"]


def test_a_reader_converts_an_old_store_and_an_interrupted_conversion_resumes(
        tmp_path, source, bigger) -> None:
    domain = tmp_path / "domain"
    old_layout(domain, source, bigger)
    # an earlier conversion was interrupted: the old file already renamed, a half-built file
    # in the work area and an orphan in datasets/ from it
    os.rename(domain / "domain.duckdb", domain / MIGRATING)
    (domain / "incoming" / "dead").mkdir(parents=True)
    (domain / "incoming" / "dead" / "residents.duckdb").write_bytes(b"half")
    (domain / "datasets" / "residents").mkdir(parents=True)
    orphan = domain / "datasets" / "residents" / "20260101T000000-deadbeef.duckdb"
    orphan.write_bytes(b"half")
    reader = DomainReader(domain, memory_limit="256MB", threads=1)
    try:
        with reader.cursor() as cur:
            assert cur.execute("SELECT count(*) FROM residents").fetchone()[0] == SCALE + 200
    finally:
        reader.close()
    assert not (domain / MIGRATING).exists() and not orphan.exists()
    assert list((domain / "incoming").iterdir()) == []
    assert [v.version for v in DomainStore(domain).versions("residents")] == ["v1", "v2"]


def test_an_old_store_written_again_after_an_interrupted_conversion_is_refused(
        tmp_path, source, bigger) -> None:
    domain = tmp_path / "domain"
    old_layout(domain, source, bigger)
    (domain / MIGRATING).write_bytes((domain / "domain.duckdb").read_bytes())
    with pytest.raises(Exception, match="keep one of them by hand"):
        DomainStore(domain).tables()
    assert (domain / "domain.duckdb").exists() and (domain / MIGRATING).exists()
    assert not (domain / "manifest.json").exists()
