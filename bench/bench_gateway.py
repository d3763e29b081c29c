"""Gateway overhead: the same aggregate queries run directly in DuckDB and through gateway + client.

For each scale (default 1M and 10M rows of ``residents``), in one run:

1. generate ``households`` and ``residents`` with the synthetic generator (the other datasets are
   not needed and not generated), load them into a fresh domain store with a real ledger, import
   the catalog, and create an operator, an analyst and an authorization (both datasets 重要,
   so aggregate-only, minimum group size 10);
2. start a real JupyterHub (configurable-http-proxy, random loopback ports) that runs the gateway
   as its managed service, and make the analyst's hub API token through the hub's REST API; the
   gateway writes its per-query phase timings to a file (``timings_log``). As with sandboxes,
   the gateway also listens at its port on a second address (``SANDBOX_IP``, a loopback address
   standing in for the sandbox bridge's), and the client calls it there, as a sandbox's does;
3. for every query: time it directly in DuckDB (the store opened read-only with
   ``hub.domain.open_readonly``, 2 threads and 2 GB as the gateway's engine; result fetched as
   Arrow) and through ``shuyu.Client.query(..., as_="arrow")`` (hub identity, policy,
   rewrite, gateway-computed group sizes, execution, paging, sha256, ledger append, pages
   fetched and verified), alternating, ``repeats`` times each; report medians, the ratio and
   the gateway's own phases, and the CPU ratio: CPU per query of the whole gateway path
   (gateway, ledger service, proxy, hub, client) over the direct query's CPU, which a busy
   machine does not distort;
4. time a trivial query ``trivial`` times both ways, in pairs. Per pair, the fixed overhead is
   gateway time − direct time; without the ledger append it is that minus the append's wall
   time as the gateway measured it for that very query. Both are reported as p50/p90/p99; and,
   for comparison, the same overhead through the hub's proxy (``/services/gateway/``, the path
   of a client on the host), ``trivial`` more pairs.

Because the machine may be busy (wall times then include waiting for a core), the trivial loop
also reports CPU time per query: of the gateway process, the ledger service (when the hub runs
it, the gateway's appends are sequenced there), the proxy and the hub (from
``/proc/<pid>/stat``, all their threads), of the client's thread, and of the gateway's request
thread (from the timings file); and the CPU overhead: all of those together minus the direct
query's CPU (the bench process's while DuckDB runs it). CPU time is what the code costs
whatever the load.

It also times a lone ``Log.append`` with the ledger's default group-commit wait and with none,
to show what the batcher's ``batch_max_age`` adds to a single query.

Goals (issue 3): gateway ≤ 1.15× direct for queries over 100 ms; fixed overhead ≤ 5 ms p50.

Run alone: ``python -m bench.bench_gateway [--scales 1000000 10000000] [--repeats 5]
[--trivial 200] [--work DIR] [--ledger-batch-age-ms MS]``; results are printed as JSON and
written to ``bench/results/gateway/``. ``--work DIR`` keeps the generated data in DIR and reuses
it on the next run with the same scale and seed.
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
SANDBOX_IP = "127.0.0.2"  # the gateway's second address, as the sandbox bridge's would be
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


# --- processes: CPU time from /proc -----------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def hub_processes(hub_pid: int) -> dict[str, int]:
    """The hub, its proxy, the gateway and the ledger service (the sequencer the gateway's
    appends go to, when the hub runs it): pid by role (children found through /proc)."""
    found = {"hub": hub_pid}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        if ppid != hub_pid:
            continue
        for role, marker in (("gateway", "hub.gateway"), ("ledger_service", "ledger.service"),
                             ("proxy", "configurable-http-proxy")):
            if marker in cmd:
                found[role] = int(entry.name)
    return found


def read_timings(path: Path) -> dict[str, dict[str, Any]]:
    """The gateway's per-query timings (``timings_log``), by query id."""
    if not path.exists():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    return {t["query_id"]: t for t in map(json.loads, lines)}


# --- timing ---------------------------------------------------------------------------------------


def time_both(client: Any, direct: duckdb.DuckDBPyConnection, sql: str, repeats: int
              ) -> list[dict[str, Any]]:
    """`repeats` pairs (direct, then through gateway + client): wall seconds, client CPU."""
    samples = []
    for _ in range(repeats):
        cpu, t = time.process_time(), time.perf_counter()
        direct.sql(sql).to_arrow_table()
        direct_s, direct_cpu = time.perf_counter() - t, time.process_time() - cpu
        cpu, t = time.thread_time(), time.perf_counter()
        client.query(sql, as_="arrow", progress=False)
        gateway_s = time.perf_counter() - t
        samples.append({"direct": direct_s, "gateway": gateway_s, "direct_cpu": direct_cpu,
                        "client_cpu": time.thread_time() - cpu, "info": client.last_result})
    return samples


