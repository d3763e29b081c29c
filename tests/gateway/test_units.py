"""Unit tests of the gateway's parts, called directly (the HTTP tests cover the whole path):
policy planning, pseudonyms, the engine's own hardening, pages and hashes, configuration."""

from __future__ import annotations

import hashlib
import hmac

import duckdb
import pyarrow as pa
import pytest

from hub.gateway import aggregation, policy
from hub.gateway.config import ConfigError, load_gateway_config
from hub.gateway.engine import Engine
from hub.gateway.exceptions import QueryFailed, QueryRefused, ResultNotFound
from hub.gateway.pseudonyms import PseudonymKeys, hmac_pads, pseudonym, pseudonym_sql
from hub.gateway.results import ResultStore, paginate, result_sha256
from hub.gateway.service import _UserCatalog


@pytest.fixture(scope="module")
def catalog(world):
    service, log = world.open_catalog()
    yield _UserCatalog(service, "alice", service.now())
    service.close()
    log.close()


def test_plan_names_datasets_columns_and_outputs(catalog) -> None:
    plan = policy.plan_query(
        "SELECT e.industry, count(*), avg(e.employees) FROM enterprises AS e "
        "GROUP BY 1 ORDER BY 2 DESC", catalog)
    assert plan.datasets == ("enterprises",) and not plan.aggregate
    assert plan.columns == {"enterprises": ("industry", "employees")}
    assert policy.Plan is type(plan)
    select = plan.tree
    assert select.named_selects == ["industry", "count(*)", "avg(employees)"]
    assert '"count(*)" DESC' in select.sql(dialect="duckdb")


def test_plan_of_an_aggregate_query_and_its_group_counts(catalog) -> None:
    plan = policy.plan_query("SELECT r.sex, count(*) FROM residents r JOIN social_insurance s "
                             "ON r.resident_id = s.resident_id GROUP BY r.sex", catalog)
    assert plan.aggregate and plan.datasets == ("residents", "social_insurance")
    rules, numbered = aggregation.add_group_counts(plan, lambda d, c: (d, c) == ("residents",
                                                                                "resident_id"))
    assert numbered == set()  # no data sizes given: no bitmaps
    assert [(r.dataset, r.minimum) for r in rules] == [("residents", 10),
                                                       ("social_insurance", 10)]
    assert plan.tree.sql(dialect="duckdb").upper().count("COUNT(DISTINCT HASH") == 2
    single = policy.plan_query("SELECT sex, count(*) FROM residents GROUP BY sex", catalog)
    aggregation.add_group_counts(single, lambda d, c: True)
    assert "COUNT(DISTINCT" not in single.tree.sql(dialect="duckdb").upper()


@pytest.mark.parametrize("sql", ["", "   ", "SELECT 1 FROM", "SELECT " + "1," * 9000 + "1"])
def test_bad_input_is_refused_with_a_reason(catalog, sql: str) -> None:
    with pytest.raises(QueryRefused) as refused:
        policy.plan_query(sql, catalog)
    assert refused.value.code == "sql_syntax" and refused.value.message


def test_suppress_removes_small_groups_and_the_count_columns() -> None:
    batch = pa.RecordBatch.from_pydict({"g": ["a", "b", "c"], "__shuyu_n0": [3, 10, None],
                                        "__shuyu_n1": [50, 50, 50]})
    rules = [aggregation.GroupRule("__shuyu_n0", "x", 10),
             aggregation.GroupRule("__shuyu_n1", "y", 20)]
    kept, removed = aggregation.suppress(batch, rules)
    assert kept.to_pydict() == {"g": ["b"]} and removed == 2


@pytest.mark.parametrize("counts, decided", [
    ([9, 31, 100], True),  # 9 < 10: out; 31 > (10 - 1) x 3: at least 11 entities, in
    ([28, 3], True),       # 28 rows: at least 10 entities
    ([27], False),         # 27 rows (9 x 3): maybe only 9 entities
    ([10], False),         # 10 rows of at most 3 each: 4 to 10 entities
    ([5, 100, 11], False),
])
def test_a_bounded_count_decides_a_group_or_asks_for_the_exact_one(counts, decided) -> None:
    """With each entity in at most 3 rows, n rows hold ceil(n / 3) to n entities."""
    batch = pa.RecordBatch.from_pydict({"g": list(range(len(counts))), "__shuyu_n0": counts})
    rules = [aggregation.GroupRule("__shuyu_n0", "households", 10, repeats=3)]
    if not decided:
        with pytest.raises(aggregation.ExactCountNeeded):
            aggregation.suppress(batch, rules)
        return
    kept, removed = aggregation.suppress(batch, rules)
    assert kept.column("g").to_pylist() == [i for i, n in enumerate(counts) if n >= 10]
    assert removed == sum(n < 10 for n in counts)


