"""Sandbox image build times and size: cold, after a client change, with every cache warm.

Scenarios (each builds beside the real image, under ``shuyu-sandbox-bench``, so the image the
tests and the hub use is left as it is):

- ``cold``: nothing cached: a fresh cache dir (debootstrap, wheel download, client wheel), a base
  image of its own, and Docker's layer cache ignored. Needs root and the package registries.
- ``client-change``: the client's source changed (a copy of sandbox_image/ with one more line),
  everything else cached: what a developer waits for after editing the client.
- ``rebuild``: nothing changed but the build forced: ``docker build`` with every layer cached.
- ``reuse``: the image is current: the input-hash check alone (what each test session pays).

Run: ``python -m bench.bench_image [--scenarios reuse,rebuild,client-change,cold] [--keep]``.
Results go to stdout and bench/results/image/.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from bench.common import machine, results_dir
from sandbox_image.build import SRC, BuildResult, default_cache_dir, ensure_image

BENCH_REPOSITORY = "shuyu-sandbox-bench"
BENCH_BASE = "shuyu-base-bench:bookworm"
SCENARIOS = ("reuse", "rebuild", "client-change", "cold")


def _summary(result: BuildResult) -> dict:
    return {
        "seconds": round(result.seconds, 1),
        "steps_s": result.steps,
        "reused": result.reused,
        "size_mb": round(result.size_bytes / 1e6),
        "image": result.ref,
    }


def _source_copy(tmp: Path, client_edit: str | None) -> Path:
    src = tmp / "sandbox_image"
    shutil.copytree(SRC, src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    if client_edit:
        init = src / "client" / "shuyu" / "__init__.py"
        init.write_text(init.read_text() + client_edit)
    return src


def _all_images() -> set[str]:
    proc = subprocess.run(["docker", "images", "--all", "--quiet", "--no-trunc"],
                          capture_output=True, text=True, check=True)
    return set(proc.stdout.split())


def _remove_new_images(before: set[str]) -> None:
    """Remove the images (and build intermediates) this run created, children first."""
    version = (SRC / "VERSION").read_text().strip()
    for ref in (f"{BENCH_REPOSITORY}:{version}", f"{BENCH_REPOSITORY}:latest", BENCH_BASE):
        subprocess.run(["docker", "rmi", "--no-prune", ref], capture_output=True, check=False)
    left = _all_images() - before
    while left:
        for image in sorted(left):
            subprocess.run(["docker", "rmi", image], capture_output=True, check=False)
        remaining = _all_images() - before
        if remaining == left:
            break
        left = remaining


def run(scenarios: tuple[str, ...], keep: bool = False) -> dict:
    console = Console(stderr=True)
    report: dict = {"benchmark": "sandbox_image", "machine": machine(), "runs": {}}
    before = _all_images()
    with tempfile.TemporaryDirectory(prefix="shuyu-bench-image-") as tmp_name:
        tmp = Path(tmp_name)
        # The bench image starts from the real image's layers, like a developer's checkout.
        ensure_image(console=console, src=_source_copy(tmp / "a", None),
                     repository=BENCH_REPOSITORY)
        if "reuse" in scenarios:
            result = ensure_image(console=console, src=_source_copy(tmp / "b", None),
                                  repository=BENCH_REPOSITORY)
            report["runs"]["reuse"] = _summary(result)
        if "rebuild" in scenarios:
            result = ensure_image(console=console, src=_source_copy(tmp / "c", None),
                                  repository=BENCH_REPOSITORY, force=True)
            report["runs"]["rebuild"] = _summary(result)
        if "client-change" in scenarios:
            edited = _source_copy(tmp / "d", "\n# benchmark edit\n")
            result = ensure_image(console=console, src=edited, repository=BENCH_REPOSITORY)
            report["runs"]["client-change"] = _summary(result)
        if "cold" in scenarios:
            subprocess.run(["docker", "rmi", BENCH_BASE], capture_output=True, check=False)
            result = ensure_image(console=console, src=_source_copy(tmp / "e", None),
                                  repository=BENCH_REPOSITORY, cache=tmp / "cold-cache",
                                  local_base=BENCH_BASE, no_cache=True, force=True)
            report["runs"]["cold"] = _summary(result)
    report["cache_dir"] = str(default_cache_dir())
    if not keep:
        _remove_new_images(before)
    out = results_dir("image") / f"{report['machine']['date'].replace(':', '')}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="reuse,rebuild,client-change",
                        help=f"comma-separated, from {', '.join(SCENARIOS)} (cold takes minutes)")
    parser.add_argument("--keep", action="store_true", help="keep the bench images")
    args = parser.parse_args(argv)
    chosen = tuple(s for s in args.scenarios.split(",") if s)
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(sorted(unknown))}; "
                     f"choose from {', '.join(SCENARIOS)}")
    json.dump(run(chosen, args.keep), sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
