"""The domain store: versioned loads recorded in the real ledger, explicit replacement, refusal
of tampered files, rollback when the ledger fails, and the hardened read-only connection.
Loads while readers are open, concurrent loaders, crashes and the conversion of the old layout:
``test_domain_live.py``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from click.testing import CliRunner

from hub.domain import (
    ChecksumMismatch,
    DatasetExists,
    DomainError,
    DomainStore,
    open_readonly,
)
from hub.synthetic.generate import Options, write_dataset_dir
from ledger.entry import decode_entry
from ledger.log import Log, LogConfig, init_log
from shuyu_server.cli import cli

SCALE = 600


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("generated")
    write_dataset_dir(out, Options(SCALE, 3))
    return out


@pytest.fixture
def catalog(source: Path) -> dict:
    return json.loads((source / "catalog.json").read_text(encoding="utf-8"))


def open_test_log(directory: Path) -> Log:
    """A real ledger (SQLite, signing key) in `directory`."""
    config = LogConfig(
        ledger_dir=directory / "ledger", keys_dir=directory / "keys",
        database_url=f"sqlite:///{directory / 'ledger' / 'ledger.db'}", origin="test.local/ledger",
    )
    init_log(config)
    return Log.open(config)


def loaded_store(directory: Path, source: Path, log: Log,
                 names: tuple[str, ...] = ("households", "residents")) -> DomainStore:
    """A domain store in `directory` with `names` loaded from `source`'s Parquet files."""
    store = DomainStore(directory)
    for name in names:
        store.load(name, source / f"{name}.parquet", audit=log.append)
    return store


@pytest.fixture
def log(tmp_path: Path):
    log = open_test_log(tmp_path)
    yield log
    log.close()


def ledger_events(log: Log) -> list[dict]:
    return [decode_entry(data) for _, data, _ in log.store.iter_entries()]


@pytest.fixture
def store(tmp_path: Path) -> DomainStore:
    return DomainStore(tmp_path / "domain")


@pytest.fixture
def loaded(store: DomainStore, source: Path, log: Log) -> DomainStore:
    store.load_catalog_dir(source, audit=log.append)
    return store


def table_rows(store: DomainStore) -> dict[str, int]:
    return {t.name: t.rows for t in store.tables()}


# --- loading -------------------------------------------------------------------------------


def test_load_reports_tables_rows_versions_and_ledger_events(loaded, catalog, log) -> None:
    expected = {d["name"]: d for d in catalog["datasets"]}
    tables = {t.name: t for t in loaded.tables()}
    assert sorted(tables) == sorted(expected)
    for name, t in tables.items():
        assert t.rows == expected[name]["rows"]
        assert t.version.sha256 == expected[name]["sha256"]
        assert t.version.version == expected[name]["version"]
        assert t.version.source == f"{name}.parquet" and t.version.current
    events = [e for e in ledger_events(log) if e["type"] == "dataset.loaded"]
    assert [e["dataset"] for e in events] == [d["name"] for d in catalog["datasets"]]
    assert all(e["details"]["sha256"] == expected[e["dataset"]]["sha256"] for e in events)
    assert all(e["role"] == "authority" and e["details"]["replaces"] is None for e in events)
    assert json.loads((loaded.dir / "catalog.json").read_text(encoding="utf-8")) == catalog
    assert len(loaded.file_sha256()) == 64
    assert loaded.path == loaded.dir / "manifest.json"
    assert sorted(p.name for p in loaded.dir.iterdir()) == [
        ".lock", "catalog.json", "datasets", "incoming", "manifest.json", "views"]
    files = sorted(loaded.dir.glob("datasets/*/*.duckdb"))
    assert [f.parent.name for f in files] == sorted(expected)  # one file per dataset
    assert [f.stem for f in files] == [tables[f.parent.name].version.id for f in files]
    assert [p.name for p in (loaded.dir / "views").iterdir()] == [f"{len(expected)}.duckdb"]
    assert list((loaded.dir / "incoming").iterdir()) == []  # work directories are gone
    assert all(e["details"]["store"] == f"datasets/{e['dataset']}/"
               f"{tables[e['dataset']].version.id}.duckdb" for e in events)
    # raw data readable by its owner only
    for path in [loaded.dir, *loaded.dir.rglob("*")]:
        want = 0o700 if path.is_dir() else 0o600
        assert path.stat().st_mode & 0o777 == want, path


