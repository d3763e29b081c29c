"""The local base image for sites without a registry: Debian minbase + python3, via debootstrap.

``ensure_base_image`` makes ``shuyu-base:bookworm`` when the engine lacks it: a
``debootstrap --variant=minbase`` root filesystem, upgraded from the host's own Debian sources
(so it carries security updates), with ``python3`` and ``python3-venv`` (CPython 3.11 on
bookworm), then ``docker import``-ed. The root filesystem is kept as a tarball in the cache dir,
so a deleted image is re-imported in seconds without a new debootstrap. Needs root.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from sandbox_image.builder import dockercli
from sandbox_image.builder.aptsources import debian_sources, format_sources_list
from sandbox_image.builder.errors import BuildError
from sandbox_image.builder.process import run_logged

CODENAME = "bookworm"
BASE_REF = f"shuyu-base:{CODENAME}"
PACKAGES = ("python3", "python3-venv")
CHROOT_ENV = {
    "DEBIAN_FRONTEND": "noninteractive",
    "LC_ALL": "C",
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
}
IMPORT_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["/bin/bash"]',
    f"LABEL org.shuyu.base=debootstrap-minbase-{CODENAME}",
)

Report = Callable[[str], None]


def ensure_base_image(cache: Path, report: Report, ref: str = BASE_REF) -> str:
    """The id of the base image ``ref``, importing (and first bootstrapping) it if missing."""
    info = dockercli.inspect_image(ref)
    if info is not None:
        report(f"{ref} present")
        return info["Id"]
    tarball = cache / f"base-{CODENAME}.tar"
    if not tarball.is_file():
        bootstrap_tarball(tarball, cache / "logs" / "base.log", report)
    report(f"importing {tarball.name} as {ref}")
    dockercli.import_tarball(
        tarball,
        ref,
        IMPORT_CHANGES,
        f"debootstrap --variant=minbase {CODENAME} + {' '.join(PACKAGES)}",
        cache / "logs" / "base.log",
    )
    info = dockercli.inspect_image(ref)
    if info is None:
        raise BuildError(f"docker import finished but {ref} is not in the engine")
    return info["Id"]


def bootstrap_tarball(tarball: Path, log: Path, report: Report) -> None:
    """debootstrap a minbase root filesystem with python3 and pack it into ``tarball``."""
    if os.geteuid() != 0:
        raise BuildError("building the local base image needs root (debootstrap and chroot)")
    if shutil.which("debootstrap") is None:
        raise BuildError("debootstrap is missing; run deploy/bootstrap/docker.sh (installs it)")
    rootfs = tarball.parent / f"rootfs-{CODENAME}.tmp"
    remove_rootfs(rootfs)
    rootfs.parent.mkdir(parents=True, exist_ok=True)
    sources = debian_sources(CODENAME)
    mirror = next((s.uri for s in sources if s.suite == CODENAME), None)
    report(f"debootstrap --variant=minbase {CODENAME}")
    cmd = ["debootstrap", "--variant=minbase", CODENAME, str(rootfs)]
    run_logged(cmd + ([mirror] if mirror else []), log, what="debootstrap", on_line=_last(report))
    try:
        install_python(rootfs, format_sources_list(sources) if sources else None, log, report)
        report(f"packing {tarball.name}")
        partial = tarball.with_suffix(".tar.partial")
        run_logged(
            ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(partial), "."],
            log,
            what="tar of the base root filesystem",
        )
        partial.replace(tarball)
    finally:
        remove_rootfs(rootfs)


def install_python(rootfs: Path, sources_list: str | None, log: Path, report: Report) -> None:
    """Upgrade the chroot from the host's Debian sources and install python3 + venv."""
    if sources_list:
        (rootfs / "etc/apt/sources.list").write_text(sources_list)
    resolv = rootfs / "etc/resolv.conf"
    resolv.unlink(missing_ok=True)
    shutil.copyfile("/etc/resolv.conf", resolv)
    try:
        for step in (
            ["apt-get", "update", "-q"],
            ["apt-get", "upgrade", "-y", "-q"],
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES],
            ["apt-get", "clean"],
        ):
            report(" ".join(step[:2]) + (f" {' '.join(PACKAGES)}" if "install" in step else ""))
            run_logged(["chroot", str(rootfs), *step], log, what=f"chroot {step[0]} {step[1]}",
                       env=CHROOT_ENV, on_line=_last(report))
    finally:
        resolv.unlink(missing_ok=True)
    for leftover in ("var/lib/apt/lists", "var/cache/apt", "var/log/apt"):
        shutil.rmtree(rootfs / leftover, ignore_errors=True)
    (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)


def remove_rootfs(rootfs: Path) -> None:
    """Remove a (possibly half-built) root filesystem without crossing into mounts under it."""
    if not rootfs.exists():
        return
    for target in _mounts_under(rootfs):
        run_logged(["umount", "-l", target], rootfs.parent / "logs" / "base.log",
                   what=f"umount {target}")
    run_logged(["rm", "-rf", "--one-file-system", str(rootfs)], rootfs.parent / "logs" / "base.log",
               what=f"removing {rootfs}")


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()) + "/"
    with open("/proc/mounts", encoding="utf-8") as mounts:
        targets = [line.split()[1] for line in mounts]
    return sorted((t for t in targets if t.startswith(prefix)), key=len, reverse=True)


def _last(report: Report) -> Callable[[str], None]:
    """An output-line callback that shows the latest non-empty line."""

    def on_line(line: str) -> None:
        if line.strip():
            report(line.strip()[:100])

    return on_line
