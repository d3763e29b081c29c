"""DP release latency: the lane (calibrate once) against OpenDP's default Context path.

Builds a real data domain (``tests.gateway.world``: synthetic Kunming data, ledger, catalog,
authorizations) at a scale where ``social_insurance`` holds about 1M rows, then times, on the
same machine in the same run:

- the lane's ``release_dp`` of a grouped count + sum (public keys, ε) — the whole path: catalog
  and grant checks, budget check, DuckDB aggregation, OpenDP noise, ``budget.charged`` in the
  ledger, budget row committed. First call (cold: calibration, per-dataset unit statistics,
  DuckDB connection) and warm calls;
- the same with private keys (δ thresholding);
- OpenDP's Context path for the same query on the same bounded data: ``summarize(alpha)``
  (calibration + accuracy) and ``release().collect()`` (calibration again + computation), plus
  the time to hand it the 1M rows as a polars frame.

Goal (issue 5): the lane releases a grouped count + sum on 1M rows in under 0.5 s, against
2–4 s for the Context path. Run alone: ``python -m bench.bench_dp [--scale 330000] [--repeat 10]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.common import machine

GOAL_SECONDS = 0.5
QUERY = {"dataset": "social_insurance", "group_by": ["payment_status"], "epsilon": 0.02,
         "max_rows_per_person": 12,
         "measures": [{"op": "count"}, {"op": "sum", "column": "wage", "bounds": [0, 50000]}]}
PRIVATE_KEYS = {**QUERY, "group_by": ["month"], "delta": 1e-8}


def _timed(fn, repeat: int) -> tuple[list[float], object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def _summary(times: list[float]) -> dict:
    return {"n": len(times), "p50_s": round(statistics.median(times), 4),
            "min_s": round(min(times), 4), "max_s": round(max(times), 4)}


def run(scale: int = 330_000, repeat: int = 10, context_repeat: int = 2) -> dict:
    from tests.gateway.world import build_world
    from tests.release_review.dp_support import checked, open_lane

    from release_review.dp import release_dp
    from release_review.dp.engine import plan
    from release_review.dp.reference import bounded_frame, run_context

    report: dict = {"benchmark": "dp", "machine": machine(), "scale": scale,
                    "goal_seconds": GOAL_SECONDS}
    with tempfile.TemporaryDirectory(prefix="shuyu-bench-dp-") as tmp:
        t0 = time.perf_counter()
        world = build_world(Path(tmp) / "world", scale=scale)
        report["build_world_s"] = round(time.perf_counter() - t0, 1)
        lane = open_lane(world, Path(tmp) / "lane")
        auth = world.authorizations["row"]
        try:
            query = checked(world, QUERY)
            groups, _ = lane.engine.exact_groups(query, plan(query))
            report["rows"] = sum(g.count for g in groups)

            def release(spec=QUERY):
                return release_dp(spec, author="alice", authorization_id=auth, lane=lane.lane)

            cold, first = _timed(release, 1)
            warm, last = _timed(release, repeat)
            compute, computation = _timed(lambda: lane.engine.compute(query), repeat)
            private_cold, _ = _timed(lambda: release(PRIVATE_KEYS), 1)
            private_warm, _ = _timed(lambda: release(PRIVATE_KEYS), repeat)
            report["lane"] = {
                "release_cold_s": round(cold[0], 4),
                "release_warm": _summary(warm),
                "compute_only_warm": _summary(compute),
                "truncation_ran": computation.truncated,
                "private_keys_release_cold_s": round(private_cold[0], 4),
                "private_keys_release_warm": _summary(private_warm),
                "scales_units": [m["scale_units"] for m in last.mechanisms],
                "ledger_index_last": last.ledger_index,
            }
            frame_times, frame = _timed(lambda: bounded_frame(lane.engine, query, plan(query)), 1)
            summarize, release_ctx = [], []
            for _ in range(context_repeat):
                ref = run_context(lane.engine, query, frame=frame)
                summarize.append(ref.seconds_summarize)
                release_ctx.append(ref.seconds_release)
            both = [a + b for a, b in zip(summarize, release_ctx)]
            report["context"] = {
                "load_frame_s": round(frame_times[0], 4),
                "summarize": _summary(summarize), "release_collect": _summary(release_ctx),
                "summarize_plus_release": _summary(both), "scales_units": ref.scales,
            }
            lane_p50 = report["lane"]["release_warm"]["p50_s"]
            report["goal_met"] = lane_p50 < GOAL_SECONDS
            report["speedup_vs_context_release"] = round(
                statistics.median(release_ctx) / lane_p50, 1)
            report["speedup_vs_context_summarize_plus_release"] = round(
                statistics.median(both) / lane_p50, 1)
        finally:
            lane.close()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=330_000,
                        help="residents to generate (330,000 gives ~1M social-insurance rows)")
    parser.add_argument("--repeat", type=int, default=10, help="warm lane releases to time")
    parser.add_argument("--context-repeat", type=int, default=2, help="Context path runs")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.scale, args.repeat, args.context_repeat), ensure_ascii=False,
                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
