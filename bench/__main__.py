"""`python -m bench` (`make bench`): run the benchmarks, print one JSON report, keep a copy.

Every benchmark module has a `run(...) -> dict`; this runs each with its defaults, in order, and
writes the combined report to `bench/results/latest.json` (BENCHMARKS.md records the numbers).
`--only ledger_appends,ledger_proofs` runs a subset. A benchmark that fails is reported with its
error and makes the exit status non-zero; the others still run.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from typing import Any, Callable

from bench.common import dump, machine, results_dir


def _ledger_appends() -> dict:
    from bench.ledger_appends import run

    return run()


def _ledger_proofs() -> dict:
    from bench.ledger_proofs import run

    return run()


def _optional(module: str, **kwargs: Any) -> Callable[[], dict]:
    """A benchmark module that other areas own: run it if it is there."""

    def call() -> dict:
        try:
            mod = importlib.import_module(f"bench.{module}")
        except ModuleNotFoundError as e:
            if e.name == f"bench.{module}":
                return {"skipped": f"bench/{module}.py does not exist"}
            raise
        return mod.run(**kwargs)

    return call


BENCHMARKS: dict[str, Callable[[], dict]] = {
    "ledger_appends": _ledger_appends,
    "ledger_proofs": _ledger_proofs,
    "bench_verify": _optional("bench_verify"),
    "bench_synthetic": _optional("bench_synthetic"),
    "bench_gateway": _optional("bench_gateway"),
    "bench_image": _optional("bench_image", scenarios=("reuse", "rebuild", "client-change")),
    "bench_dp": _optional("bench_dp"),
    "bench_checks": _optional("bench_checks"),
    "bench_spawn": _optional("bench_spawn"),
}


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(unknown)}")
    command = " ".join(["python -m bench", *sys.argv[1:]])
    report: dict[str, Any] = {"machine": machine(), "command": command}
    failed = False
    for name in names:
        print(f"running {name} …", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            report[name] = BENCHMARKS[name]()
        except Exception as e:  # noqa: BLE001 - report it and go on with the others
            failed = True
            report[name] = {"error": f"{type(e).__name__}: {e}",
                            "traceback": traceback.format_exc(limit=5)}
        report[name + "_wall_s"] = round(time.perf_counter() - started, 1)
    text = dump(report)
    (results_dir() / "latest.json").write_text(text + "\n")
    print(text)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
