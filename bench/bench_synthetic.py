"""Synthetic data generation and domain-store loading at realistic scale (default 1M residents).

Measures, per dataset: time to generate the table, to write its Parquet file, and to load it into
a fresh domain store (sha256 check, one transaction, `dataset.loaded` appended to a real ledger);
rows and file sizes; and totals. The goal from issue 3: 1M residents generate "well under a
minute" on the 2-core reference machine. Everything lives in a temporary directory that is
removed afterwards.

Run alone: `python -m bench.bench_synthetic [--scales 1000000] [--seed 0] [--no-load]`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from hub.domain import DomainStore
from hub.synthetic.generate import Options, write_dataset_dir
from ledger.log import Log, LogConfig, init_log

GOAL_SECONDS_1M = 60.0


def run(scales: tuple[int, ...] = (1_000_000,), seed: int = 0, load: bool = True) -> dict:
    """Generate (and load) each scale once; return the measurements."""
    report = {
        "benchmark": "synthetic",
        "machine": {
            "cores": os.cpu_count(), "python": platform.python_version(),
            "load_avg_at_start": round(os.getloadavg()[0], 2),
            "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "runs": [],
    }
    for scale in scales:
        with tempfile.TemporaryDirectory(prefix="shuyu-bench-synthetic-") as tmp:
            report["runs"].append(_one_scale(Path(tmp), scale, seed, load))
    return report


def _one_scale(base: Path, scale: int, seed: int, load: bool) -> dict:
    steps: dict[str, dict] = {}
    mark = [time.perf_counter()]

    def on_progress(name: str, step: str) -> None:
        now = time.perf_counter()
        steps.setdefault(name, {})[f"{step}_s"] = round(now - mark[0], 3)
        mark[0] = now

    out = base / "out"
    started = time.perf_counter()
    catalog = write_dataset_dir(out, Options(scale, seed), on_progress)
    generate_s = time.perf_counter() - started
    for entry in catalog["datasets"]:
        steps[entry["name"]]["rows"] = entry["rows"]
        steps[entry["name"]]["parquet_mib"] = round((out / entry["file"]).stat().st_size / 2**20, 2)
    result = {
        "scale": scale,
        "seed": seed,
        "generate_and_write_s": round(generate_s, 2),
        "goal_s": GOAL_SECONDS_1M * max(1, scale / 1_000_000),
        "total_rows": sum(e["rows"] for e in catalog["datasets"]),
        "datasets": steps,
    }
    if load:
        result.update(_load(base, out, steps))
    return result


def _load(base: Path, out: Path, steps: dict) -> dict:
    config = LogConfig(ledger_dir=base / "ledger", keys_dir=base / "keys",
                       database_url=f"sqlite:///{base / 'ledger' / 'ledger.db'}",
                       origin="bench.shuyu.local/ledger")
    init_log(config)
    log = Log.open(config)
    store = DomainStore(base / "domain")
    mark = [time.perf_counter()]

    def on_loaded(version) -> None:
        now = time.perf_counter()
        steps[version.dataset]["load_s"] = round(now - mark[0], 3)
        mark[0] = now

    started = time.perf_counter()
    try:
        store.load_catalog_dir(out, audit=log.append, on_loaded=on_loaded)
    finally:
        log.close()
    load_s = time.perf_counter() - started
    return {
        "load_s": round(load_s, 2),
        "domain_mib": round(store.path.stat().st_size / 2**20, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1000000", help="comma-separated resident counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-load", action="store_true", help="only generate and write")
    args = parser.parse_args(argv)
    scales = tuple(int(s) for s in args.scales.split(","))
    json.dump(run(scales, args.seed, not args.no_load), sys.stdout, indent=2, ensure_ascii=False)
    print()


if __name__ == "__main__":
    main()
