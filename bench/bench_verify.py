"""`shuyu ledger verify` over a 1M-entry log (goal: under 5 s on the 2-core machine).

The log is built once with the real append path (`Log.commit_local`: one transaction, stored
hashes, a signed checkpoint and the guard per batch) in batches of 256 entries, the default batch
size, so it holds one signed checkpoint per 256 entries as a busy log would; verify checks every
one of them. It is cached under `bench/results/verify-<n>/` (gitignored), so reruns only measure.

Measured: the whole verification of the database (`verify --data-dir`: every entry re-hashed,
every stored hash compared, every checkpoint's signature and root) with one process and with one
worker per core, then an export to tlog-tiles and `verify --from` over it. Wall-clock seconds,
best of `repeat` runs; the machine is shared, so the load average is reported beside them.

Run alone: `python -m bench.bench_verify [--entries 1000000] [--repeat 3]`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ORIGIN = "bench.shuyu.local/ledger"
BATCH = 256

_TEMPLATE = (
    '{"actor":"analyst-%d","at":"2026-01-01T%02d:%02d:%02d.%03dZ","details":{"dataset":"ds-%d",'
    '"n":%d,"sql_sha256":"%s"},"role":"analyst","session":"s-%d","type":"query","v":1}'
)


def synthetic_entry(i: int):  # type: ignore[no-untyped-def]
    """Entry i: canonical JSON bytes (keys in RFC 8785 order, ASCII) and its filter columns."""
    from ledger.sqlstore import EntryMeta

    at = (i // 3_600_000 % 24, i // 60_000 % 60, i // 1000 % 60, i % 1000)
    digest = hashlib.sha256(i.to_bytes(8, "big")).hexdigest()
    data = (_TEMPLATE % (i % 97, *at, i % 13, i, digest, i // 1000)).encode()
    return data, EntryMeta("query", "2026-01-01T%02d:%02d:%02d.%03dZ" % at, f"analyst-{i % 97}")


def config(n: int):  # type: ignore[no-untyped-def]
    from ledger.log import LogConfig

    base = RESULTS / f"verify-{n}"
    return LogConfig(
        ledger_dir=base / "ledger",
        keys_dir=base / "keys",
        database_url=f"sqlite:///{base / 'ledger' / 'ledger.db'}",
        origin=ORIGIN,
        batch_max_size=BATCH,
    )


def build(n: int) -> float | None:
    """Build (or complete) the cached log of n entries; return the build rate if it built."""
    import rfc8785

    from ledger.log import Log, init_log

    for i in (0, 1, n // 2, n - 1):
        data, _ = synthetic_entry(i)
        assert rfc8785.dumps(json.loads(data)) == data, "synthetic entries must be canonical"
    cfg = config(n)
    init_log(cfg)
    log = Log.open(cfg)
    try:
        size = log.store.head().size
        if size >= n:
            return None
        started, first = time.perf_counter(), size
        while size < n:
            rows = [synthetic_entry(i) for i in range(size, min(n, size + BATCH))]
            assert log.commit_local(rows) == size
            size += len(rows)
            if size % (BATCH * 400) == 0:
                print(f"  built {size:,}/{n:,}", file=sys.stderr)
        return (size - first) / (time.perf_counter() - started)
    finally:
        log.close()


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (the verify workers)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(fn, repeat: int) -> tuple[list[float], list[float], object]:  # type: ignore[no-untyped-def]
    """Wall-clock and CPU seconds of each run (CPU time does not grow with others' load)."""
    times, cpu, result = [], [], None
    for _ in range(repeat):
        c, t = _cpu(), time.perf_counter()
        result = fn()
        times.append(round(time.perf_counter() - t, 3))
        cpu.append(round(_cpu() - c, 3))
    return times, cpu, result


def run(entries: int = 1_000_000, repeat: int = 3) -> dict:
    """Build the log if needed, then time verification; returns the numbers as a dict."""
    from ledger.export import export_tiles
    from ledger.log import Log
    from ledger.verify import run_verification
    from ledger.verify_sources import open_database, open_tiles, parse_key

    rate = build(entries)
    cfg = config(entries)
    key = parse_key(str(cfg.vkey_path), "vkey")
    log = Log.open(cfg)
    out: dict = {"entries": entries, "batch": BATCH, "cores": os.cpu_count()}
    if rate is not None:
        out["build_entries_per_s"] = round(rate)
    try:

        def db_verify(jobs: int | None):  # type: ignore[no-untyped-def]
            return lambda: run_verification(open_database(log, key, [], []), jobs=jobs)

        out["load_avg_before"] = round(os.getloadavg()[0], 2)
        times1, cpu1, _ = _timed(db_verify(1), repeat)
        times, cpu, report = _timed(db_verify(None), repeat)
        out["verify_data_dir"] = {
            "best_s": min(times),
            "runs_s": times,
            "cpu_s": cpu,
            "processes": report.jobs,  # type: ignore[attr-defined]
            "entries_per_s": round(entries / min(times)),
            "checkpoints_checked": report.checkpoints_checked,  # type: ignore[attr-defined]
            "goal_s": 5.0,
            "meets_goal": min(times) < 5.0,
        }
        out["verify_data_dir_one_process"] = {
            "best_s": min(times1),
            "runs_s": times1,
            "cpu_s": cpu1,
        }
        tiles = RESULTS / f"verify-{entries}" / "tiles"
        shutil.rmtree(tiles, ignore_errors=True)
        t = time.perf_counter()
        exported = export_tiles(log, tiles)
        out["export"] = {
            "seconds": round(time.perf_counter() - t, 3),
            "tiles_written": exported.written,
        }
        t_tiles, cpu_tiles, _ = _timed(
            lambda: run_verification(open_tiles("dir", str(tiles), key, [], [])), repeat
        )
        out["verify_from_tiles"] = {"best_s": min(t_tiles), "runs_s": t_tiles, "cpu_s": cpu_tiles}
        out["load_avg_after"] = round(os.getloadavg()[0], 2)
        shutil.rmtree(tiles)
    finally:
        log.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(json.dumps({"bench_verify": run(args.entries, args.repeat)}, indent=2))


if __name__ == "__main__":
    main()
