"""Appending leaves to an RFC 6962 tree kept as its stored hashes.

A tree of `size` leaves is summarised by its *right edge*: the hashes of the maximal complete
subtrees covering [0, size), one per set bit of `size`, largest first (a "compact range").
Appending a leaf yields the new stored hashes (the leaf, and every subtree it completes), so the
store never recomputes anything it already holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.hashing import EMPTY_ROOT, node_hash
from ledger.proofs import Coord


def right_edge_coords(size: int) -> list[Coord]:
    """Coordinates of the maximal complete subtrees covering [0, size), largest first."""
    coords: list[Coord] = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            coords.append((level, start >> level))
            start += 1 << level
    return coords


@dataclass
class CompactRange:
    """The right edge of a tree; `append` returns the stored hashes each new leaf creates."""

    size: int = 0
    edge: list[bytes] = field(default_factory=list)  # one hash per set bit of size, largest first

    def __post_init__(self) -> None:
        if len(self.edge) != bin(self.size).count("1"):
            raise ValueError(f"a right edge of size {self.size} needs {self.size.bit_count()} hashes")

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; return (level, n, hash) of the leaf and every subtree it completes."""
        index = self.size
        created = [(0, index, leaf)]
        h, level = leaf, 0
        while (index >> level) & 1:  # the new node is a right child: merge with its left sibling
            h = node_hash(self.edge.pop(), h)
            level += 1
            created.append((level, index >> level, h))
        self.edge.append(h)
        self.size += 1
        return created

    def root(self) -> bytes:
        """MTH of the tree so far: the right-to-left fold of the edge."""
        if not self.edge:
            return EMPTY_ROOT
        acc = self.edge[-1]
        for h in reversed(self.edge[:-1]):
            acc = node_hash(h, acc)
        return acc
