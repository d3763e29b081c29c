"""Build the Shuyu sandbox image, fully offline when there is no registry.

    python sandbox_image/build.py                 # local Debian base, no network in the build
    python sandbox_image/build.py --base python:3.11-slim-bookworm   # a site with a registry
    python sandbox_image/build.py --lock          # regenerate requirements.lock (needs PyPI)

Steps, each skipped when its result is already there: the base image (``shuyu-base:bookworm``,
see builder/base.py), the wheelhouse and the client wheel (builder/wheelhouse.py), the staged
context, ``docker build`` with the classic builder. The image is tagged
``shuyu-sandbox:<VERSION>`` and ``shuyu-sandbox:latest`` and labelled with the hash of its inputs
(builder/context.py): when an image with that label exists, nothing is rebuilt.

Caches live in ``build/sandbox_image/`` at the top of the checkout (gitignored), or in
``$SHUYU_IMAGE_CACHE``.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from sandbox_image.builder import dockercli
from sandbox_image.builder.base import BASE_REF, ensure_base_image
from sandbox_image.builder.context import HASH_LABEL, context_hash, stage
from sandbox_image.builder.errors import BuildError
from sandbox_image.builder.wheelhouse import compile_lock, ensure_client_wheel, ensure_wheelhouse

SRC = Path(__file__).resolve().parent
REPOSITORY = "shuyu-sandbox"
VERSION = (SRC / "VERSION").read_text().strip()
IMAGE = f"{REPOSITORY}:{VERSION}"


@dataclass(frozen=True)
class BuildResult:
    """What ``ensure_image`` produced: the image, its input hash, whether it was reused, and
    how long each step took (seconds; steps that had nothing to do are near zero)."""

    ref: str
    image_id: str
    context_hash: str
    reused: bool
    seconds: float
    size_bytes: int
    steps: dict[str, float] = field(default_factory=dict)


def default_cache_dir() -> Path:
    return Path(os.environ.get("SHUYU_IMAGE_CACHE") or SRC.parent / "build" / "sandbox_image")


def ensure_image(
    base: str | None = None,
    cache: Path | None = None,
    force: bool = False,
    no_cache: bool = False,
    console: Console | None = None,
    *,
    src: Path = SRC,
    repository: str = REPOSITORY,
    local_base: str = BASE_REF,
) -> BuildResult:
    """Make sure ``<repository>:<VERSION>`` is built from the current inputs; return it.

    ``base`` is a base image name for sites with a registry; without it the local debootstrap
    base ``local_base`` is used (and made if missing). ``force`` rebuilds even when the image is
    current; ``no_cache`` also ignores Docker's layer cache. ``src`` (the sandbox_image folder)
    and ``repository`` are for benchmarks that build a variant beside the real image.
    """
    started = time.monotonic()
    cache = cache or default_cache_dir()
    console = console or Console(stderr=True)
    image = f"{repository}:{(src / 'VERSION').read_text().strip()}"
    steps: dict[str, float] = {}
    dockercli.check_engine()
    with _cache_lock(cache, console), _progress(console) as progress:
        task = progress.add_task("base image", total=None)
        with _timed(steps, "base"):
            if base is None:
                base_ref = local_base
                base_id = ensure_base_image(
                    cache, lambda msg: progress.update(task, description=f"base: {msg}"), local_base
                )
            else:
                base_ref = base
                info = dockercli.inspect_image(base)
                base_id = info["Id"] if info else None
        progress.update(task, description=f"base: {base_ref}", total=1, completed=1)

        digest = context_hash(src, base_ref, base_id)
        if dockercli.image_label(image, HASH_LABEL) == digest and not force:
            dockercli.tag(image, f"{repository}:latest")
            return _result(image, digest, True, started, steps)

        wheels = progress.add_task("wheelhouse", total=None)
        with _timed(steps, "wheelhouse"):
            wheelhouse = ensure_wheelhouse(
                cache,
                src / "requirements.lock",
                lambda n, total, what: progress.update(wheels, total=total, completed=n,
                                                       description=f"wheelhouse: {what}"),
            )
        client = progress.add_task("client wheel", total=1)
        with _timed(steps, "client"):
            client_wheel = ensure_client_wheel(cache, src / "client")
        progress.update(client, completed=1, description=f"client: {client_wheel.name}")

        build = progress.add_task("docker build", total=None)
        with _timed(steps, "docker_build"):
            dockercli.build(
                stage(cache / "context", src, wheelhouse, client_wheel),
                tags=[image, f"{repository}:latest"],
                build_args={"BASE": base_ref},
                labels={HASH_LABEL: digest, "org.shuyu.version": image.rsplit(":", 1)[1]},
                log=cache / "logs" / "docker-build.log",
                on_step=lambda n, total, what: progress.update(
                    build, total=total, completed=n - 1, description=f"build: {what[:60]}"),
                no_cache=no_cache,
            )
        progress.update(build, completed=progress.tasks[build].total or 1, description="built")
    return _result(image, digest, False, started, steps)


@contextmanager
def _cache_lock(cache: Path, console: Console) -> Iterator[None]:
    """One build at a time per cache dir (the staged context and wheelhouse are shared)."""
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            console.print(f"waiting for another image build using {cache}")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@contextmanager
def _timed(steps: dict[str, float], name: str) -> Iterator[None]:
    began = time.monotonic()
    try:
        yield
    finally:
        steps[name] = round(time.monotonic() - began, 2)


def _result(ref: str, digest: str, reused: bool, started: float,
            steps: dict[str, float]) -> BuildResult:
    info = dockercli.inspect_image(ref)
    if info is None:
        raise BuildError(f"{ref} is not in the engine after the build")
    return BuildResult(ref, info["Id"], digest, reused, time.monotonic() - started, info["Size"],
                       steps)


def _progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


@click.command()
@click.option("--base", default=None, metavar="IMAGE",
              help="Base image from a registry (CPython 3.11 on Debian). "
                   "Default: the local debootstrap base, built offline.")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None,
              help="Where the base tarball, wheelhouse and staged context are kept "
                   "(default build/sandbox_image or $SHUYU_IMAGE_CACHE).")
@click.option("--force", is_flag=True, help="Rebuild even when the image matches its inputs.")
@click.option("--no-cache", "no_cache", is_flag=True, help="Also ignore Docker's layer cache.")
@click.option("--lock", "relock", is_flag=True,
              help="Regenerate requirements.lock from requirements.in (needs PyPI), then stop.")
def main(base: str | None, cache_dir: Path | None, force: bool, no_cache: bool,
         relock: bool) -> None:
    """Build the Shuyu sandbox image shuyu-sandbox:<VERSION> (and :latest)."""
    console = Console(stderr=True)
    try:
        if relock:
            compile_lock(cache_dir or default_cache_dir(), SRC / "requirements.in",
                         SRC / "requirements.lock")
            console.print("requirements.lock regenerated")
            return
        result = ensure_image(base, cache_dir, force=force, no_cache=no_cache, console=console)
    except BuildError as exc:
        console.print(f"[red]image build failed:[/red] {exc}")
        sys.exit(1)
    state = "up to date, reused" if result.reused else "built"
    steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result.steps.items())
    console.print(
        f"{result.ref} {state} in {result.seconds:.1f} s ({steps}): {result.image_id[:19]}, "
        f"{result.size_bytes / 1e6:.0f} MB, inputs {result.context_hash[:12]}"
    )


if __name__ == "__main__":
    main()
