"""RFC 6962 / RFC 9162 §2.1.1 Merkle tree hashing.

    MTH({})      = SHA-256()
    leaf hash    = SHA-256(0x00 ‖ entry bytes)
    node hash    = SHA-256(0x01 ‖ left ‖ right)

Every hash is 32 bytes. Functions here are pure and check their inputs.
"""

from __future__ import annotations

from hashlib import sha256

HASH_SIZE = 32
EMPTY_ROOT = sha256(b"").digest()
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """Hash of one log entry (RFC 9162 §2.1.1, leaf)."""
    return sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash of an interior node from its two children (RFC 9162 §2.1.1, node)."""
    if len(left) != HASH_SIZE or len(right) != HASH_SIZE:
        raise ValueError("node_hash needs two 32-byte hashes")
    return sha256(_NODE_PREFIX + left + right).digest()


def largest_power_of_two_below(n: int) -> int:
    """k of RFC 9162 §2.1.1: the largest power of two strictly smaller than n (n ≥ 2)."""
    if n < 2:
        raise ValueError(f"no power of two splits a tree of size {n}")
    return 1 << ((n - 1).bit_length() - 1)


def root_of_leaf_hashes(hashes: list[bytes]) -> bytes:
    """MTH computed from scratch from leaf hashes (reference implementation, O(n))."""
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]
