"""Reading a log published as C2SP tlog-tiles: from a directory (an export) or a URL (the service).

A `TileFetcher` returns the bytes at a tlog-tiles path, or None when there is nothing there.
`TiledLog` reads the hash tiles and entry bundles of a tree of a given size, choosing full or
partial tiles as tlog-tiles prescribes for that size (and falling back to the full tile when a
partial one is no longer published). Reads are tolerant on purpose: a short or damaged tile gives
``None`` at the positions it lacks instead of an exception, so that a verifier can name the first
entry that is missing or wrong rather than stop at the first odd file.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Protocol

import httpx

from ledger.exceptions import LedgerError
from ledger.hashing import HASH_SIZE
from ledger.tiles import TILE_HEIGHT, TILE_WIDTH, Tile


class TileFetcher(Protocol):
    def fetch(self, path: str) -> bytes | None: ...


class DirFetcher:
    """Tiles in a local directory, e.g. written by `shuyu ledger export`."""

    def __init__(self, base: Path):
        if not base.is_dir():
            raise LedgerError(f"{base} is not a directory")
        self.base = base
        self.description = str(base)

    def fetch(self, path: str) -> bytes | None:
        try:
            return (self.base / path).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None


class HttpFetcher:
    """Tiles served over HTTP (the ledger service, or any tlog-tiles mirror)."""

    def __init__(self, url: str, timeout: float = 30.0, token: str | None = None):
        if not url.startswith(("http://", "https://")):
            raise LedgerError(f"{url!r} is not an http:// or https:// URL")
        self.base = url.rstrip("/")
        self.description = self.base
        headers = {"Authorization": f"token {token}"} if token else {}
        self.http = httpx.Client(timeout=timeout, trust_env=False, headers=headers)

    def fetch(self, path: str) -> bytes | None:
        url = f"{self.base}/{path}"
        try:
            resp = self.http.get(url)
        except httpx.HTTPError as e:
            raise LedgerError(f"cannot fetch {url}: {e}") from e
        if resp.status_code == 404:
            return None
        if resp.status_code in (401, 403):
            raise LedgerError(f"{url} answered HTTP {resp.status_code}: "
                              f"{_detail(resp)} (give a regulator's hub token with --token)")
        if resp.status_code != 200:
            raise LedgerError(f"{url} answered HTTP {resp.status_code}")
        return resp.content

    def close(self) -> None:
        self.http.close()


def _detail(resp: httpx.Response) -> str:
    try:
        return str(resp.json().get("detail", ""))[:300]
    except ValueError:
        return resp.text[:300]


def split_hashes(data: bytes, width: int) -> list[bytes | None]:
    """The first `width` hashes of a hash tile; None where the tile is too short."""
    out: list[bytes | None] = [
        data[i : i + HASH_SIZE] for i in range(0, width * HASH_SIZE, HASH_SIZE)
    ]
    whole = len(data) // HASH_SIZE
    for i in range(min(whole, width), width):
        out[i] = None
    return out


def split_bundle(data: bytes, width: int) -> list[bytes | None]:
    """The first `width` entries of an entry bundle; None from where the bundle ends or breaks."""
    out: list[bytes | None] = []
    pos = 0
    while len(out) < width and pos + 2 <= len(data):
        (n,) = struct.unpack_from(">H", data, pos)
        if pos + 2 + n > len(data):
            break
        out.append(data[pos + 2 : pos + 2 + n])
        pos += 2 + n
    return out + [None] * (width - len(out))


class TiledLog:
    """The tiles of the tree of `size` leaves behind a fetcher."""

    def __init__(self, fetcher: TileFetcher, size: int):
        self.fetcher = fetcher
        self.size = size
        self._cache: dict[tuple[int, int], list[bytes | None]] = {}

    def _count(self, tile_level: int) -> int:
        """How many complete hashes (or entries, for level -1) the tree has at this tile level."""
        return self.size if tile_level < 0 else self.size >> (TILE_HEIGHT * tile_level)

    def _tile(self, tile_level: int, n: int) -> list[bytes | None]:
        key = (tile_level, n)
        if key in self._cache:
            return self._cache[key]
        width = min(TILE_WIDTH, self._count(tile_level) - n * TILE_WIDTH)
        data = self.fetcher.fetch(Tile(tile_level, n, width).path)
        if data is None and width < TILE_WIDTH:  # the log grew: the full tile replaced it
            data = self.fetcher.fetch(Tile(tile_level, n).path)
        split = split_bundle if tile_level < 0 else split_hashes
        items = split(data or b"", width)
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[key] = items
        return items

    def read(self, tile_level: int, start: int, end: int) -> list[bytes | None]:
        """Items [start, end) of a tile level (-1: entries; L ≥ 0: hashes of Merkle level 8·L)."""
        end = min(end, self._count(tile_level))
        out: list[bytes | None] = []
        pos = start
        while pos < end:
            n, offset = divmod(pos, TILE_WIDTH)
            items = self._tile(tile_level, n)
            take = min(end - pos, len(items) - offset)
            out.extend(items[offset : offset + take])
            pos += take
        return out
