"""Durable appends per second: the ledger with 1, 4 and 16 appender processes, and plain inserts.

Configurations, each on a fresh SQLite log (WAL, synchronous=FULL) under `bench/results/`:
- `sequencer`: a sequencer process (what the ledger service runs) batches for every appender
  process; appenders pipeline `Appender.append_async(event)` (RFC 8785 encoding included);
- `sequencer-bytes`: the same, with appenders sending already-canonical entry bytes through
  `SequencerClient.submit` (the ledger path without JSON canonicalization, which the plain
  inserts do not pay either);
- `local`: no sequencer; each appender process sequences its own batches under the database lock.
In the same run, the same entry rows are inserted into plain SQLite tables with the same pragmas
and batch size by one process: `plain-same-rows` (the ledger's entry columns and indexes, no
tree, no checkpoint) and `plain-bare` (index and bytes only). An append counts once its batch is
committed and its checkpoint signed, exactly as for the services. PostgreSQL is measured for
reference when the test server is reachable.

Run alone: `python -m bench.ledger_appends [--entries 240000] [--batch N] [--procs 1,4,16]`.

`--lone N` measures latency instead: N single appends, one at a time (`Log.append`, waiting for
each), from this process to a sequencer process on a fresh log (`sequencer`), and for reference
sequenced in this process (`local`); `--gap S` pauses between appends (default 5 ms), as a
service does between requests. Each append is one batch, so its latency minus the time its
`Log.commit_local` took (`beyond_commit`) is what the hand-offs between threads and processes
cost, apart from the disk's own variation.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import deque
from pathlib import Path

from bench.common import RESULTS, dump, machine, results_dir
from ledger.entry import encode_entry
from ledger.log import Log, LogConfig, Sequencer, init_log

ORIGIN = "bench.shuyu.local/appends"
REPO = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get(
    "SHUYU_TEST_PG_URL", "postgresql+psycopg://shuyu_test:shuyu_test@127.0.0.1:5432/shuyu_test"
)


def bench_event(worker: int, i: int) -> dict:
    """A realistic audit event (about 240 bytes once canonical)."""
    return {
        "type": "query",
        "actor": f"analyst-{worker}",
        "role": "analyst",
        "session": f"s-{worker}-{i // 1000}",
        "details": {
            "dataset": f"ds-{i % 13}",
            "rows": i,
            "sql_sha256": hashlib.sha256(f"{worker}/{i}".encode()).hexdigest(),
        },
    }


def config_for(base: Path, url: str | None, batch: int) -> LogConfig:
    return LogConfig(
        ledger_dir=base / "ledger",
        keys_dir=base / "keys",
        database_url=url or f"sqlite:///{base / 'ledger' / 'ledger.db'}",
        origin=ORIGIN,
        batch_max_size=batch,
    )


def _write_config(cfg: LogConfig, path: Path) -> None:
    path.write_text(json.dumps({
        "ledger_dir": str(cfg.ledger_dir), "keys_dir": str(cfg.keys_dir),
        "database_url": cfg.database_url, "batch": cfg.batch_max_size,
    }))


def _read_config(path: str) -> LogConfig:
    raw = json.loads(Path(path).read_text())
    return LogConfig(ledger_dir=Path(raw["ledger_dir"]), keys_dir=Path(raw["keys_dir"]),
                     database_url=raw["database_url"], origin=ORIGIN,
                     batch_max_size=raw["batch"])


def _spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.ledger_appends", *args],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE, text=True,
    )


# --- the processes ---------------------------------------------------------------------------


def run_sequencer_process(config: str, timed: bool = False) -> None:
    log = Log.open(_read_config(config))
    commits = _time_commits(log) if timed else None
    seq = Sequencer(log)
    seq.start()
    print("ready", flush=True)
    sys.stdin.read()  # until the harness closes our stdin
    seq.stop()
    log.close()
    if commits is not None:
        print(json.dumps(commits), flush=True)


def _time_commits(log: Log) -> list[float]:
    """Record how long each `commit_local` takes (install before the committer is made)."""
    commits: list[float] = []
    commit = log.commit_local

    def timed(batch):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            return commit(batch)
        finally:
            commits.append(time.perf_counter() - t0)

    log.commit_local = timed  # type: ignore[method-assign]
    return commits


def run_appender_process(config: str, worker: int, count: int, mode: str, go: str) -> None:
    cfg = _read_config(config)
    log = Log.open(cfg)
    appender = log.appender()
    events = [bench_event(worker, i) for i in range(count)]
    if mode == "bytes":
        from ledger.ipc import SequencerClient

        assert appender.remote, "the bytes mode needs a running sequencer"
        client = SequencerClient(cfg.socket_path, max_entries=cfg.batch_max_size)
        encoded = [encode_entry(e) for e in events]
        submit = lambda k: client.submit([encoded[k]])  # noqa: E731
    else:
        client = None
        submit = lambda k: appender.append_async(events[k])  # noqa: E731
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.001)
    cpu0 = _own_cpu()
    window: deque = deque()
    for k in range(count):
        window.append(submit(k))
        if len(window) >= 2048:
            window.popleft().result()
    while window:
        window.popleft().result()
    finished = time.monotonic()  # system-wide clock: the harness compares it with its own
    cpu = _own_cpu() - cpu0
    if client:
        client.close()
    log.close()
    print(f"done {cpu} {finished}", flush=True)


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


# --- the harness -----------------------------------------------------------------------------


def _fresh_log(name: str, url: str | None, batch: int) -> tuple[Path, Path, LogConfig]:
    """A new log under ``RESULTS/name`` (emptied first): its directory, config file, config."""
    base = RESULTS / name
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    cfg = config_for(base, url, batch)
    init_log(cfg)
    config = base / "config.json"
    _write_config(cfg, config)
    return base, config, cfg


def ledger_rate(mode: str, procs: int, entries: int, batch: int, url: str | None = None) -> dict:
    """Entries/s with `procs` appender processes; mode is sequencer, sequencer-bytes or local."""
    base, config, cfg = _fresh_log(f"appends-{mode}-{procs}", url, batch)
    go = base / "go"
    sequencer = None
    if mode.startswith("sequencer"):
        sequencer = subprocess.Popen(
            [sys.executable, "-m", "bench.ledger_appends", "sequencer", str(config)],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert sequencer.stdout.readline().strip() == "ready"
    per = entries // procs
    kind = "bytes" if mode == "sequencer-bytes" else "events"
    workers = [_spawn("appender", str(config), str(w), str(per), kind, str(go))
               for w in range(procs)]
    for w in workers:
        assert w.stdout.readline().strip() == "ready"
    cpu0 = _cpu_seconds(sequencer)
    started = time.monotonic()
    go.touch()
    appender_cpu = 0.0
    finished = started
    for w in workers:
        word, cpu, at = w.stdout.readline().split()
        assert word == "done"
        appender_cpu += float(cpu)
        finished = max(finished, float(at))
    # (the clock stops when the last appender has its last acknowledgement, not when the
    # appender processes have exited: 16 interpreters tearing down are not appends)
    elapsed = finished - started
    cpu1 = _cpu_seconds(sequencer)
    for w in workers:
        w.wait()
        w.stdout.close()
    if sequencer:
        sequencer.stdin.close()
        sequencer.wait(60)
        sequencer.stdout.close()
    log = Log.open(cfg)
    try:
        head = log.store.head()
        checkpoints = sum(1 for _ in log.store.checkpoints())
    finally:
        log.close()
    assert head.size == per * procs, (head.size, per * procs)
    out = {
        "entries": head.size,
        "seconds": round(elapsed, 3),
        "entries_per_s": round(head.size / elapsed),
        "batches": checkpoints,
        "mean_batch": round(head.size / checkpoints, 1),
    }
    out["appender_cpu_us_per_entry"] = round(appender_cpu / head.size * 1e6, 1)
    if sequencer:
        out["sequencer_cpu_us_per_entry"] = round((cpu1 - cpu0) / head.size * 1e6, 1)
    out["cpu_us_per_entry"] = round(((cpu1 - cpu0) + appender_cpu) / head.size * 1e6, 1)
    return out


def _cpu_seconds(proc: subprocess.Popen | None) -> float:
    if proc is None:
        return 0.0
    fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def plain_rate(entries: int, batch: int, same_rows: bool) -> dict:
    """One process inserting the same entry rows into a plain table, same pragmas and batch."""
    from ledger.log import encode_row

    path = results_dir("plain") / f"plain-{'rows' if same_rows else 'bare'}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    assert db.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    db.execute("PRAGMA synchronous=FULL")
    if same_rows:
        db.execute("CREATE TABLE plain (idx INTEGER PRIMARY KEY, data BLOB NOT NULL, "
                   "leaf_hash BLOB NOT NULL, type VARCHAR(120) NOT NULL, at VARCHAR(24) NOT NULL, "
                   "actor VARCHAR(200))")
        for col in ("type", "at", "actor"):
            db.execute(f"CREATE INDEX plain_{col} ON plain ({col})")
    else:
        db.execute("CREATE TABLE plain (idx INTEGER PRIMARY KEY, data BLOB NOT NULL)")
    rows = []
    for i in range(entries):
        data, meta = encode_row(bench_event(i % 16, i))
        h = hashlib.sha256(b"\x00" + data).digest()
        rows.append((i, data, h, *meta) if same_rows else (i, data))
    sql = f"INSERT INTO plain VALUES ({', '.join('?' * len(rows[0]))})"
    started, cpu0 = time.perf_counter(), _own_cpu()
    for k in range(0, entries, batch):
        db.execute("BEGIN IMMEDIATE")
        db.executemany(sql, rows[k : k + batch])
        db.execute("COMMIT")
    elapsed, cpu = time.perf_counter() - started, _own_cpu() - cpu0
    db.close()
    return {"entries": entries, "seconds": round(elapsed, 3),
            "entries_per_s": round(entries / elapsed),
            "cpu_us_per_entry": round(cpu / entries * 1e6, 1)}


def postgres_rate(entries: int, batch: int, procs: int) -> dict:
    """The sequencer mode on PostgreSQL (reference only), in a scratch database."""
    try:
        from sqlalchemy import create_engine, text

        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        name = f"bench_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as e:  # noqa: BLE001 - a reference number, reported as missing
        return {"skipped": f"PostgreSQL not reachable: {type(e).__name__}"}
    try:
        url = PG_URL.rsplit("/", 1)[0] + "/" + name
        out = ledger_rate("sequencer", procs, entries, batch, url)
    finally:
        left = _drop_scratch(admin, name)
        admin.dispose()
    if left:
        out["scratch_database_left"] = left
    return out


def _drop_scratch(admin, name: str) -> str | None:  # type: ignore[no-untyped-def]
    """Drop the scratch database; None when gone, else why not (the rates stay valid).

    `WITH (FORCE)` may not terminate a server process of another role (an autovacuum worker
    that just entered the new database), so a plain drop is retried for a few seconds."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    problem = None
    for attempt in range(20):
        sql = f'DROP DATABASE IF EXISTS "{name}"' + (" WITH (FORCE)" if attempt == 0 else "")
        try:
            with admin.connect() as conn:
                conn.execute(text(sql))
            return None
        except DBAPIError as e:
            problem = f"{name}: {type(e.orig).__name__}"
            time.sleep(0.25)
    return problem


