"""C2SP tlog-tiles (v0.1.0): the log as static, cacheable files.

    <prefix>/checkpoint                      the latest signed checkpoint (mutable)
    <prefix>/tile/<L>/<N>[.p/<W>]            hash tile: W (≤256) hashes at Merkle level 8·L
    <prefix>/tile/entries/<N>[.p/<W>]        entry bundle: W entries, each u16 BE length ‖ bytes

Hash i of tile (L, N) is the root of the complete subtree of 256**L leaves starting at leaf
(N·256 + i)·256**L, i.e. stored coordinate (8·L, N·256 + i). Full tiles (W = 256) never change;
partial tiles exist only for the right edge. N is written in 3-digit groups, all but the last
prefixed with "x": 1234067 → x001/x234/067.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from ledger.exceptions import FormatError
from ledger.hashing import HASH_SIZE
from ledger.proofs import Coord

TILE_WIDTH = 256
TILE_HEIGHT = 8
MAX_ENTRY = 0xFFFF


@dataclass(frozen=True, order=True)
class Tile:
    level: int  # tile level L; -1 for an entry bundle
    n: int
    width: int = TILE_WIDTH

    @property
    def is_entries(self) -> bool:
        return self.level < 0

    @property
    def path(self) -> str:
        kind = "entries" if self.is_entries else str(self.level)
        suffix = "" if self.width == TILE_WIDTH else f".p/{self.width}"
        return f"tile/{kind}/{encode_index(self.n)}{suffix}"

    def coords(self) -> list[Coord]:
        """Stored-hash coordinates this hash tile holds, in order."""
        if self.is_entries:
            raise ValueError("an entry bundle holds entries, not hashes")
        base = self.n * TILE_WIDTH
        return [(TILE_HEIGHT * self.level, base + i) for i in range(self.width)]

    def entry_range(self) -> range:
        return range(self.n * TILE_WIDTH, self.n * TILE_WIDTH + self.width)


def encode_index(n: int) -> str:
    if n < 0:
        raise ValueError("negative tile index")
    groups = []
    while True:
        groups.append(f"{n % 1000:03d}")
        n //= 1000
        if n == 0:
            break
    groups.reverse()
    return "/".join(["x" + g for g in groups[:-1]] + [groups[-1]])


_PATH = re.compile(r"^tile/(entries|0|[1-9][0-9]*)/((?:x[0-9]{3}/)*[0-9]{3})(?:\.p/([0-9]+))?\Z")


def parse_tile_path(path: str) -> Tile:
    """Strict inverse of Tile.path; refuses non-canonical spellings."""
    m = _PATH.match(path)
    if not m:
        raise FormatError(f"not a tlog-tiles path: {path!r}")
    kind, index, width = m.groups()
    n = int(index.replace("x", "").replace("/", ""))
    if encode_index(n) != index:
        raise FormatError(f"non-canonical tile index {index!r}")
    w = TILE_WIDTH
    if width is not None:
        w = int(width)
        if not 1 <= w < TILE_WIDTH or str(w) != width:
            raise FormatError(f"partial tile width must be 1..255, got {width!r}")
    level = -1 if kind == "entries" else int(kind)
    if level > 63:
        raise FormatError(f"tile level {level} is too high")
    return Tile(level, n, w)


def tiles_for_size(size: int) -> list[Tile]:
    """Every hash tile and entry bundle of a tree of `size` leaves (full and partial)."""
    out: list[Tile] = []
    for n in range(size // TILE_WIDTH):
        out.append(Tile(-1, n))
    if size % TILE_WIDTH:
        out.append(Tile(-1, size // TILE_WIDTH, size % TILE_WIDTH))
    level = 0
    while True:
        count = size >> (TILE_HEIGHT * level)  # complete hashes at Merkle level 8·L
        if count == 0:
            break
        for n in range(count // TILE_WIDTH):
            out.append(Tile(level, n))
        if count % TILE_WIDTH:
            out.append(Tile(level, count // TILE_WIDTH, count % TILE_WIDTH))
        level += 1
    return out


def tile_exists(tile: Tile, size: int) -> bool:
    """Whether `tile` (with exactly this width) belongs to the tree of `size`, or is a full
    tile below its right edge (full tiles are immutable, so they stay valid forever)."""
    count = size if tile.is_entries else size >> (TILE_HEIGHT * tile.level)
    if tile.width == TILE_WIDTH:
        return (tile.n + 1) * TILE_WIDTH <= count
    return tile.n == count // TILE_WIDTH and tile.width <= count % TILE_WIDTH


def format_entry_bundle(entries: list[bytes]) -> bytes:
    parts = []
    for e in entries:
        if len(e) > MAX_ENTRY:
            raise FormatError(f"entry of {len(e)} bytes does not fit a tile bundle")
        parts += [struct.pack(">H", len(e)), e]
    return b"".join(parts)


def parse_entry_bundle(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise FormatError("entry bundle ends inside a length prefix")
        (n,) = struct.unpack_from(">H", data, pos)
        pos += 2
        if pos + n > len(data):
            raise FormatError("entry bundle ends inside an entry")
        out.append(data[pos : pos + n])
        pos += n
    return out


def parse_hash_tile(data: bytes, width: int) -> list[bytes]:
    if len(data) != width * HASH_SIZE:
        raise FormatError(f"hash tile is {len(data)} bytes, want {width} × {HASH_SIZE}")
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]
