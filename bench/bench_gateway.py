"""Gateway overhead: the same aggregate queries run directly in DuckDB and through gateway + client.

For each scale (default 1M and 10M rows of ``residents``), in one run:

1. generate ``households`` and ``residents`` with the synthetic generator (the other datasets are
   not needed and not generated), load them into a fresh domain store with a real ledger, import
   the catalog, and create an operator, an analyst and an authorization (both datasets 重要,
   so aggregate-only, minimum group size 10);
2. start a real JupyterHub (configurable-http-proxy, random loopback ports) that runs the gateway
   as its managed service, and make the analyst's hub API token through the hub's REST API;
3. for every query: time it directly in DuckDB (the store opened read-only, result fetched as
   Arrow) and through ``shuyu.Client.query(..., as_="arrow")`` (proxy, hub identity, policy,
   rewrite, gateway-computed group sizes, execution, paging, sha256, ledger append, pages
   fetched and verified), alternating, ``repeats`` times each; report medians and the ratio;
4. time a trivial query ``trivial`` times both ways: the difference of the p50s is the fixed
   overhead per query, including the ledger append.

It also times a lone ``Log.append`` with the ledger's default group-commit wait and with none,
to show what the batcher's ``batch_max_age`` adds to a single query.

Goals (issue 3): gateway ≤ 1.15× direct for queries over 100 ms; fixed overhead ≤ 5 ms p50.

Run alone: ``python -m bench.bench_gateway [--scales 1000000 10000000] [--repeats 5]``; results
are printed as JSON and written to ``bench/results/gateway/``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb

from bench.common import machine, percentiles, results_dir

QUERIES = {
    "district_counts": "SELECT district, count(*) AS n, avg(birth_year) AS mean_birth_year "
                       "FROM residents GROUP BY district",
    "three_dimensions": "SELECT district, sex, education, count(*) AS n FROM residents "
                        "GROUP BY district, sex, education",
    "filtered_rare_groups": "SELECT ethnicity, marital_status, count(*) AS n, "
                            "avg(birth_year) AS y FROM residents WHERE birth_year >= 1960 "
                            "GROUP BY ethnicity, marital_status",
    "join_on_identifiers": "SELECT h.district, count(*) AS people, avg(h.household_size) AS hs "
                           "FROM residents r JOIN households h ON r.household_id = "
                           "h.household_id GROUP BY h.district",
}
TRIVIAL = "SELECT count(*) AS n FROM households WHERE district = '五华区'"
GOAL_RATIO = 1.15
GOAL_OVERHEAD_MS = 5.0


def generate(out: Path, scale: int, seed: int) -> None:
    """Households and residents only, as Parquet plus a catalog.json for them."""
    from hub.synthetic.catalog import DATASETS, catalog_document
    from hub.synthetic.generate import (
        CATALOG_FILE,
        Options,
        generate_tables,
        write_catalog,
        write_parquet,
    )

    options = Options(scale, seed)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for spec, table in generate_tables(options):
        digest = write_parquet(table, out / f"{spec.name}.parquet")
        entries.append(spec.metadata(DATASETS.index(spec), options.as_of, digest,
                                     table.num_rows))
        del table
        if spec.name == "residents":
            break  # the generator is lazy: the other datasets are never built
    write_catalog(out / CATALOG_FILE, catalog_document(options.generator_json(), entries))


def build_domain(data_dir: Path, source: Path) -> str:
    """Ledger, domain store, catalog and one authorization; returns the authorization id."""
    from hub.catalog.agreements import ScopeRequest
    from hub.catalog.enums import AccessMode, Role
    from hub.catalog.events import Actor
    from hub.catalog.importer import import_catalog, load_catalog_file
    from hub.catalog.service import CatalogService
    from hub.catalog.storage import SqlAlchemyCatalogStore
    from hub.domain import DomainStore
    from ledger.cli import log_config
    from ledger.log import Log, init_log
    from shuyu_server.settings import load_settings

    settings = load_settings(data_dir=data_dir)
    init_log(log_config(settings))
    log = Log.open(log_config(settings))
    try:
        DomainStore(settings.domain_dir).load_catalog_dir(source, audit=log.append)
        store = SqlAlchemyCatalogStore(settings.control_database_url, log)
        store.create()
        service = CatalogService(store)
        authority = Actor("bench.authority", Role.AUTHORITY, "bench")
        import_catalog(service, authority, load_catalog_file(source / "catalog.json"))
        service.create_operator(authority, "基准测试运营公司", None, "安全负责人")
        service.add_analyst(authority, "analyst", "基准测试运营公司", "Analyst")
        now = service.now()
        auth = service.create_authorization(
            authority, operator="基准测试运营公司", analysts=["analyst"],
            scope=[ScopeRequest("residents", None, AccessMode.AGGREGATE_ONLY),
                   ScopeRequest("households", None, AccessMode.AGGREGATE_ONLY)],
            scenario="基准测试", use_class="public_governance",
            starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=30),
        )
        return auth.id
    finally:
        log.close()


def ledger_lone_append(data_dir: Path, samples: int = 50) -> dict[str, Any]:
    """p50 of one append with nothing else in flight: default batch wait vs none."""
    from ledger.cli import log_config
    from ledger.log import Log
    from shuyu_server.settings import load_settings

    settings = load_settings(data_dir=data_dir)
    out = {}
    for label, age_ms in (("default", settings.ledger.batch_max_age_ms), ("no_wait", 0.0)):
        config = log_config(settings)
        config = type(config)(**{**config.__dict__, "batch_max_age": age_ms / 1000})
        log = Log.open(config)
        try:
            log.append({"type": "bench.warmup", "actor": "bench"})
            times = []
            for i in range(samples):
                t = time.perf_counter()
                log.append({"type": "bench.lone_append", "actor": "bench", "details": {"i": i}})
                times.append(time.perf_counter() - t)
        finally:
            log.close()
        out[label] = {"batch_max_age_ms": age_ms, **percentiles(times)}
    return out


def time_both(client: Any, direct: duckdb.DuckDBPyConnection, sql: str, repeats: int
              ) -> tuple[list[float], list[float], Any]:
    gateway_s, direct_s = [], []
    info = None
    for _ in range(repeats):
        t = time.perf_counter()
        direct.sql(sql).to_arrow_table()
        direct_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        client.query(sql, as_="arrow", progress=False)
        gateway_s.append(time.perf_counter() - t)
        info = client.last_result
    return direct_s, gateway_s, info


def one_scale(base: Path, scale: int, seed: int, repeats: int, trivial: int) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from shuyu import Client

    from tests.gateway.hubprocess import RealHub

    started = time.perf_counter()
    generate(base / "source", scale, seed)
    generate_s = time.perf_counter() - started
    data_dir = base / "data"
    auth = build_domain(data_dir, base / "source")
    setup_s = time.perf_counter() - started
    report: dict[str, Any] = {"scale": scale, "rows": {}, "setup_s": round(setup_s, 1),
                              "generate_s": round(generate_s, 1), "queries": {}}
    report["ledger_lone_append"] = ledger_lone_append(data_dir)
    hub = RealHub.start(data_dir)
    try:
        admin = hub.admin()
        admin.create_user("analyst")
        admin.add_to_group("analysts", "analyst")
        token, _ = admin.create_token("analyst", note="bench")
        admin.close()
        direct = duckdb.connect(str(data_dir / "domain" / "domain.duckdb"), read_only=True,
                                config={"threads": 2})
        with Client(hub.gateway_url, token, auth) as client:
            for table in ("residents", "households"):
                report["rows"][table] = direct.sql(
                    f"SELECT count(*) AS n FROM {table}").to_arrow_table().column(0)[0].as_py()
            client.query(TRIVIAL, as_="arrow")  # warm-up: first query, uniqueness checks
            for name, sql in QUERIES.items():
                time_both(client, direct, sql, 1)  # warm caches on both paths
                d, g, info = time_both(client, direct, sql, repeats)
                dm, gm = statistics.median(d), statistics.median(g)
                report["queries"][name] = {
                    "sql": sql, "direct_ms": round(dm * 1e3, 1), "gateway_ms": round(gm * 1e3, 1),
                    "ratio": round(gm / dm, 3), "rows": info.rows,
                    "groups_suppressed": info.groups_suppressed,
                    "gateway_internal_ms": info.duration_ms,
                    "goal_applies": dm > 0.1, "meets_goal": gm / dm <= GOAL_RATIO,
                }
            d, g, _ = time_both(client, direct, TRIVIAL, trivial)
            dp, gp = percentiles(d), percentiles(g)
            report["trivial"] = {
                "sql": TRIVIAL, "direct": dp, "gateway": gp,
                "overhead_p50_ms": round(gp["p50_ms"] - dp["p50_ms"], 3),
                "meets_goal": gp["p50_ms"] - dp["p50_ms"] <= GOAL_OVERHEAD_MS,
            }
        direct.close()
    finally:
        hub.stop()
    return report


def run(scales: tuple[int, ...] = (1_000_000, 10_000_000), seed: int = 0, repeats: int = 5,
        trivial: int = 200) -> dict[str, Any]:
    report = {"benchmark": "gateway", "machine": machine(),
              "goals": {"ratio": GOAL_RATIO, "overhead_p50_ms": GOAL_OVERHEAD_MS}, "runs": []}
    for scale in scales:
        with tempfile.TemporaryDirectory(prefix="shuyu-bench-gateway-") as tmp:
            saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("SHUYU_")}
            try:
                report["runs"].append(one_scale(Path(tmp), scale, seed, repeats, trivial))
            finally:
                os.environ.update(saved)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--trivial", type=int, default=200)
    args = parser.parse_args()
    report = run(tuple(args.scales), args.seed, args.repeats, args.trivial)
    text = json.dumps(report, ensure_ascii=False, indent=2)
    print(text)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (results_dir("gateway") / f"gateway-{stamp}.json").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