def server_phases(samples: list[dict[str, Any]], timings: dict[str, dict[str, Any]]
                  ) -> dict[str, float]:
    """Median of each phase the gateway measured for these queries, in ms."""
    rows = [timings[s["info"].query_id] for s in samples if s["info"].query_id in timings]
    phases = ("policy", "prepare", "engine", "pages", "ledger", "total", "cpu_ms")
    out: dict[str, float] = {p: round(statistics.median(r.get(p, 0.0) for r in rows), 3)
                             for p in phases if rows}
    if rows:
        out["plan_cache_hits"] = sum(1 for r in rows if r.get("cached"))
    return out


def path_cpu_per_query(pids: dict[str, int], before: dict[str, float], n: int,
                       samples: list[dict[str, Any]]) -> dict[str, float]:
    """CPU ms per query of each process on the gateway path (and the client's thread)."""
    cpu = {role: (cpu_seconds(pid) - before[role]) / n * 1e3 for role, pid in pids.items()}
    cpu["client_thread"] = statistics.mean(s["client_cpu"] for s in samples) * 1e3
    return cpu


def query_report(sql: str, samples: list[dict[str, Any]], timings: dict[str, dict[str, Any]],
                 cpu: dict[str, float]) -> dict[str, Any]:
    dm = statistics.median(s["direct"] for s in samples)
    gm = statistics.median(s["gateway"] for s in samples)
    direct_cpu = statistics.mean(s["direct_cpu"] for s in samples) * 1e3
    info = samples[-1]["info"]
    return {
        "sql": sql, "direct_ms": round(dm * 1e3, 1), "gateway_ms": round(gm * 1e3, 1),
        "ratio": round(gm / dm, 3), "rows": info.rows,
        "groups_suppressed": info.groups_suppressed,
        "gateway_phases_ms": server_phases(samples, timings),
        "direct_cpu_ms": round(direct_cpu, 1),
        "path_cpu_ms": {k: round(v, 1) for k, v in cpu.items()},
        "cpu_ratio": round(sum(cpu.values()) / direct_cpu, 3) if direct_cpu else None,
        "goal_applies": dm > 0.1, "meets_goal": gm / dm <= GOAL_RATIO,
    }


def trivial_report(client: Any, direct: duckdb.DuckDBPyConnection, n: int,
                   pids: dict[str, int], timings_path: Path) -> dict[str, Any]:
    """Fixed overhead per query, with and without the ledger append, and CPU per query."""
    before = {role: cpu_seconds(pid) for role, pid in pids.items()}
    wall = time.perf_counter()
    samples = time_both(client, direct, TRIVIAL, n)
    wall = time.perf_counter() - wall
    cpu = path_cpu_per_query(pids, before, n, samples)
    direct_cpu = statistics.mean(s["direct_cpu"] for s in samples) * 1e3
    path_cpu = sum(cpu.values())  # the hub too (asked once per identity-cache period)
    timings = read_timings(timings_path)
    overhead, without_ledger, ledger = [], [], []
    for s in samples:
        t = timings.get(s["info"].query_id)
        overhead.append(s["gateway"] - s["direct"])
        if t is not None:
            ledger.append(t["ledger"] / 1e3)
            without_ledger.append(overhead[-1] - ledger[-1])
    p50 = percentiles(overhead)["p50_ms"]
    return {
        "sql": TRIVIAL, "n": n, "load_avg": os.getloadavg()[0], "wall_s": round(wall, 1),
        "direct": percentiles([s["direct"] for s in samples]),
        "gateway": percentiles([s["gateway"] for s in samples]),
        "overhead": percentiles(overhead),
        "overhead_without_ledger": percentiles(without_ledger) if without_ledger else None,
        "ledger_append_in_gateway": percentiles(ledger) if ledger else None,
        "gateway_phases_ms": server_phases(samples, timings),
        "cpu_ms_per_query": {k: round(v, 3) for k, v in cpu.items()},
        "direct_cpu_ms_per_query": round(direct_cpu, 3),
        "cpu_overhead_ms_per_query": {
            "total": round(path_cpu - direct_cpu, 3),
            "without_ledger_service": round(path_cpu - cpu.get("ledger_service", 0.0)
                                            - direct_cpu, 3),
        },
        "overhead_p50_ms": p50,
        "meets_goal": p50 <= GOAL_OVERHEAD_MS,
    }


def prepared_dir(base: Path, scale: int, seed: int) -> tuple[Path, str, dict[str, float]]:
    """(data directory, authorization id, setup times): generated and built, or reused."""
    marker = base / f"ready-{scale}-{seed}.txt"
    data_dir = base / "data"
    if marker.exists():
        return data_dir, marker.read_text().strip(), {"reused": 1.0}
    started = time.perf_counter()
    generate(base / "source", scale, seed)
    generate_s = time.perf_counter() - started
    auth = build_domain(data_dir, base / "source")
    marker.write_text(auth)
    return data_dir, auth, {"generate_s": round(generate_s, 1),
                            "setup_s": round(time.perf_counter() - started, 1)}


