"""The build context: what goes into the image, its hash, and the staged directory.

The hash covers the inputs that decide the image: the Dockerfile, the lock (which pins every
wheel by sha256), ``files/``, the client's source, and the base image (name and id). The built
image carries it as the label ``org.shuyu.context-hash``; an image whose label matches is
current, and no step of the build runs again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from sandbox_image.builder.wheelhouse import file_sha256, source_files

HASH_LABEL = "org.shuyu.context-hash"
INPUT_FILES = ("Dockerfile", "requirements.lock")
INPUT_TREES = ("files", "client")


def context_hash(src: Path, base_ref: str, base_id: str | None) -> str:
    """sha256 over the image's inputs in ``src`` (sandbox_image/) and the base image."""
    digest = hashlib.sha256(f"base\0{base_ref}\0{base_id or ''}\n".encode())
    paths = [src / name for name in INPUT_FILES]
    for tree in INPUT_TREES:
        paths += source_files(src / tree)
    for path in sorted(paths):
        rel = path.relative_to(src).as_posix()
        mode = path.stat().st_mode & 0o111
        digest.update(f"{rel}\0{mode:o}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def stage(dest: Path, src: Path, wheelhouse: Path, client_wheel: Path) -> Path:
    """Lay out the Docker build context in ``dest`` (replaced); wheels are hard links."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in INPUT_FILES:
        shutil.copy2(src / name, dest / name)
    shutil.copytree(src / "files", dest / "files",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (dest / "wheelhouse").mkdir()
    for wheel in sorted(wheelhouse.glob("*.whl")):
        _link_or_copy(wheel, dest / "wheelhouse" / wheel.name)
    (dest / "client-dist").mkdir()
    shutil.copy2(client_wheel, dest / "client-dist" / client_wheel.name)
    return dest


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