def test_pseudonyms_are_hmac_sha256_in_sql_and_python(tmp_path) -> None:
    keys = PseudonymKeys(tmp_path / "keys")
    key = keys.key_for("auth-0123456789")
    assert keys.key_for("auth-0123456789") == key and len(key) == 32
    assert oct((tmp_path / "keys" / "auth-0123456789.key").stat().st_mode & 0o777) == "0o600"
    value = "530102199001011234"
    want = "ps_" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]
    assert pseudonym(key, value) == want
    con = duckdb.connect()
    got = con.execute(f"SELECT {pseudonym_sql('v')} FROM (VALUES ($3), (NULL)) t(v)",
                      [*hmac_pads(key), value]).fetchall()
    assert sorted(got, key=str) == sorted([(want,), (None,)], key=str)
    with pytest.raises(Exception, match="not an authorization id"):
        keys.key_for("../../etc/passwd")


def test_the_engine_itself_refuses_files_settings_and_attach(world) -> None:
    """Defence in depth: even SQL the policy would refuse cannot reach outside the store."""
    engine = Engine(world.settings.domain_dir, timeout=10)
    try:
        for sql, words in [("SELECT * FROM read_csv('/etc/passwd')", "disabled"),
                           ("SET memory_limit = '64GB'", "locked"),
                           ("ATTACH '/tmp/x.duckdb' AS x", "disabled"),
                           ("COPY (SELECT 1) TO '/tmp/x.csv'", "disabled"),
                           ("INSTALL httpfs", "disabled"),
                           ("CREATE TABLE x AS SELECT 1", "read-only")]:
            with pytest.raises(QueryFailed) as failed:
                engine.execute(sql, None, max_rows=10, max_bytes=1 << 20)
            assert words in str(failed.value).lower(), (sql, str(failed.value))
        assert engine.entity_unique("residents", "resident_id") is True
        assert engine.entity_unique("social_insurance", "resident_id") is False
    finally:
        engine.close()


def test_pages_hash_and_belong_to_their_owner() -> None:
    table = pa.table({"x": list(range(10_000)), "y": ["v"] * 10_000})
    pages = paginate(table, 16 * 1024)
    assert len(pages) > 1
    assert pa.concat_tables(pa.ipc.open_stream(p).read_all() for p in pages).equals(table)
    assert result_sha256(pages) == hashlib.sha256(b"".join(pages)).hexdigest()
    empty = paginate(table.slice(0, 0), 1024)
    assert len(empty) == 1 and pa.ipc.open_stream(empty[0]).read_all().num_rows == 0
    store = ResultStore(ttl=60, max_bytes=1 << 30)
    store.put("q1", "alice", pages)
    assert store.page("q1", "alice", 0) == pages[0]
    with pytest.raises(ResultNotFound):
        store.page("q1", "bob", 0)
    expired = ResultStore(ttl=0.000001, max_bytes=1 << 30)
    expired.put("q2", "alice", pages)
    with pytest.raises(ResultNotFound):
        expired.page("q2", "alice", 0)


def test_configuration_is_validated(monkeypatch) -> None:
    monkeypatch.delenv("JUPYTERHUB_API_URL", raising=False)
    with pytest.raises(ConfigError, match="hub_api_url is not set"):
        load_gateway_config()
    with pytest.raises(ConfigError, match="memory_limit"):
        load_gateway_config(hub_api_url="http://127.0.0.1:8081/hub/api", memory_limit="lots")
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api/")
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/services/gateway")
    config = load_gateway_config()
    assert config.hub_api_url == "http://127.0.0.1:8081/hub/api"
    assert config.service_prefix == "/services/gateway/"
