"""The analyst client (``import shuyu``) against the gateway run by a real JupyterHub.

The client gets what a sandbox gets: the gateway URL and a hub token, from arguments or from
the environment the spawner sets (``SHUYU_GATEWAY_URL``, ``JUPYTERHUB_API_TOKEN``).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
import shuyu
from shuyu.client import Client

CLIENT_DIR = Path(shuyu.__file__).parent
SERVER_MODULES = ("hub", "ledger", "shuyu_server", "release_review", "duckdb", "sqlglot",
                  "jupyterhub", "sqlalchemy", "fastapi")


@pytest.fixture
def alice(hub, tokens):
    with Client(hub.gateway_url, tokens["alice"]) as client:
        yield client


def test_datasets_and_describe(alice) -> None:
    frame = alice.datasets()
    assert isinstance(frame, pd.DataFrame)
    rows = {r["name"]: r for r in frame.to_dict("records")}
    assert rows["residents"]["grade_label"] == "重要"
    assert rows["residents"]["access_mode"] == "aggregate_only"
    assert rows["enterprises"]["access_mode_label"] == "明细"
    assert isinstance(alice.datasets(as_="polars"), pl.DataFrame)
    d = alice.describe("residents")
    assert d.access_mode == "aggregate_only" and d.min_group_size == 10
    assert "sex" in d.dimensions
    text = str(d)
    assert "aggregate-only" in text and "resident_id" in text and "never returned" in text
    assert set(d.columns_frame()["name"]) >= {"resident_id", "sex", "district"}


def test_query_returns_pandas_polars_or_arrow(alice, direct_counts) -> None:
    sql = "SELECT district, count(*) AS n FROM residents GROUP BY district ORDER BY district"
    df = alice.query(sql)
    assert isinstance(df, pd.DataFrame) and list(df.columns) == ["district", "n"]
    assert dict(zip(df["district"], df["n"])) == direct_counts
    assert alice.query(sql, as_="polars").to_pandas().equals(df)
    table = alice.query(sql, as_="arrow")
    assert isinstance(table, pa.Table) and table.num_rows == len(df)
    info = alice.last_result
    assert info.groups_suppressed == 0 and info.rows == len(df)
    assert info.access_modes == {"residents": "aggregate_only"}


@pytest.fixture
def direct_counts(domain_dir):
    from hub.domain import open_readonly

    con = open_readonly(domain_dir)
    try:
        return dict(con.execute("SELECT district, count(*) FROM residents GROUP BY 1 "
                                "HAVING count(*) >= 10").fetchall())
    finally:
        con.close()


def test_large_results_come_in_pages_with_a_progress_bar(alice, capsys) -> None:
    df = alice.query("SELECT trip_id, card_id, route FROM bus_trips ORDER BY trip_id",
                     progress=True)
    info = alice.last_result
    assert info.pages > 1 and info.truncated and len(df) == info.rows
    assert df["trip_id"].is_monotonic_increasing
    assert df["card_id"].str.startswith("ps_").all()


def test_refusals_carry_the_gateways_reason(alice, hub) -> None:
    with pytest.raises(shuyu.QueryRefused) as refused:
        alice.query("SELECT * FROM read_csv('/etc/passwd')")
    assert refused.value.code == "table_function" and refused.value.status == 403
    assert "reads files" in str(refused.value)
    with pytest.raises(shuyu.QueryRefused, match="outside the scope") as refused:
        alice.query("SELECT fare FROM bus_trips")
    assert refused.value.code == "columns_not_authorized"
    with pytest.raises(shuyu.QueryFailed) as failed:
        alice.query("SELECT count(*) FROM bus_trips a, bus_trips b, bus_trips c")
    assert failed.value.code == "query_timeout"
    with Client(hub.gateway_url, "no-such-token") as stranger:
        with pytest.raises(shuyu.NotAuthenticated):
            stranger.datasets()
    with pytest.raises(shuyu.ShuyuError, match="as_ must be"):
        alice.query("SELECT 1", as_="excel")  # type: ignore[arg-type]


def test_a_result_that_does_not_match_the_ledger_is_not_returned(alice) -> None:
    meta = alice._request("POST", "queries", json={"sql": "SELECT count(*) AS n FROM "
                                                          "enterprises"}).json()
    alice._fetch(meta, progress=False)  # the real hash matches
    meta["result_sha256"] = "0" * 64
    with pytest.raises(shuyu.ResultIntegrityError, match="does not match"):
        alice._fetch(meta, progress=False)


def test_the_environment_configures_the_module_functions(hub, tokens, monkeypatch) -> None:
    monkeypatch.setattr(shuyu, "_default", None)
    monkeypatch.delenv("SHUYU_GATEWAY_URL", raising=False)
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    with pytest.raises(shuyu.ConfigurationError, match="SHUYU_GATEWAY_URL and "
                                                        "JUPYTERHUB_API_TOKEN not set"):
        shuyu.datasets()
    monkeypatch.setenv("SHUYU_GATEWAY_URL", hub.gateway_url)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", tokens["carol"])
    try:
        assert set(shuyu.datasets()["name"]) == {"water_use", "enterprises"}
        df = shuyu.query("SELECT month, count(*) AS n FROM water_use GROUP BY month",
                         as_="polars")
        assert isinstance(df, pl.DataFrame) and df.height > 0
        assert shuyu.last_result().datasets == ["water_use"]
        assert "water_use" in str(shuyu.describe("water_use"))
    finally:
        shuyu.client().close()
        monkeypatch.setattr(shuyu, "_default", None)


def test_the_client_imports_nothing_server_side() -> None:
    for path in CLIENT_DIR.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in SERVER_MODULES, f"{path.name} imports {name}"
    probe = ("import sys, shuyu, shuyu.client, shuyu.progress; "
             f"bad = [m for m in {SERVER_MODULES!r} if m in sys.modules]; "
             "print(','.join(bad)); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, f"importing shuyu loaded {done.stdout.strip()}"
