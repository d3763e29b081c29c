"""The join's group-size count, four ways, on the gateway benchmark's domain (not a gateway run).

The gateway's ``join_on_identifiers`` query repeats each household once per resident, so its
minimum-group-size count of households must be a distinct count. This times, in one process on
one DuckDB connection (read-only, 2 threads, as the gateway opens it), alternating:

- ``direct``: the analyst's query as written;
- ``distinct_hash``: plus ``COUNT(DISTINCT hash(h.household_id)) FILTER (WHERE … IS NOT NULL)``,
  what ``hub/gateway/aggregation.py`` adds today;
- ``bitstring``: plus ``bit_count(bitstring_agg(h.rowid, 0, N - 1))`` over the dataset's own
  table (its rows are numbered 0..N-1 and the household id is unique in it, so set bits are
  distinct households). Exact like the distinct count, and checked equal here; the gateway's
  exact count when the GROUP BY bounds the groups;
- ``bounded``: plus a second ``count(*)``: with each household in at most M rows (M, the most
  residents of one household, read once: ``bound_fact_ms``), a district of n rows holds at
  least ceil(n / M) households. What the gateway runs when that decides every group; here
  the gateway's own rule checks that it does, keeping the districts the exact count keeps
  (minimum 10).

Run ``python -m bench.bench_join_counts [--work DIR] [--repeats 9]`` after ``bench.bench_gateway``
prepared DIR (default: its default work directory for 1M residents).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from bench.common import machine
from hub.domain.layout import dataset_table
from hub.gateway.aggregation import ExactCountNeeded, GroupRule, suppress

JOIN = ("SELECT h.district, count(*) AS people, avg(h.household_size) AS hs{extra} "
        "FROM residents r JOIN {households} h ON r.household_id = h.household_id "
        "GROUP BY h.district")
MINIMUM = 10  # the benchmark authorization's minimum group size
TABLE = dataset_table("households")  # the view's table in the domain store (it has row numbers)


def run(work: Path, repeats: int = 9) -> dict[str, Any]:
    from hub.domain import open_readonly

    con = open_readonly(work / "data" / "domain", memory_limit="2GB", threads=2)
    try:
        n = con.sql(f"SELECT count(*) FROM {TABLE}").fetchall()[0][0]
        queries = {
            "direct": JOIN.format(extra="", households="households"),
            "distinct_hash": JOIN.format(
                extra=", count(DISTINCT hash(h.household_id)) FILTER "
                      "(WHERE h.household_id IS NOT NULL) AS k", households="households"),
            "bitstring": JOIN.format(
                extra=f", bit_count(bitstring_agg(h.rowid, 0, {n - 1})) AS k", households=TABLE),
            "bounded": JOIN.format(extra=", count(*) AS k", households="households"),
        }
        t = time.perf_counter()
        most = con.sql("SELECT max(n) FROM (SELECT count(*) AS n FROM residents WHERE "
                       "household_id IS NOT NULL GROUP BY household_id)").fetchall()[0][0]
        bound_fact_ms = (time.perf_counter() - t) * 1e3
        counts = {k: sorted((r[0], r[3]) for r in con.sql(q).fetchall())
                  for k, q in queries.items() if k != "direct"}
        times: dict[str, list[float]] = {k: [] for k in queries}
        cpu: dict[str, list[float]] = {k: [] for k in queries}
        for _ in range(repeats):
            for name, sql in queries.items():
                c, t = time.process_time(), time.perf_counter()
                con.sql(sql).fetchall()
                times[name].append(time.perf_counter() - t)
                cpu[name].append(time.process_time() - c)
    finally:
        con.close()
    decides, alike = _bound_decides(counts, most)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    med_cpu = {k: statistics.median(v) * 1e3 for k, v in cpu.items()}
    return {
        "machine": machine(), "households": n, "repeats": repeats,
        "same_counts": counts["distinct_hash"] == counts["bitstring"],
        "most_rows_per_household": most, "bound_fact_ms": round(bound_fact_ms, 1),
        "bound_decides_every_group": decides, "bound_decides_alike": alike,
        "median_ms": {k: round(v, 1) for k, v in med.items()},
        "ratio_to_direct": {k: round(v / med["direct"], 3) for k, v in med.items()},
        "cpu_median_ms": {k: round(v, 1) for k, v in med_cpu.items()},
        "cpu_ratio_to_direct": {k: round(v / med_cpu["direct"], 3) for k, v in med_cpu.items()},
    }


def _bound_decides(counts: dict[str, list], most: int) -> tuple[bool, bool | None]:
    """Whether the gateway's rule (``aggregation.suppress``) decides every district from the
    bounded counts, and if so whether it keeps the districts the exact count keeps."""
    rule = GroupRule("k", "households", MINIMUM, repeats=most)
    batch = pa.RecordBatch.from_pylist([{"district": d, "k": n} for d, n in counts["bounded"]])
    try:
        kept, _ = suppress(batch, [rule])
    except ExactCountNeeded:
        return False, None
    exact = sorted(d for d, n in counts["bitstring"] if n >= MINIMUM)
    return True, sorted(kept.column("district").to_pylist()) == exact


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path,
                        default=Path("/tmp/gwwork/scale-1000000-seed-0"))
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    print(json.dumps(run(args.work, args.repeats), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
