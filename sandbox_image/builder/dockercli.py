"""The few Docker engine operations the image builder needs, through the ``docker`` CLI.

Builds use the classic builder (``DOCKER_BUILDKIT=0``): it needs no BuildKit or buildx on the
host and never reaches a registry for a base image that is already present.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from sandbox_image.builder.errors import BuildError
from sandbox_image.builder.process import capture, run_logged

STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")


def check_engine() -> str:
    """The engine's version; BuildError with a hint when no engine answers."""
    try:
        info = capture(["docker", "info", "--format", "{{.ServerVersion}}"], what="docker info")
        return info.strip()
    except BuildError as exc:
        raise BuildError(
            f"no Docker engine answers ({exc}); start one with deploy/bootstrap/docker.sh"
        ) from exc


def inspect_image(ref: str) -> dict | None:
    """``docker image inspect`` of ``ref``, or None when the engine has no such image."""
    proc = subprocess.run(
        ["docker", "image", "inspect", ref], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout)[0]


def image_label(ref: str, key: str) -> str | None:
    """One label of an image, or None when the image or the label is missing."""
    info = inspect_image(ref)
    if info is None:
        return None
    return ((info.get("Config") or {}).get("Labels") or {}).get(key)


def tag(source: str, target: str) -> None:
    capture(["docker", "tag", source, target], what=f"docker tag {source} {target}")


def import_tarball(
    tarball: Path, ref: str, changes: Sequence[str], message: str, log: Path
) -> None:
    """``docker import`` a root filesystem tarball as image ``ref``."""
    cmd: list[str] = ["docker", "import", "--message", message]
    for change in changes:
        cmd += ["--change", change]
    run_logged([*cmd, str(tarball), ref], log, what=f"docker import {ref}")


def build(
    context: Path,
    tags: Sequence[str],
    build_args: Mapping[str, str],
    labels: Mapping[str, str],
    log: Path,
    on_step: Callable[[int, int, str], None] | None = None,
    no_cache: bool = False,
) -> None:
    """Build ``context/Dockerfile`` with the classic builder; report ``Step n/m`` lines."""
    cmd = ["docker", "build", "--rm", "--force-rm"]
    if no_cache:
        cmd.append("--no-cache")
    for key, value in build_args.items():
        cmd += ["--build-arg", f"{key}={value}"]
    for key, value in labels.items():
        cmd += ["--label", f"{key}={value}"]
    for name in tags:
        cmd += ["--tag", name]
    cmd.append(str(context))

    def on_line(line: str) -> None:
        match = STEP.match(line)
        if match and on_step is not None:
            on_step(int(match[1]), int(match[2]), match[3])

    run_logged(cmd, log, what="docker build", on_line=on_line, env={"DOCKER_BUILDKIT": "0"})
