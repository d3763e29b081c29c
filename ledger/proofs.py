"""Merkle inclusion and consistency proofs, RFC 9162 §2.1.3–2.1.4 (same trees as RFC 6962 §2.1).

Terms:
- a *coordinate* ``(level, n)`` names the complete subtree of 2**level leaves starting at leaf
  ``n * 2**level``. Its hash is stored once the subtree is complete, so the hash of any range in
  the RFC recursion is the fold of at most 2·log2(size) stored hashes;
- a :class:`~ledger.store.HashReader` returns the stored hashes of a list of coordinates.

Producers (`prove_inclusion`, `prove_consistency`, `tree_hash`) compute all coordinates first and
ask the reader once, so a proof for any index of any size costs O(log n) stored-hash reads and no
recomputation of the tree. Verifiers (`verify_inclusion`, `verify_consistency`) are the RFC 9162
algorithms, written step by step, and need nothing but their arguments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from ledger.exceptions import ProofError
from ledger.hashing import EMPTY_ROOT, HASH_SIZE, largest_power_of_two_below, node_hash

if TYPE_CHECKING:  # the store imports nothing from here, but keep the Protocol in one place
    from ledger.store import HashReader

Coord = tuple[int, int]
Range = tuple[int, int]


# --- ranges of the RFC recursion -------------------------------------------------------------


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """Leaf ranges whose tree hashes form PATH(index, D[size]) (RFC 6962 §2.1.1), leaf first."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    out: list[Range] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = largest_power_of_two_below(hi - lo)
        if index - lo < k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
    out.reverse()
    return out


def consistency_ranges(old_size: int, new_size: int) -> list[Range]:
    """Leaf ranges whose tree hashes form PROOF(old, D[new]) (RFC 6962 §2.1.2)."""
    if not 0 < old_size <= new_size:
        raise ProofError(f"no consistency proof from size {old_size} to size {new_size}")
    out: list[Range] = []
    m, lo, hi, complete = old_size, 0, new_size, True
    while True:
        n = hi - lo
        if m == n:
            if not complete:
                out.append((lo, hi))
            break
        k = largest_power_of_two_below(n)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
            m -= k
            complete = False
    out.reverse()
    return out


def range_coords(lo: int, hi: int) -> list[Coord]:
    """Stored subtrees covering [lo, hi), left to right, largest first.

    Valid for the ranges of the RFC recursion, whose start is aligned to a power of two at least
    as large as the range; their tree hash is the right-to-left fold of these subtrees.
    """
    if not 0 <= lo < hi:
        raise ProofError(f"empty or negative leaf range [{lo}, {hi})")
    coords: list[Coord] = []
    while lo < hi:
        level = (lo & -lo).bit_length() - 1 if lo else (hi - lo).bit_length()
        while (1 << level) > hi - lo:
            level -= 1
        coords.append((level, lo >> level))
        lo += 1 << level
    return coords


def fold(hashes: Sequence[bytes]) -> bytes:
    """Tree hash of a range from its stored subtrees (right-to-left fold)."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def _hashes_of_ranges(ranges: Sequence[Range], reader: "HashReader") -> list[bytes]:
    plans = [range_coords(lo, hi) for lo, hi in ranges]
    wanted = sorted({c for plan in plans for c in plan})
    got = dict(zip(wanted, reader.read_hashes(wanted)))
    if len(got) != len(wanted):
        raise ProofError("the hash reader returned fewer hashes than asked for")
    return [fold([got[c] for c in plan]) for plan in plans]


# --- producers --------------------------------------------------------------------------------


def tree_hash(size: int, reader: "HashReader") -> bytes:
    """MTH(D[size]) from stored hashes (at most log2(size)+1 reads)."""
    if size < 0:
        raise ProofError(f"negative tree size {size}")
    if size == 0:
        return EMPTY_ROOT
    return _hashes_of_ranges([(0, size)], reader)[0]


def prove_inclusion(index: int, size: int, reader: "HashReader") -> list[bytes]:
    """RFC 9162 §2.1.3.1 inclusion proof of leaf `index` in the tree of `size` leaves."""
    return _hashes_of_ranges(inclusion_ranges(index, size), reader)


def prove_consistency(old_size: int, new_size: int, reader: "HashReader") -> list[bytes]:
    """RFC 9162 §2.1.4.1 consistency proof from `old_size` to `new_size` (empty if equal)."""
    if old_size == new_size and old_size > 0:
        return []
    return _hashes_of_ranges(consistency_ranges(old_size, new_size), reader)


# --- verifiers --------------------------------------------------------------------------------


def _check_hashes(proof: Sequence[bytes], *named: tuple[str, bytes]) -> None:
    for name, h in named:
        if len(h) != HASH_SIZE:
            raise ProofError(f"{name} is {len(h)} bytes, not {HASH_SIZE}")
    for i, p in enumerate(proof):
        if len(p) != HASH_SIZE:
            raise ProofError(f"proof hash {i} is {len(p)} bytes, not {HASH_SIZE}")


def root_from_inclusion_proof(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """RFC 9162 §2.1.3.2 steps 1–3: the root implied by an inclusion proof."""
    _check_hashes(proof, ("leaf hash", leaf))
    if not 0 <= index < size:  # step 1
        raise ProofError(f"index {index} is not in a tree of size {size}")
    fn, sn, r = index, size - 1, leaf  # step 2
    for p in proof:  # step 3
        if sn == 0:
            raise ProofError(f"inclusion proof for {index} in {size} is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:  # step 4, first half
        raise ProofError(f"inclusion proof for {index} in {size} is too short")
    return r


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 §2.1.3.2: raise ProofError unless `leaf` is at `index` in the tree `root`."""
    _check_hashes(proof, ("root", root))
    if root_from_inclusion_proof(leaf, index, size, proof) != root:
        raise ProofError(f"inclusion proof for {index} in {size} does not lead to the root")


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """RFC 9162 §2.1.4.2: raise ProofError unless tree `new_root` extends tree `old_root`."""
    _check_hashes(proof, ("old root", old_root), ("new root", new_root))
    if old_size < 0 or new_size < old_size:
        raise ProofError(f"a tree of size {new_size} cannot extend one of size {old_size}")
    if old_size == new_size:
        if proof:
            raise ProofError("consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError(f"two different roots for size {old_size}")
        return
    if old_size == 0:
        if proof:
            raise ProofError("consistency proof from the empty tree must be empty")
        return
    if not proof:  # step 1
        raise ProofError(f"empty consistency proof from {old_size} to {new_size}")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # step 2: old_size is a power of two
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1  # step 3
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # step 4
    for c in path[1:]:  # step 5
        if sn == 0:
            raise ProofError(f"consistency proof from {old_size} to {new_size} is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:  # step 6
        raise ProofError(f"consistency proof from {old_size} to {new_size} is too short")
    if fr != old_root:
        raise ProofError(f"consistency proof does not lead to the root of size {old_size}")
    if sr != new_root:
        raise ProofError(f"consistency proof does not lead to the root of size {new_size}")