def test_column_types_in_the_store_are_the_catalogs(loaded, catalog) -> None:
    con = open_readonly(loaded.dir)
    for d in catalog["datasets"]:
        described = [(r[0], r[1]) for r in con.execute(f'DESCRIBE "{d["name"]}"').fetchall()]
        assert described == [(c["name"], c["type"]) for c in d["columns"]]
    con.close()


def test_reload_without_replace_is_refused_and_changes_nothing(loaded, source, log) -> None:
    before_versions = loaded.versions()
    before_ledger = log.store.count_entries()
    with pytest.raises(DatasetExists, match="already in the domain store: .*pass --replace"):
        loaded.load_catalog_dir(source, audit=log.append)
    with pytest.raises(DatasetExists, match="dataset residents is already loaded"):
        loaded.load("residents", source / "residents.parquet", audit=log.append)
    assert loaded.versions() == before_versions
    assert log.store.count_entries() == before_ledger


def test_replace_keeps_the_version_history(loaded, source, log, tmp_path) -> None:
    other = tmp_path / "other"
    write_dataset_dir(other, Options(SCALE + 100, 4))
    loaded.load_catalog_dir(other, audit=log.append, replace=True)
    history = loaded.versions("residents")
    assert [v.current for v in history] == [False, True]
    assert history[0].sha256 != history[1].sha256
    assert table_rows(loaded)["residents"] == SCALE + 100
    last = [e for e in ledger_events(log) if e["dataset"] == "residents"][-1]
    assert last["details"]["replaces"] == history[0].version


