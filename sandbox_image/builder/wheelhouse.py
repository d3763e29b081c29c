"""The wheelhouse: every wheel the image installs, downloaded on the host, checked by hash.

The image build has no network, so ``pip download`` fetches the locked wheels here for the
image's platform (CPython 3.11, manylinux x86_64, glibc of Debian bookworm) whatever the host's.
``requirements.lock`` carries a sha256 for every file, so a wheel that does not match is
refused, and files the lock no longer names are pruned. The client package is built into a wheel
here as well, cached by the hash of its source.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path

from sandbox_image.builder.errors import BuildError
from sandbox_image.builder.process import run_logged

PYTHON_VERSION = "3.11"
GLIBC_MINOR = 36  # Debian bookworm ships glibc 2.36
UV_VERSION = "0.13.9"  # the Makefile's uv, for `build.py --lock`
SOURCE_DATE_EPOCH = "315532800"  # 1980-01-01: the client wheel's bytes depend on its source only
HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")
REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", re.MULTILINE)

Progress = Callable[[int, int, str], None]


def platform_args() -> list[str]:
    """pip options that select wheels the image can install, not the host."""
    args = ["--only-binary=:all:", "--implementation", "cp", "--python-version", PYTHON_VERSION]
    for abi in ("cp311", "abi3", "none"):
        args += ["--abi", abi]
    for minor in range(GLIBC_MINOR, 4, -1):
        args += ["--platform", f"manylinux_2_{minor}_x86_64"]
    for legacy in ("manylinux2014", "manylinux2010", "manylinux1"):
        args += ["--platform", f"{legacy}_x86_64"]
    return args


def tools_python(cache: Path) -> Path:
    """A small venv of the builder's own (pip from ensurepip), created on first use."""
    venv = cache / "tools"
    python = venv / "bin" / "python"
    if not python.exists():
        proc = subprocess.run(
            [sys.executable, "-m", "venv", "--clear", str(venv)], capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise BuildError(f"cannot create the builder's venv {venv}: {proc.stderr.strip()}")
    return python


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def ensure_wheelhouse(cache: Path, lock: Path, progress: Progress) -> Path:
    """The wheelhouse directory holding exactly the wheels of ``lock``; fetches what is missing."""
    wheelhouse = cache / "wheelhouse"
    stamp = wheelhouse / ".lock-sha256"
    lock_hash = file_sha256(lock)
    if stamp.is_file() and stamp.read_text().strip() == lock_hash:
        progress(1, 1, "wheelhouse up to date")
        return wheelhouse
    wheelhouse.mkdir(parents=True, exist_ok=True)
    text = lock.read_text()
    total = len(REQUIREMENT.findall(text))
    seen = 0

    def on_line(line: str) -> None:
        nonlocal seen
        if line.startswith(("Collecting ", "Obtaining ")):
            seen += 1
            progress(seen, total, line.split()[1])

    run_logged(
        [tools_python(cache), "-m", "pip", "download", "--disable-pip-version-check",
         "--no-deps", "--require-hashes", *platform_args(), "-r", lock, "-d", wheelhouse],
        cache / "logs" / "wheelhouse.log",
        what="pip download of the wheelhouse",
        on_line=on_line,
    )
    allowed = set(HASH.findall(text))
    for path in wheelhouse.iterdir():
        if path.suffix == ".whl" and file_sha256(path) not in allowed:
            path.unlink()
    stamp.write_text(lock_hash + "\n")
    progress(total, total, "wheelhouse ready")
    return wheelhouse


def tree_sha256(root: Path) -> str:
    """A hash of a source tree's file names, modes and contents (caches skipped)."""
    digest = hashlib.sha256()
    for path in sorted(source_files(root)):
        rel = path.relative_to(root).as_posix()
        digest.update(f"{rel}\0{path.stat().st_mode & 0o111:o}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def source_files(root: Path) -> list[Path]:
    skip = {"__pycache__", "build", "dist", ".pytest_cache"}
    return [
        p
        for p in root.rglob("*")
        if p.is_file()
        and not skip.intersection(p.relative_to(root).parts)
        and not any(part.endswith(".egg-info") for part in p.relative_to(root).parts)
    ]


def ensure_build_backend(cache: Path, client: Path) -> Path:
    """The builder's venv with the client's pinned build requirements installed (once)."""
    python = tools_python(cache)
    requires = tomllib.loads((client / "pyproject.toml").read_text())["build-system"]["requires"]
    stamp = python.parent.parent / ".build-requires"
    wanted = "\n".join(sorted(requires))
    if not stamp.is_file() or stamp.read_text() != wanted:
        run_logged([python, "-m", "pip", "install", "--disable-pip-version-check", "--quiet",
                    *requires], cache / "logs" / "client.log", what="installing the build backend")
        stamp.write_text(wanted)
    return python


def ensure_client_wheel(cache: Path, client: Path) -> Path:
    """The wheel of the client package at ``client``, built once per version of its source."""
    out = cache / "client-dist" / tree_sha256(client)[:16]
    wheels = sorted(out.glob("*.whl")) if out.is_dir() else []
    if wheels:
        return wheels[0]
    python = ensure_build_backend(cache, client)
    with tempfile.TemporaryDirectory(prefix="shuyu-client-") as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(client, src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info",
                                                                   "build", "dist"))
        run_logged(
            [python, "-m", "pip", "wheel", "--disable-pip-version-check", "--no-deps",
             "--no-build-isolation", "--wheel-dir", Path(tmp) / "dist", src],
            cache / "logs" / "client.log",
            what="building the client wheel",
            env={"SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH},
        )
        built = sorted((Path(tmp) / "dist").glob("*.whl"))
        if len(built) != 1:
            raise BuildError(f"building the client wheel produced {len(built)} wheels, not 1")
        out.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy2(built[0], out / built[0].name))


def compile_lock(cache: Path, requirements_in: Path, lock: Path) -> None:
    """Regenerate ``lock`` from ``requirements_in`` with uv, for the image's platform.

    terminado and jupyter-server-terminals (pulled in by jupyter-server) are left out: the
    image has no terminal, and the image build installs the lock with --no-deps.
    """
    python = tools_python(cache)
    log = cache / "logs" / "lock.log"
    uv = python.parent / "uv"
    if not uv.exists():
        run_logged([python, "-m", "pip", "install", "--disable-pip-version-check", "--quiet",
                    f"uv=={UV_VERSION}"], log, what="installing uv")
    run_logged(
        [uv, "pip", "compile", "--quiet", "--generate-hashes", "--python-version", PYTHON_VERSION,
         "--python-platform", f"x86_64-manylinux_2_{GLIBC_MINOR}", "--no-emit-package", "terminado",
         "--no-emit-package", "jupyter-server-terminals", "--custom-compile-command",
         "python sandbox_image/build.py --lock", requirements_in.name, "-o", lock.name],
        log,
        what="uv pip compile",
        cwd=requirements_in.parent,
    )
