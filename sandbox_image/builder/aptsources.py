"""Read the host's Debian package sources, so a local base image uses the same mirrors.

Both formats apt reads are parsed: one-line ``deb URI SUITE COMPONENT...`` entries
(``sources.list``, ``*.list``) and deb822 stanzas (``*.sources``: ``Types``, ``URIs``, ``Suites``,
``Components``, optional ``Enabled: no``). Only binary (``deb``) entries are kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

APT_DIR = Path("/etc/apt")


@dataclass(frozen=True)
class AptSource:
    uri: str
    suite: str
    components: tuple[str, ...]


def parse_one_line(text: str) -> list[AptSource]:
    """Entries of a one-line-style file; options in ``[...]`` are skipped."""
    found = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        line = re.sub(r"\[[^\]]*\]", " ", line)
        parts = line.split()
        if len(parts) >= 4 and parts[0] == "deb":
            found.append(AptSource(parts[1].rstrip("/"), parts[2], tuple(parts[3:])))
    return found


def parse_deb822(text: str) -> list[AptSource]:
    """Entries of a deb822-style ``.sources`` file (one entry per URI and suite)."""
    found = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        components = tuple(fields.get("components", "").split())
        for uri in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split():
                found.append(AptSource(uri.rstrip("/"), suite, components))
    return found


def host_sources(apt_dir: Path = APT_DIR) -> list[AptSource]:
    """All enabled binary package sources the host's apt reads, in apt's reading order."""
    found: list[AptSource] = []
    main = apt_dir / "sources.list"
    if main.is_file():
        found += parse_one_line(main.read_text(errors="replace"))
    parts = apt_dir / "sources.list.d"
    if parts.is_dir():
        for path in sorted(parts.iterdir()):
            if path.suffix == ".list":
                found += parse_one_line(path.read_text(errors="replace"))
            elif path.suffix == ".sources":
                found += parse_deb822(path.read_text(errors="replace"))
    return found


def debian_sources(codename: str, apt_dir: Path = APT_DIR) -> list[AptSource]:
    """The host's sources for ``codename`` and its -updates/-security suites with ``main``."""
    wanted = {codename, f"{codename}-updates", f"{codename}-security"}
    return [
        s for s in host_sources(apt_dir) if s.suite in wanted and "main" in s.components
    ]


def format_sources_list(sources: list[AptSource]) -> str:
    """A ``sources.list`` with the ``main`` component of each source."""
    return "".join(f"deb {s.uri} {s.suite} main\n" for s in sources)