def test_tampered_file_is_refused_and_nothing_changes(loaded, source, log, tmp_path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    with open(copy / "households.parquet", "ab") as f:
        f.write(b"\0")
    before = loaded.versions()
    with pytest.raises(ChecksumMismatch, match="households.parquet has sha256 .* but the catalog says"):
        loaded.load_catalog_dir(copy, audit=log.append, replace=True)
    assert loaded.versions() == before


def test_ledger_failure_rolls_the_load_back(store, source, log) -> None:
    store.load("households", source / "households.parquet", audit=log.append)

    def broken_ledger(event: dict) -> None:
        raise RuntimeError("ledger unavailable")

    with pytest.raises(RuntimeError, match="ledger unavailable"):
        store.load("residents", source / "residents.parquet", audit=broken_ledger)
    with pytest.raises(RuntimeError, match="ledger unavailable"):
        store.load("households", source / "water_use.parquet", audit=broken_ledger, replace=True)
    assert table_rows(store) == {"households": pq_rows(source / "households.parquet")}
    assert [v.source for v in store.versions()] == ["households.parquet"]


def pq_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def test_columns_differing_from_the_catalog_are_refused(store, source, log) -> None:
    with pytest.raises(DomainError, match="differ from the catalog"):
        store.load("households", source / "households.parquet", audit=log.append,
                   expected_columns=[("household_id", "VARCHAR")])
    assert store.tables() == []


@pytest.mark.parametrize("name", ['x"; DROP TABLE residents; --', "Residents", "shuyu_meta", "1st", ""])
def test_bad_dataset_names_are_refused(store, source, log, name) -> None:
    with pytest.raises(DomainError, match="is not allowed"):
        store.load(name, source / "households.parquet", audit=log.append)


def test_unreadable_sources_are_refused_clearly(store, tmp_path, log) -> None:
    with pytest.raises(DomainError, match="cannot read"):
        store.load("households", tmp_path / "missing.parquet", audit=log.append)
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet at all")
    with pytest.raises(DomainError, match="not a readable Parquet file"):
        store.load("households", junk, audit=log.append)
    (tmp_path / "catalog.json").write_text("{not json")
    with pytest.raises(DomainError, match="is not valid JSON"):
        store.load_catalog_dir(tmp_path, audit=log.append)


# --- the hardened read-only connection --------------------------------------------------


@pytest.fixture(scope="module")
def ro(source: Path, tmp_path_factory: pytest.TempPathFactory):
    """One loaded store for all the read-only tests, opened the way the gateway opens it."""
    base = tmp_path_factory.mktemp("readonly")
    log = open_test_log(base)
    DomainStore(base / "domain").load_catalog_dir(source, audit=log.append)
    log.close()
    con = open_readonly(base / "domain", memory_limit="256MB", threads=1)
    yield con
    con.close()


def test_readonly_connection_reads_with_its_limits(ro) -> None:
    assert ro.execute("SELECT count(*) FROM residents").fetchone()[0] == SCALE
    settings = dict(ro.execute(
        "SELECT name, value FROM duckdb_settings() WHERE name IN ("
        "'enable_external_access', 'autoload_known_extensions', 'autoinstall_known_extensions', "
        "'allow_community_extensions', 'allow_unsigned_extensions', 'allow_persistent_secrets', "
        "'python_enable_replacements', 'lock_configuration', 'threads')").fetchall())
    assert settings == {
        "enable_external_access": "false",
        "autoload_known_extensions": "false", "autoinstall_known_extensions": "false",
        "allow_community_extensions": "false", "allow_unsigned_extensions": "false",
        "allow_persistent_secrets": "false", "python_enable_replacements": "false",
        "lock_configuration": "true", "threads": "1",
    }
    assert ro.execute("SELECT current_setting('memory_limit')").fetchone()[0].startswith("244")
    # every database it reaches is a read-only file of the store: the views (the default)
    # and one per dataset; the in-memory catalog a connection starts with is gone
    attached = ro.execute("SELECT database_name, readonly, path FROM duckdb_databases() "
                          "WHERE NOT internal ORDER BY database_name").fetchall()
    assert [a[0] for a in attached] == sorted(
        ["shuyu_domain"] + [f"shuyu_ds_{t}" for t in ro.snapshot.datasets])
    assert all(readonly and path.endswith(".duckdb") for _, readonly, path in attached)
    assert ro.execute("SELECT current_database()").fetchone()[0] == "shuyu_domain"


DANGEROUS = [
    ("read_csv", "SELECT * FROM read_csv('/etc/passwd')"),
    ("read_csv_auto", "SELECT * FROM read_csv_auto('/etc/hostname')"),
    ("read_parquet", "SELECT * FROM read_parquet('{source}/residents.parquet')"),
    ("read_text", "SELECT * FROM read_text('/etc/passwd')"),
    ("read_blob", "SELECT * FROM read_blob('/etc/passwd')"),
    ("read_json", "SELECT * FROM read_json('{source}/catalog.json')"),
    ("glob", "SELECT * FROM glob('/etc/*')"),
    ("bare file path", "SELECT * FROM '{source}/residents.parquet'"),
    ("copy to file", "COPY residents TO '{tmp}/leak.csv'"),
    ("copy from file", "COPY residents FROM '{source}/residents.parquet'"),
    ("export database", "EXPORT DATABASE '{tmp}/export'"),
    ("attach", "ATTACH '{tmp}/other.duckdb' AS other"),
    ("install", "INSTALL httpfs"),
    ("load", "LOAD httpfs"),
    ("http url", "SELECT * FROM read_csv('http://127.0.0.1:9/x.csv')"),
    ("set", "SET memory_limit = '8GB'"),
    ("set external access", "SET enable_external_access = true"),
    ("unlock", "SET lock_configuration = false"),
    ("reset", "RESET threads"),
    ("pragma", "PRAGMA threads = 2"),
    ("getenv", "SELECT getenv('HOME')"),
    ("create", "CREATE TABLE stolen AS SELECT * FROM residents"),
    ("insert", "INSERT INTO households SELECT * FROM households"),
    ("update", "UPDATE residents SET name = 'x'"),
    ("delete", "DELETE FROM residents"),
    ("drop", "DROP TABLE residents"),
    ("sqlite attach", "ATTACH '{tmp}/x.db' AS x (TYPE sqlite)"),
    ("detach main", "DETACH DATABASE shuyu_domain"),
    # the files of the store cannot be written through the names they are attached under
    ("create in a dataset's file", "CREATE TABLE shuyu_ds_residents.main.stolen AS SELECT 1"),
    ("insert into a dataset's file",
     "INSERT INTO shuyu_ds_households.main.households SELECT * FROM households"),
    ("replace a view", "CREATE OR REPLACE VIEW residents AS SELECT * FROM households"),
    ("drop a view", "DROP VIEW residents"),
    ("create in the views", "CREATE TABLE shuyu_domain.main.stolen AS SELECT 1"),
    ("the old in-memory catalog", "CREATE TABLE memory.main.stolen AS SELECT 1"),
    # other files of the domain directory, and a new file beside a dataset's
    ("read the manifest", "SELECT * FROM read_text('{domain}/manifest.json')"),
    ("read the catalog", "SELECT * FROM read_json('{domain}/catalog.json')"),
    ("list the domain directory", "SELECT * FROM glob('{domain}/*')"),
    ("write beside a dataset", "COPY residents TO '{file}.csv'"),
    ("another store file", "ATTACH '{other}' AS other (READ_ONLY)"),
]
# Not refused here, as before this layout: DuckDB keeps the files it has attached, and its
# temporary directory, readable when it disables external access (its ``allowed_paths`` and
# ``allowed_directories``, which cannot be changed once external access is off). They hold
# only what the plain names already give; the gateway refuses the statements (read_blob,
# ATTACH, COPY, qualified names: tests/gateway/test_hostile_sql.py).


@pytest.fixture(scope="module")
def other_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real DuckDB file that is not part of the store."""
    path = tmp_path_factory.mktemp("other") / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t AS SELECT 42 AS secret")
    con.close()
    return path


@pytest.mark.parametrize("label, sql", DANGEROUS, ids=[d[0] for d in DANGEROUS])
def test_readonly_connection_refuses(ro, source, tmp_path, other_db, label, sql) -> None:
    domain = ro.snapshot.domain_dir
    before = {p: p.stat().st_mtime_ns for p in domain.rglob("*") if p.is_file()}
    with pytest.raises(duckdb.Error):
        ro.execute(sql.format(source=source, tmp=tmp_path, domain=domain,
                              file=next(domain.glob("datasets/residents/*.duckdb")),
                              other=other_db)).fetchall()
    assert list(tmp_path.iterdir()) == []  # nothing written: no leak.csv, export or other.duckdb
    assert {p: p.stat().st_mtime_ns for p in domain.rglob("*") if p.is_file()} == before
    assert ro.execute("SELECT count(*) FROM residents").fetchone()[0] == SCALE
    assert ro.execute("SELECT count(*) FROM main.households").fetchone()[0] > 0


def test_attached_names_reach_only_what_the_plain_names_reach(ro) -> None:
    """A dataset's attachment holds that dataset's table and nothing else (the views file
    holds only views), so the attached names give no data the plain names do not: which
    datasets a caller may read is the gateway's table allow-list, which refuses qualified
    names (``tests/gateway/test_hostile_sql.py`` and ``test_domain_live.py``)."""
    for name in ro.snapshot.datasets:
        tables = ro.execute("SELECT schema_name, table_name FROM duckdb_tables() "
                            "WHERE database_name = ?", [f"shuyu_ds_{name}"]).fetchall()
        assert tables == [("main", name)]
    views = ro.execute("SELECT view_name FROM duckdb_views() WHERE database_name = "
                       "'shuyu_domain' AND NOT internal ORDER BY 1").fetchall()
    assert [v[0] for v in views] == ro.snapshot.datasets
    assert ro.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = "
                      "'shuyu_domain'").fetchone()[0] == 0


def test_readonly_connection_does_not_see_python_variables(ro) -> None:
    planted = pa.table({"secret": [42]})  # noqa: F841 - DuckDB could find it by name
    with pytest.raises(duckdb.CatalogException):
        ro.execute("SELECT * FROM planted").fetchall()


def test_readonly_needs_an_existing_store(tmp_path) -> None:
    with pytest.raises(DomainError, match="no domain store at"):
        open_readonly(tmp_path / "nowhere")
    with pytest.raises(DomainError, match="threads must be at least 1"):
        open_readonly(tmp_path, threads=0)
    (tmp_path / "manifest.json").write_text('{"format": "shuyu-domain/1", "generation": 1}')
    with pytest.raises(DomainError, match="manifest.json is not a valid domain-store manifest"):
        open_readonly(tmp_path)


# --- command line ------------------------------------------------------------------------------


def test_cli_generate_into_the_domain_store_then_refuse_reload(tmp_path) -> None:
    runner = CliRunner()
    data_dir = tmp_path / "var"
    result = runner.invoke(cli, ["data", "generate", "--scale", "300", "--data-dir", str(data_dir)])
    assert result.exit_code == 1 and "shuyu ledger init" in result.output
    assert not (data_dir / "domain" / "manifest.json").exists()

    assert runner.invoke(cli, ["ledger", "init", "--data-dir", str(data_dir)]).exit_code == 0
    result = runner.invoke(cli, ["data", "generate", "--scale", "300", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    assert "loaded into" in result.output
    status = json.loads(runner.invoke(cli, ["data", "status", "--json", "--data-dir", str(data_dir)]).output)
    assert {t["name"]: t["rows"] for t in status["tables"]}["residents"] == 300
    assert len(status["tables"]) == 8 and len(status["sha256"]) == 64
    assert (data_dir / "domain" / "catalog.json").is_file()
    assert [p.name for p in (data_dir / "domain").iterdir() if p.name.startswith(".staging")] == []

    result = runner.invoke(cli, ["data", "generate", "--scale", "400", "--data-dir", str(data_dir)])
    assert result.exit_code == 1 and "pass --replace" in result.output
    again = json.loads(runner.invoke(cli, ["data", "status", "--json", "--data-dir", str(data_dir)]).output)
    assert again["tables"] == status["tables"]

    result = runner.invoke(cli, ["data", "generate", "--scale", "400", "--replace", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    history = json.loads(runner.invoke(
        cli, ["data", "status", "--json", "--history", "--data-dir", str(data_dir)]).output)["history"]
    assert [v["rows"] for v in history if v["dataset"] == "residents"] == [300, 400]


def test_load_goes_ahead_while_a_reader_holds_the_store(loaded, source, log) -> None:
    gateway = open_readonly(loaded.dir)
    try:
        loaded.load("residents", source / "households.parquet", audit=log.append, replace=True)
        # the open connection keeps the state it was opened on
        assert gateway.execute("SELECT count(*) FROM residents").fetchone()[0] == SCALE
    finally:
        gateway.close()
    assert [v.current for v in loaded.versions("residents")] == [False, True]
    fresh = open_readonly(loaded.dir)
    try:
        assert fresh.execute("SELECT count(*) FROM residents").fetchone()[0] == pq_rows(
            source / "households.parquet")
    finally:
        fresh.close()


def test_cli_load_checks_hashes_and_keeps_the_store(tmp_path, source) -> None:
    runner = CliRunner()
    data_dir = tmp_path / "var"
    assert runner.invoke(cli, ["ledger", "init", "--data-dir", str(data_dir)]).exit_code == 0
    result = runner.invoke(cli, ["data", "load", str(source), "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    (copy / "residents.parquet").write_bytes((copy / "households.parquet").read_bytes())
    before = runner.invoke(cli, ["data", "status", "--json", "--data-dir", str(data_dir)]).output
    result = runner.invoke(cli, ["data", "load", str(copy), "--replace", "--data-dir", str(data_dir)])
    assert result.exit_code == 1
    assert "residents.parquet has sha256" in result.output and "nothing was loaded" in result.output
    after = runner.invoke(cli, ["data", "status", "--json", "--data-dir", str(data_dir)]).output
    assert json.loads(after)["tables"] == json.loads(before)["tables"]


def test_a_failure_midway_says_what_was_loaded(store, source, log) -> None:
    calls = []

    def ledger_fails_third_time(event: dict) -> None:
        calls.append(event["dataset"])
        if len(calls) == 3:
            raise RuntimeError("ledger unavailable")
        log.append(event)

    with pytest.raises(RuntimeError, match="ledger unavailable") as info:
        store.load_catalog_dir(source, audit=ledger_fails_third_time)
    assert info.value.__notes__ == [
        ("enterprises and later datasets were not loaded; already loaded in this run: "
         "households, residents")]
    assert sorted(table_rows(store)) == ["households", "residents"]