def lone_latency(count: int, gap: float, mode: str, batch: int) -> dict:
    """Latency of one durable append at a time, from this process (`Log.append`)."""
    from bench.common import percentiles

    base, config, cfg = _fresh_log(f"appends-lone-{mode}", None, batch)
    sequencer = None
    if mode == "sequencer":
        sequencer = subprocess.Popen(
            [sys.executable, "-m", "bench.ledger_appends", "sequencer", str(config), "timed"],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert sequencer.stdout.readline().strip() == "ready"
    try:
        log = Log.open(cfg)
        commits = None if sequencer else _time_commits(log)
        try:
            assert log.appender().remote == (mode == "sequencer")
            events = [bench_event(0, i) for i in range(count + 20)]
            for event in events[:20]:  # warm up: connection, statements, caches
                log.append(event)
            samples = []
            cpu0 = _own_cpu()
            for event in events[20:]:
                time.sleep(gap)
                t0 = time.perf_counter()
                log.append(event)
                samples.append(time.perf_counter() - t0)
            cpu = _own_cpu() - cpu0
        finally:
            log.close()
    finally:
        if sequencer:
            sequencer.stdin.close()
            commits = json.loads(sequencer.stdout.readline() or "null")
            sequencer.wait(60)
            sequencer.stdout.close()
    out = percentiles(samples)
    out["mean_ms"] = round(sum(samples) / len(samples) * 1e3, 4)
    out["appender_cpu_us_per_append"] = round(cpu / count * 1e6, 1)
    if commits is not None and len(commits) == count + 20:  # one batch per append
        # the disk's share varies from run to run; what the hand-offs cost is the rest
        commits = commits[20:]
        out["commit_p50_ms"] = percentiles(commits)["p50_ms"]
        rest = percentiles([t - c for t, c in zip(samples, commits)])
        out["beyond_commit_p50_ms"], out["beyond_commit_p90_ms"] = rest["p50_ms"], rest["p90_ms"]
    return out


def run_lone(count: int, gap: float, batch: int | None) -> dict:
    batch = batch or default_batch()
    out: dict = {"appends": count, "gap_s": gap, "load_avg_before": round(os.getloadavg()[0], 2)}
    for mode in ("sequencer", "local"):
        out[mode] = lone_latency(count, gap, mode, batch)
    out["load_avg_after"] = round(os.getloadavg()[0], 2)
    return out


def default_batch() -> int:
    from shuyu_server.settings import LedgerSettings

    return LedgerSettings().batch_max_size


def run(entries: int = 240_000, batch: int | None = None,
        procs: tuple[int, ...] = (1, 4, 16)) -> dict:
    batch = batch or default_batch()
    out: dict = {"batch_max_size": batch, "entries_per_config": entries,
                 "load_avg_before": round(os.getloadavg()[0], 2)}
    out["plain-bare"] = plain_rate(entries, batch, same_rows=False)
    out["plain-same-rows"] = plain_rate(entries, batch, same_rows=True)
    for mode in ("sequencer", "sequencer-bytes", "local"):
        for p in procs:
            out[f"{mode}-{p}"] = ledger_rate(mode, p, entries, batch)
    plain = out["plain-same-rows"]
    ledger = {k: v for k, v in out.items() if k.startswith(("sequencer", "local"))}
    out["ratio_to_plain_same_rows"] = {
        k: round(v["entries_per_s"] / plain["entries_per_s"], 3) for k, v in ledger.items()
    }
    out["cpu_ratio_plain_over_ledger"] = {  # load-independent: plain CPU cost / ledger CPU cost
        k: round(plain["cpu_us_per_entry"] / v["cpu_us_per_entry"], 3) for k, v in ledger.items()
    }
    out["postgres-sequencer-4"] = postgres_rate(entries, batch, 4)
    out["load_avg_after"] = round(os.getloadavg()[0], 2)
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "sequencer":
        return run_sequencer_process(sys.argv[2], timed=sys.argv[3:] == ["timed"])
    if len(sys.argv) > 1 and sys.argv[1] == "appender":
        return run_appender_process(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
                                    sys.argv[5], sys.argv[6])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=240_000)
    ap.add_argument("--batch", type=int, default=None, help="default: the settings' batch size")
    ap.add_argument("--procs", default="1,4,16")
    ap.add_argument("--lone", type=int, default=0, metavar="N",
                    help="measure the latency of N single appends instead of the rates")
    ap.add_argument("--gap", type=float, default=0.005, help="pause between lone appends (s)")
    args = ap.parse_args()
    if args.lone:
        lone = run_lone(args.lone, args.gap, args.batch)
        print(dump({"machine": machine(), "ledger_lone_append": lone}))
        return
    procs = tuple(int(p) for p in args.procs.split(","))
    print(dump({"machine": machine(), "ledger_appends": run(args.entries, args.batch, procs)}))


if __name__ == "__main__":
    main()
