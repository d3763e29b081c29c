"""Where a query's time goes: per-phase wall time and the request thread's CPU time.

Each query's ``Stopwatch`` marks the end of each phase (``lap``). The phases of a query that ran:

- ``policy``: the catalog's query-time check and the SQL policy (or the plan cache's lookup);
- ``prepare``: the governed rewrite (group counts, projections), skipped on a cache hit;
- ``engine``: execution in DuckDB and the aggregation rule's suppression;
- ``pages``: Arrow IPC pages and their sha256;
- ``ledger``: the ``query`` entry, durable and its checkpoint signed (mostly waiting);
- ``total``: all of them, as the ledger entry's ``duration_ms``.

When the gateway's ``timings_log`` names a file, one JSON line per query goes there with the
query id, the phases in milliseconds, ``cpu_ms`` (CPU time of the request's thread; the ledger's
own thread is not in it), whether the plan cache answered, and the rows. No SQL, user or data:
what a query was is in the ledger, under the same query id. Benchmarks read this file to split
the gateway's overhead into its parts even on a busy machine.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()
        self._cpu = time.thread_time()
        self._last = self.started
        self.phases: dict[str, float] = {}

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.phases[phase] = (now - self._last) * 1000
        self._last = now

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def cpu_ms(self) -> float:
        return (time.thread_time() - self._cpu) * 1000


class TimingsLog:
    """Appends one JSON line per query to a file; thread-safe; off when `path` is None."""

    def __init__(self, path: Path | None):
        self.path = path
        self._lock = threading.Lock()
        self._file = open(path, "a", encoding="utf-8", buffering=1) if path else None

    def write(self, query_id: str, watch: Stopwatch, **facts: Any) -> None:
        if self._file is None:
            return
        line = json.dumps({
            "query_id": query_id,
            **{k: round(v, 3) for k, v in watch.phases.items()},
            "total": round(watch.elapsed_ms(), 3),
            "cpu_ms": round(watch.cpu_ms(), 3),
            **facts,
        })
        with self._lock:
            self._file.write(line + "\n")

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
