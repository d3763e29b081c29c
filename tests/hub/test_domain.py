"""The domain store: versioned loads recorded in the real ledger, explicit replacement, refusal
of tampered files, rollback when the ledger fails, and the hardened read-only connection."""

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
    assert loaded.dir.stat().st_mode & 0o777 == 0o700
    assert loaded.path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in loaded.dir.iterdir()) == ["catalog.json", "domain.duckdb"]


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
        "SELECT name, value FROM duckdb_settings() WHERE name IN ('access_mode', "
        "'enable_external_access', 'autoload_known_extensions', 'autoinstall_known_extensions', "
        "'lock_configuration', 'threads')").fetchall())
    assert settings == {
        "access_mode": "read_only", "enable_external_access": "false",
        "autoload_known_extensions": "false", "autoinstall_known_extensions": "false",
        "lock_configuration": "true", "threads": "1",
    }
    assert ro.execute("SELECT current_setting('memory_limit')").fetchone()[0].startswith("244")


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
    ("detach main", "DETACH DATABASE domain"),
]


@pytest.mark.parametrize("label, sql", DANGEROUS, ids=[d[0] for d in DANGEROUS])
def test_readonly_connection_refuses(ro, source, tmp_path, label, sql) -> None:
    with pytest.raises(duckdb.Error):
        ro.execute(sql.format(source=source, tmp=tmp_path)).fetchall()
    assert list(tmp_path.iterdir()) == []  # nothing written: no leak.csv, export or other.duckdb
    assert ro.execute("SELECT count(*) FROM residents").fetchone()[0] == SCALE


def test_readonly_connection_does_not_see_python_variables(ro) -> None:
    planted = pa.table({"secret": [42]})  # noqa: F841 - DuckDB could find it by name
    with pytest.raises(duckdb.CatalogException):
        ro.execute("SELECT * FROM planted").fetchall()


def test_readonly_needs_an_existing_store(tmp_path) -> None:
    with pytest.raises(DomainError, match="no domain store at"):
        open_readonly(tmp_path / "nowhere")
    DomainStore(tmp_path).path.write_bytes(b"")
    with pytest.raises(DomainError, match="threads must be at least 1"):
        open_readonly(tmp_path, threads=0)


# --- command line ------------------------------------------------------------------------------


def test_cli_generate_into_the_domain_store_then_refuse_reload(tmp_path) -> None:
    runner = CliRunner()
    data_dir = tmp_path / "var"
    result = runner.invoke(cli, ["data", "generate", "--scale", "300", "--data-dir", str(data_dir)])
    assert result.exit_code == 1 and "shuyu ledger init" in result.output
    assert not (data_dir / "domain" / "domain.duckdb").exists()

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


def test_load_is_refused_while_the_gateway_holds_the_store(loaded, source, log) -> None:
    gateway = open_readonly(loaded.dir)
    try:
        with pytest.raises(DomainError, match="cannot open the domain store .* for writing"):
            loaded.load("residents", source / "residents.parquet", audit=log.append, replace=True)
    finally:
        gateway.close()
    assert [v.current for v in loaded.versions("residents")] == [True]


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
