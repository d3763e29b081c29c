"""Helpers shared by the benchmarks: where results go, machine facts, timing summaries."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def results_dir(*parts: str) -> Path:
    path = RESULTS.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def machine() -> dict:
    """CPU model, cores, RAM, OS, Python and SQLite versions of this run."""
    model = platform.processor() or ""
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    import sqlite3

    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kib / 2**20, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "load_avg_at_start": os.getloadavg()[0],
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def percentiles(samples: list[float]) -> dict:
    """p50/p90/p99/max of latencies given in seconds, reported in milliseconds."""
    xs = sorted(samples)
    q = statistics.quantiles(xs, n=100, method="inclusive")
    return {
        "n": len(xs),
        "p50_ms": round(q[49] * 1e3, 4),
        "p90_ms": round(q[89] * 1e3, 4),
        "p99_ms": round(q[98] * 1e3, 4),
        "max_ms": round(xs[-1] * 1e3, 4),
    }


def dump(report: dict) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False)
