"""The offline image builder's pure parts: apt sources, the lock, wheel selection, input hash."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from sandbox_image.build import SRC
from sandbox_image.builder.aptsources import (
    AptSource,
    debian_sources,
    format_sources_list,
    parse_deb822,
    parse_one_line,
)
from sandbox_image.builder.context import context_hash
from sandbox_image.builder.wheelhouse import platform_args

DEB822 = """\
Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://mirror.example/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
Enabled: no
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
"""

ONE_LINE = """\
# a comment
deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian/ bookworm main non-free
deb-src http://mirror.example/debian bookworm main
deb http://other.example/node nodistro main  # trailing comment
"""


def test_deb822_entries_expand_uris_and_suites_and_skip_disabled_and_sources():
    assert parse_deb822(DEB822) == [
        AptSource("http://mirror.example/debian", "bookworm", ("main", "contrib")),
        AptSource("http://mirror.example/debian", "bookworm-updates", ("main", "contrib")),
        AptSource("http://mirror.example/debian-security", "bookworm-security", ("main",)),
    ]


def test_one_line_entries_skip_options_comments_and_deb_src():
    assert parse_one_line(ONE_LINE) == [
        AptSource("http://mirror.example/debian", "bookworm", ("main", "non-free")),
        AptSource("http://other.example/node", "nodistro", ("main",)),
    ]


def test_debian_sources_keep_the_release_suites_with_main(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(DEB822)
    (tmp_path / "sources.list.d" / "other.list").write_text(ONE_LINE)
    disabled = tmp_path / "sources.list.d" / "off.list.disabled"
    disabled.write_text("deb http://x.example/d bookworm main\n")
    found = debian_sources("bookworm", tmp_path)
    assert [s.suite for s in found] == [
        "bookworm", "bookworm-updates", "bookworm-security", "bookworm",
    ]
    assert format_sources_list(found[:1]) == "deb http://mirror.example/debian bookworm main\n"


def test_wheels_are_selected_for_the_image_not_the_host():
    args = platform_args()
    platforms = {args[i + 1] for i, a in enumerate(args) if a == "--platform"}
    assert {"manylinux_2_36_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"} <= platforms
    assert "manylinux_2_37_x86_64" not in platforms  # bookworm's glibc is 2.36
    abis = {args[i + 1] for i, a in enumerate(args) if a == "--abi"}
    assert abis == {"cp311", "abi3", "none"}
    assert "--only-binary=:all:" in args


def test_lock_pins_every_package_with_hashes_and_leaves_out_terminals():
    lock = (SRC / "requirements.lock").read_text()
    names = re.findall(r"^([a-z0-9][a-z0-9._-]*)==(\S+) \\$", lock, re.MULTILINE)
    pinned = dict(names)
    assert pinned["jupyterhub"] == "6.1.1"
    assert pinned["polars"] == "1.36.1"
    for absent in ("terminado", "jupyter-server-terminals", "jupyter-server-proxy"):
        assert absent not in pinned
    entries = re.split(r"^(?=[a-z0-9])", lock, flags=re.MULTILINE)
    for entry in entries:
        if "==" in entry:
            assert "--hash=sha256:" in entry, entry.splitlines()[0]
    requested = re.findall(r"^([a-z0-9-]+)==(\S+)$", (SRC / "requirements.in").read_text(),
                           re.MULTILINE)
    for name, version in requested:
        assert pinned[name] == version, f"{name}: requirements.in {version}, lock {pinned[name]}"


@pytest.fixture
def source_copy(tmp_path: Path) -> Path:
    src = tmp_path / "sandbox_image"
    src.mkdir()
    for name in ("Dockerfile", "requirements.lock", "VERSION"):
        shutil.copy2(SRC / name, src / name)
    for tree in ("files", "client"):
        shutil.copytree(SRC / tree, src / tree,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return src


def test_input_hash_follows_every_input(source_copy):
    base = context_hash(source_copy, "shuyu-base:bookworm", "sha256:aaa")
    assert context_hash(source_copy, "shuyu-base:bookworm", "sha256:aaa") == base
    assert context_hash(source_copy, "shuyu-base:bookworm", "sha256:bbb") != base
    assert context_hash(source_copy, "python:3.11-slim", "sha256:aaa") != base

    config = source_copy / "files/etc/shuyu/jupyter/jupyter_server_config.py"
    original = config.read_text()
    config.write_text(original + "\n")
    assert context_hash(source_copy, "shuyu-base:bookworm", "sha256:aaa") != base
    config.write_text(original)
    assert context_hash(source_copy, "shuyu-base:bookworm", "sha256:aaa") == base

    entry = source_copy / "files/opt/shuyu/bin/sandbox-entry"
    entry.chmod(0o644)
    assert context_hash(source_copy, "shuyu-base:bookworm", "sha256:aaa") != base
    entry.chmod(0o755)

    client = source_copy / "client/shuyu/extra.py"
    client.write_text("X = 1\n")
    assert context_hash(source_copy, "shuyu-base:bookworm", "sha256:aaa") != base
    client.unlink()

    cache = source_copy / "client/shuyu/__pycache__"
    cache.mkdir()
    (cache / "x.cpython-311.pyc").write_bytes(b"\0")
    assert context_hash(source_copy, "shuyu-base:bookworm", "sha256:aaa") == base