def one_scale(base: Path, scale: int, seed: int, repeats: int, trivial: int,
              ledger_batch_age_ms: float | None = None) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sandbox_image" / "client"))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from shuyu import Client

    from hub.domain import open_readonly
    from tests.gateway.hubprocess import RealHub

    data_dir, auth, setup = prepared_dir(base, scale, seed)
    report: dict[str, Any] = {"scale": scale, "rows": {}, **setup, "queries": {}}
    report["ledger_lone_append"] = ledger_lone_append(data_dir)
    timings_path = base / f"timings-{time.strftime('%Y%m%dT%H%M%S')}.jsonl"
    env = {"SHUYU_GATEWAY_TIMINGS_LOG": str(timings_path), "SHUYU_GATEWAY_SANDBOX_IP": SANDBOX_IP}
    if ledger_batch_age_ms is not None:
        env["SHUYU_LEDGER__BATCH_MAX_AGE_MS"] = str(ledger_batch_age_ms)
    report["gateway_env"] = {k: v for k, v in env.items() if "TIMINGS" not in k}
    hub = RealHub.start(data_dir, env)
    try:
        admin = hub.admin()
        admin.create_user("analyst")
        admin.add_to_group("analysts", "analyst")
        token, _ = admin.create_token("analyst", note="bench")
        admin.close()
        pids = hub_processes(hub.process.pid)
        report["processes"] = sorted(pids)
        direct = open_readonly(data_dir / "domain", memory_limit="2GB", threads=2)
        sandbox_url = f"http://{SANDBOX_IP}:{hub.gateway_port}/services/gateway/"
        with Client(sandbox_url, token, auth) as client, \
                Client(hub.gateway_url, token, auth) as proxied:
            for table in ("residents", "households"):
                report["rows"][table] = direct.sql(
                    f"SELECT count(*) AS n FROM {table}").to_arrow_table().column(0)[0].as_py()
            client.query(TRIVIAL, as_="arrow")  # warm-up: first query, uniqueness checks
            for name, sql in QUERIES.items():
                time_both(client, direct, sql, 1)  # warm caches on both paths
                before = {role: cpu_seconds(pid) for role, pid in pids.items()}
                samples = time_both(client, direct, sql, repeats)
                cpu = path_cpu_per_query(pids, before, repeats, samples)
                report["queries"][name] = query_report(sql, samples,
                                                       read_timings(timings_path), cpu)
            time_both(client, direct, TRIVIAL, 5)
            report["trivial"] = trivial_report(client, direct, trivial, pids, timings_path)
            time_both(proxied, direct, TRIVIAL, 5)
            through_proxy = time_both(proxied, direct, TRIVIAL, trivial)
            report["trivial"]["overhead_through_proxy"] = percentiles(
                [s["gateway"] - s["direct"] for s in through_proxy])
        direct.close()
    finally:
        hub.stop()
    return report


def run(scales: tuple[int, ...] = (1_000_000, 10_000_000), seed: int = 0, repeats: int = 5,
        trivial: int = 200, work: Path | None = None,
        ledger_batch_age_ms: float | None = None) -> dict[str, Any]:
    report = {"benchmark": "gateway", "machine": machine(),
              "goals": {"ratio": GOAL_RATIO, "overhead_p50_ms": GOAL_OVERHEAD_MS}, "runs": []}
    for scale in scales:
        with tempfile.TemporaryDirectory(prefix="shuyu-bench-gateway-") as tmp:
            base = Path(tmp) if work is None else work / f"scale-{scale}-seed-{seed}"
            base.mkdir(parents=True, exist_ok=True)
            saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("SHUYU_")}
            try:
                report["runs"].append(one_scale(base, scale, seed, repeats, trivial,
                                                ledger_batch_age_ms))
            finally:
                os.environ.update(saved)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--trivial", type=int, default=200)
    parser.add_argument("--work", type=Path, default=None,
                        help="keep generated data here and reuse it on later runs")
    parser.add_argument("--ledger-batch-age-ms", type=float, default=None,
                        help="the ledger's batch_max_age for the hub's services (default: "
                        "the shared settings' default)")
    args = parser.parse_args()
    report = run(tuple(args.scales), args.seed, args.repeats, args.trivial, args.work,
                 args.ledger_batch_age_ms)
    text = json.dumps(report, ensure_ascii=False, indent=2)
    print(text)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (results_dir("gateway") / f"gateway-{stamp}.json").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
