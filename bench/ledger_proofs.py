"""Inclusion-proof latency on big logs (1M and 10M entries) through `SqlLedgerStore`.

The logs are built once with the real append path (`Log.commit_local`: one transaction, stored
hashes, signed checkpoint and guard per batch; large batches) and cached under
`bench/results/ledger-<n>/` (gitignored), so reruns only measure. Entries are synthetic audit
events whose bytes are canonical JSON (checked against RFC 8785 on a sample).

Run alone: `python -m bench.ledger_proofs [--sizes 1000000,10000000] [--samples 2000]`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from pathlib import Path

import rfc8785
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from bench.common import dump, machine, percentiles, results_dir
from ledger.hashing import leaf_hash
from ledger.log import Log, LogConfig, init_log
from ledger.proofs import verify_inclusion
from ledger.sqlstore import EntryMeta

ORIGIN = "bench.shuyu.local/ledger"
BUILD_BATCH = 8192
TYPES = ("query", "session.open", "release.submitted", "budget.charged")


_TEMPLATE = (
    '{"actor":"analyst-%d","at":"%s","details":{"dataset":"ds-%d","n":%d,"sql_sha256":"%s"},'
    '"role":"analyst","session":"s-%d","type":"%s","v":1}'
)


def synthetic_entry(i: int) -> tuple[bytes, EntryMeta]:
    """Entry i of the benchmark log: canonical JSON bytes and their filter columns.

    Written from a template (keys already in RFC 8785 order, ASCII values) because building
    10M entries through a JSON encoder would take longer than appending them; `build` checks a
    sample against the RFC 8785 encoder.
    """
    at = (
        f"2026-01-01T{(i // 3_600_000) % 24:02d}:{(i // 60_000) % 60:02d}:"
        f"{(i // 1000) % 60:02d}.{i % 1000:03d}Z"
    )
    kind = TYPES[i % len(TYPES)]
    digest = hashlib.sha256(i.to_bytes(8, "big")).hexdigest()
    data = (_TEMPLATE % (i % 97, at, i % 13, i, digest, i // 1000, kind)).encode()
    return data, EntryMeta(kind, at, f"analyst-{i % 97}")


def log_config(n: int) -> LogConfig:
    base = results_dir(f"ledger-{n}")
    return LogConfig(
        ledger_dir=base / "ledger",
        keys_dir=base / "keys",
        database_url=f"sqlite:///{base / 'ledger' / 'ledger.db'}",
        origin=ORIGIN,
        batch_max_size=BUILD_BATCH,
    )


def build(n: int) -> tuple[Log, float | None]:
    """Open the cached log of n entries, appending what is missing; return (log, build rate)."""
    for i in random.Random(1).sample(range(n), 20):  # the synthetic bytes are canonical
        data, _ = synthetic_entry(i)
        assert rfc8785.dumps(json.loads(data)) == data
    cfg = log_config(n)
    init_log(cfg)
    log = Log.open(cfg)
    size = log.store.head().size
    if size >= n:
        return log, None
    started, start_size = time.perf_counter(), size
    with Progress(
        TextColumn(f"building a {n:,}-entry log"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("build", total=n, completed=size)
        while size < n:
            rows = [synthetic_entry(i) for i in range(size, min(n, size + BUILD_BATCH))]
            first = log.commit_local(rows)
            assert first == size, (first, size)
            size += len(rows)
            bar.update(task, completed=size)
    return log, (size - start_size) / (time.perf_counter() - started)


def measure(log: Log, samples: int, seed: int = 7) -> dict:
    """Latency of SqlLedgerStore.inclusion_proof at the latest size, for random indices."""
    head = log.store.head()
    rng = random.Random(seed)
    indices = [rng.randrange(head.size) for _ in range(samples)]
    for i in indices[:50]:  # warm the connection pool and the page cache a little
        log.store.inclusion_proof(i, head.size)
    times = []
    for i in indices:
        t = time.perf_counter()
        proof = log.store.inclusion_proof(i, head.size)
        times.append(time.perf_counter() - t)
        data = log.store.entries(i, i + 1)[0][1]
        verify_inclusion(leaf_hash(data), i, head.size, proof, head.root)
    return {"size": head.size, "proof_hashes": len(proof), **percentiles(times)}


def run(sizes: tuple[int, ...] = (1_000_000, 10_000_000), samples: int = 2000) -> dict:
    out: dict = {}
    for n in sizes:
        log, rate = build(n)
        try:
            db = Path(log.config.database_url.split("///", 1)[1])
            res = measure(log, samples)
            res["db_gib"] = round(db.stat().st_size / 2**30, 2)
            if rate is not None:
                res["build_entries_per_s"] = round(rate)
            out[f"inclusion_proof_{n}"] = res
        finally:
            log.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--samples", type=int, default=2000)
    args = ap.parse_args()
    sizes = tuple(int(s) for s in args.sizes.split(","))
    print(dump({"machine": machine(), "ledger_proofs": run(sizes, args.samples)}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
