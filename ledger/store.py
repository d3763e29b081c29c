"""Where the ledger keeps its entries and stored hashes.

`HashReader` is the one-method read interface the proof code needs. `MemoryStore` keeps a log in
memory (tests, and verification of a log fetched from elsewhere); the SQL store lives in
`ledger.sqlstore`.
"""

from __future__ import annotations

from typing import Protocol, Sequence

from ledger.exceptions import ProofError
from ledger.hashing import leaf_hash
from ledger.proofs import Coord
from ledger.tree import CompactRange


class HashReader(Protocol):
    """Returns the stored hash of each complete subtree asked for, in the order asked."""

    def read_hashes(self, coords: Sequence[Coord]) -> list[bytes]: ...


class MemoryStore:
    """An in-memory log: entries, stored hashes and the right edge."""

    def __init__(self) -> None:
        self.entries: list[bytes] = []
        self.hashes: dict[Coord, bytes] = {}
        self.range = CompactRange()

    @property
    def size(self) -> int:
        return self.range.size

    def append(self, data: bytes) -> int:
        index = self.range.size
        for level, n, h in self.range.append(leaf_hash(data)):
            self.hashes[(level, n)] = h
        self.entries.append(data)
        return index

    def root(self) -> bytes:
        return self.range.root()

    def read_hashes(self, coords: Sequence[Coord]) -> list[bytes]:
        try:
            return [self.hashes[c] for c in coords]
        except KeyError as e:
            raise ProofError(f"no stored hash at {e.args[0]}") from None
