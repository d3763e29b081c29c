"""The engine's cursors are kept with their snapshot, each with the statements it has bound.

A query binds its SQL once per cursor and runs the bound relation again on later requests; these
tests show that this changes no answer: the same text on a new state reads the new state, a
result cut at the row limit or a failed query leaves nothing half-done for the next query, an
interrupted cursor is never reused, concurrent queries each get a cursor of their own, and the
kept cursors close with their snapshot. Everything runs on a real domain store in DuckDB.
"""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hub.domain import DomainStore
from hub.gateway import engine as engine_module
from hub.gateway.engine import Engine
from hub.gateway.exceptions import QueryFailed, QueryTimeout
from hub.synthetic.generate import Options, write_dataset_dir
from tests.hub.test_domain import loaded_store, open_test_log

COUNT = "SELECT count(*) AS n FROM households"
SLOW = ("SELECT count(*) AS n FROM residents a, residents b, residents c, residents d "
        "WHERE a.birth_year + b.birth_year > c.birth_year + d.birth_year")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("generated")
    write_dataset_dir(out, Options(600, 5))
    return out


@pytest.fixture
def log(tmp_path: Path):
    log = open_test_log(tmp_path)
    yield log
    log.close()


@pytest.fixture
def store(tmp_path: Path, source: Path, log) -> DomainStore:
    return loaded_store(tmp_path / "domain", source, log)


@pytest.fixture
def engine(store: DomainStore):
    engine = Engine(store.dir, memory_limit="256MB", threads=1, timeout=60)
    yield engine
    engine.close()


def run(engine: Engine, sql: str, max_rows: int = 100_000, snapshot=None) -> pa.Table:
    return engine.execute(sql, None, max_rows=max_rows, max_bytes=1 << 26,
                          snapshot=snapshot).table


def test_a_statement_is_bound_once_per_cursor_and_runs_again(engine, source) -> None:
    households = pq.read_metadata(source / "households.parquet").num_rows
    with engine.snapshot() as snap:
        assert run(engine, COUNT, snapshot=snap).column(0)[0].as_py() == households
        [session] = snap._idle
        bound = session._bound[COUNT]
        assert run(engine, COUNT, snapshot=snap).column(0)[0].as_py() == households
        assert snap._idle == [session] and session._bound[COUNT] is bound


def test_the_same_text_after_a_load_reads_the_new_state(engine, store, source, log,
                                                        tmp_path) -> None:
    households = pq.read_table(source / "households.parquet")
    assert run(engine, COUNT).column(0)[0].as_py() == households.num_rows
    more = tmp_path / "households.parquet"
    pq.write_table(pa.concat_tables([households, households.slice(0, 7)]), more)
    with engine.snapshot() as old:
        kept = list(old._idle)
        store.load("households", more, audit=log.append, replace=True)
        assert run(engine, COUNT).column(0)[0].as_py() == households.num_rows + 7
        assert run(engine, COUNT, snapshot=old).column(0)[0].as_py() == households.num_rows
    # the old state's kept cursors were closed with it
    assert kept
    for session in kept:
        with pytest.raises(duckdb.Error):
            session.cursor.execute("SELECT 1")


def test_a_result_cut_at_the_row_limit_leaves_the_cursor_clean(engine) -> None:
    sql = "SELECT household_id FROM households ORDER BY household_id"
    with engine.snapshot() as snap:
        first = engine.execute(sql, None, max_rows=5, max_bytes=1 << 26, snapshot=snap)
        assert first.truncated and first.table.num_rows == 5
        assert len(snap._idle) == 1
        again = engine.execute(sql, None, max_rows=5, max_bytes=1 << 26, snapshot=snap)
        assert again.table.equals(first.table)
        whole = run(engine, sql, snapshot=snap)
        assert whole.num_rows > 5 and whole.slice(0, 5).equals(first.table)
        assert len(snap._idle) == 1


def test_a_failed_query_does_not_leave_its_cursor_behind(engine) -> None:
    with engine.snapshot() as snap:
        run(engine, COUNT, snapshot=snap)
        [session] = snap._idle
        with pytest.raises(QueryFailed):
            run(engine, "SELECT CAST(district AS INTEGER) AS x FROM households", snapshot=snap)
        assert snap._idle == []
        with pytest.raises(duckdb.Error):
            session.cursor.execute("SELECT 1")  # closed, not parked
        assert run(engine, COUNT, snapshot=snap).num_rows == 1


def test_an_interrupted_cursor_is_never_reused(store) -> None:
    engine = Engine(store.dir, memory_limit="256MB", threads=1, timeout=0.3)
    try:
        with engine.snapshot() as snap:
            run(engine, COUNT, snapshot=snap)
            [session] = snap._idle
            with pytest.raises(QueryTimeout):
                run(engine, SLOW, snapshot=snap)
            assert snap._idle == []
            with pytest.raises(duckdb.Error):
                session.cursor.execute("SELECT 1")
            assert run(engine, COUNT, snapshot=snap).num_rows == 1
    finally:
        engine.close()


def test_concurrent_queries_each_get_a_cursor_and_their_own_answer(engine) -> None:
    queries = {f"SELECT count(*) AS n FROM residents WHERE birth_year >= {y}": None
               for y in range(1940, 2010, 5)}
    want = {sql: run(engine, sql).column(0)[0].as_py() for sql in queries}
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def worker(offset: int) -> None:
        try:
            barrier.wait()
            for i in range(40):
                sql = list(want)[(i + offset) % len(want)]
                assert run(engine, sql).column(0)[0].as_py() == want[sql]
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    with engine.snapshot() as snap:
        assert 1 <= len(snap._idle) <= engine_module.IDLE_SESSIONS


def test_a_cursor_keeps_a_bounded_number_of_statements(engine, monkeypatch) -> None:
    monkeypatch.setattr(engine_module, "SESSION_STATEMENTS", 3)
    with engine.snapshot() as snap:
        texts = [f"SELECT {k} AS k, count(*) AS n FROM households" for k in range(5)]
        for sql in texts:
            assert run(engine, sql, snapshot=snap).column(0)[0].as_py() == int(sql.split()[1])
        [session] = snap._idle
        assert list(session._bound) == texts[-3:]
