"""Hostile SQL, through HTTP: every case is refused before it runs, with a reason that names
what was refused, and each refusal is in the ledger as ``query.denied`` with that reason.

The caller is alice (a real hub user with a hub API token) under an authorization with row-level
enterprises and bus_trips (without ``fare``) and aggregate-only residents (without name,
mobile, address) and social_insurance.
"""

from __future__ import annotations

import pytest

# (sql, expected code, words the reason must contain)
CASES: list[tuple[str, str, str]] = [
    # statements other than one read-only SELECT
    ("COPY enterprises TO '/tmp/out.csv'", "not_read_only", "COPY"),
    ("ATTACH '/tmp/other.duckdb' AS other", "not_read_only", "ATTACH"),
    ("DETACH domain", "not_read_only", "DETACH"),
    ("PRAGMA database_list", "not_read_only", "PRAGMA"),
    ("SET memory_limit = '100GB'", "not_read_only", "SET"),
    ("INSTALL httpfs", "not_read_only", "INSTALL"),
    ("LOAD httpfs", "not_read_only", "LOAD"),
    ("CALL pragma_version()", "not_read_only", "CALL"),
    ("CREATE TABLE copy AS SELECT * FROM enterprises", "not_read_only", "CREATE"),
    ("INSERT INTO enterprises SELECT * FROM enterprises", "not_read_only", "INSERT"),
    ("UPDATE enterprises SET name = 'x'", "not_read_only", "UPDATE"),
    ("DELETE FROM enterprises", "not_read_only", "DELETE"),
    ("DROP TABLE enterprises", "not_read_only", "DROP"),
    ("USE memory", "not_read_only", "USE"),
    ("DESCRIBE enterprises", "not_read_only", "DESCRIBE"),
    ("SHOW TABLES", "not_read_only", "SHOW"),
    ("PIVOT enterprises ON industry USING count(*)", "not_read_only", "PIVOT"),
    ("SELECT 1; SELECT 2", "multiple_statements", "exactly one statement"),
    ("SELECT 1 -- harmless?\n; DROP TABLE enterprises", "multiple_statements", "one statement"),
    ("EXPORT DATABASE '/tmp/dump'", "sql_syntax", "could not be parsed"),
    # files, URLs and table functions
    ("SELECT * FROM read_csv('/etc/passwd')", "table_function", "reads files"),
    ("SELECT * FROM read_parquet('/srv/domain/residents.parquet')", "table_function",
     "reads files"),
    ("SELECT * FROM read_text('/etc/hostname')", "table_function", "reads files"),
    ("SELECT * FROM glob('/*')", "table_function", "reads files"),
    ("SELECT * FROM '/etc/passwd'", "table_function", "file or URL"),
    ("SELECT * FROM 'https://example.com/data.csv'", "table_function", "file or URL"),
    ("SELECT * FROM parquet_scan('x.parquet')", "table_function", "reads files"),
    ("SELECT * FROM query_table('enterprises')", "table_function", "query_table"),
    ("SELECT * FROM generate_series(1, 10)", "table_function", "generate_series"),
    # environment, settings and the server
    ("SELECT getenv('HOME')", "function_not_allowed", "environment"),
    ("SELECT current_setting('threads')", "function_not_allowed", "configuration"),
    ("SELECT getvariable('x')", "function_not_allowed", "getvariable"),
    ("SELECT version()", "function_not_allowed", "version"),
    ("SELECT current_database()", "function_not_allowed", "current_database"),
    ("SELECT query('SELECT 1')", "function_not_allowed", "query"),
    ("SELECT hash(name) FROM enterprises", "function_not_allowed", "hash"),
    ("SELECT COLUMNS('.*') FROM enterprises", "function_not_allowed", "columns"),
    ("SELECT list_transform([1, 2], x -> x + 1)", "function_not_allowed", "transform"),
    # system catalogs and other schemas
    ("SELECT * FROM duckdb_settings()", "table_function", "system catalog"),
    ("SELECT * FROM duckdb_tables()", "table_function", "system catalog"),
    ("SELECT * FROM pragma_table_info('enterprises')", "table_function", "system catalog"),
    ("SELECT * FROM information_schema.tables", "qualified_name", "system catalogs"),
    ("SELECT * FROM pg_catalog.pg_class", "qualified_name", "system catalogs"),
    ("SELECT * FROM shuyu_meta.dataset_versions", "qualified_name", "qualified name"),
    ("SELECT credit_code FROM main.enterprises", "qualified_name", "qualified name"),
    ("SELECT * FROM domain.main.enterprises", "qualified_name", "qualified name"),
    # the names the domain store's files are attached under (hub/domain/reader.py)
    ("SELECT * FROM shuyu_domain.main.enterprises", "qualified_name", "qualified name"),
    ("SELECT credit_code FROM shuyu_ds_enterprises.enterprises", "qualified_name",
     "qualified name"),
    ("SELECT count(*) FROM shuyu_ds_residents.main.residents", "qualified_name",
     "qualified name"),
    ("DETACH shuyu_ds_residents", "not_read_only", "DETACH"),
    ("USE shuyu_ds_enterprises", "not_read_only", "USE"),
    ("SELECT * FROM duckdb_databases()", "table_function", "system catalog"),
    ("SELECT * FROM read_blob('/srv/domain/datasets/residents/x.duckdb')", "table_function",
     "reads files"),
    ("SELECT * FROM sqlite_master", "no_authorization", "sqlite_master"),
    # parameters, reserved names, odd syntax
    ("SELECT $1", "syntax_not_allowed", "query parameter"),
    ("SELECT ?", "syntax_not_allowed", "query parameter"),
    ("SELECT __shuyu_entity FROM residents", "reserved_name", "reserved"),
    ("SELECT count(__shuyu_row) FROM residents", "reserved_name", "reserved"),
    ("SELECT count(*) FROM residents r WHERE r.rowid < 10", "unresolved_column", "rowid"),
    ("SELECT credit_code INTO stolen FROM enterprises", "syntax_not_allowed", "INTO"),
    ("SELECT a.credit_code FROM enterprises a, LATERAL (SELECT 1) l", "syntax_not_allowed",
     "LATERAL"),
    ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r",
     "syntax_not_allowed", "RECURSIVE"),
    ("SELECT credit_code FROM enterprises AT (VERSION => 1)", "syntax_not_allowed",
     "not allowed"),
    # columns outside the authorization, directly or through *, CTEs and subqueries
    ("SELECT * FROM bus_trips", "columns_not_authorized", "fare"),
    ("SELECT fare FROM bus_trips", "columns_not_authorized", "fare"),
    ("WITH t AS (SELECT * FROM bus_trips) SELECT card_id FROM t", "columns_not_authorized",
     "fare"),
    ("SELECT x.fare FROM (SELECT * FROM bus_trips) AS x", "columns_not_authorized", "fare"),
    ("SELECT (SELECT max(fare) FROM bus_trips) AS m", "columns_not_authorized", "fare"),
    ("SELECT card_id FROM bus_trips WHERE fare > 2", "columns_not_authorized", "fare"),
    ("SELECT card_id FROM bus_trips b WHERE EXISTS (SELECT 1 FROM bus_trips c "
     "WHERE c.fare > b.trip_id)", "columns_not_authorized", "fare"),
    ("SELECT bus_trips FROM bus_trips", "unresolved_column", "cannot be selected"),
    ("SELECT t FROM bus_trips AS t WHERE t.trip_id < 5", "unresolved_column", "not a column"),
    ("SELECT e FROM enterprises AS e", "unresolved_column", "cannot be selected"),
    ("SELECT nosuchcolumn FROM enterprises", "unresolved_column", "nosuchcolumn"),
    ("SELECT count(*) FROM residents WHERE name = '张伟'", "columns_not_authorized", "name"),
    ("SELECT count(*) FROM water_use", "no_authorization", "water_use"),
    # aggregate-only data: rows, identifiers, hidden sub-groups, individual values
    ("SELECT resident_id FROM residents", "aggregate_rule", "aggregate"),
    ("SELECT sex FROM residents", "aggregate_rule", "aggregate"),
    ("SELECT resident_id, count(*) FROM residents GROUP BY resident_id", "aggregate_rule",
     "resident_id"),
    ("SELECT count(*) FROM residents WHERE resident_id = '530102199001011234'",
     "aggregate_rule", "resident_id"),
    ("SELECT count(*) FROM residents WHERE birth_date = DATE '1990-01-01'", "aggregate_rule",
     "birth_date"),
    ("SELECT district, sum(CASE WHEN birth_year = 1950 THEN 1 ELSE 0 END) FROM residents "
     "GROUP BY district", "aggregate_rule", "CASE"),
    ("SELECT district, count(*) FILTER (WHERE birth_year = 1950) FROM residents "
     "GROUP BY district", "aggregate_rule", "FILTER"),
    ("SELECT max(birth_year) FROM residents", "aggregate_rule", "MAX"),
    ("SELECT district, median(birth_year) FROM residents GROUP BY district", "aggregate_rule",
     "MEDIAN"),
    ("SELECT district, list(resident_id) FROM residents GROUP BY district",
     "function_not_allowed", "individual values"),
    ("SELECT district, string_agg(ethnicity, ',') FROM residents GROUP BY district",
     "function_not_allowed", "individual values"),
    ("SELECT sum(CAST(resident_id AS BIGINT)) FROM residents", "aggregate_rule",
     "direct identifier"),
    ("SELECT district, count(*) FROM residents GROUP BY ROLLUP (district)",
     "syntax_not_allowed", "ROLLUP"),
    ("SELECT district, count(*) OVER () FROM residents", "aggregate_rule", "window"),
    ("SELECT district FROM residents UNION SELECT district FROM residents", "aggregate_rule",
     "set operations"),
    ("SELECT * FROM (SELECT district, count(*) AS c FROM residents GROUP BY district) AS t",
     "aggregate_rule", "subqueries"),
    ("WITH t AS (SELECT district FROM residents) SELECT count(*) FROM t", "aggregate_rule",
     "CTE"),
    ("SELECT count(*) FROM residents r WHERE r.district IN (SELECT district FROM residents)",
     "aggregate_rule", "subqueries"),
    ("SELECT DISTINCT district FROM residents", "aggregate_rule", "DISTINCT"),
    ("SELECT district, count(*) FROM residents GROUP BY district HAVING max(birth_year) > 2000",
     "aggregate_rule", "MAX"),
    ("SELECT r.district, count(*) FROM residents r, social_insurance s GROUP BY r.district",
     "aggregate_rule", "ON"),
    ("SELECT r.district, count(*) FROM residents r JOIN social_insurance s "
     "ON r.resident_id < s.resident_id GROUP BY r.district", "aggregate_rule", "resident_id"),
    ("SELECT district, count(*) FROM residents USING SAMPLE 10 GROUP BY district",
     "syntax_not_allowed", "not allowed"),
]


def test_the_suite_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert len({sql for sql, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("sql", "code", "words"), CASES, ids=[c[0][:60] for c in CASES])
def test_hostile_sql_is_refused_and_recorded(gateway, ledger, sql: str, code: str,
                                             words: str) -> None:
    r = gateway.query("alice", sql)
    assert r.status_code == 403, r.text
    body = r.json()
    assert body["code"] == code, body
    assert words.lower() in body["reason"].lower(), body["reason"]
    entry = ledger.last("query.denied", sql=sql)
    assert entry["actor"] == "alice" and entry["role"] == "analyst"
    assert entry["details"]["reason"] == body["reason"]
    assert entry["details"]["code"] == code
    assert entry["session"]  # the hub token's id: which sandbox session asked
