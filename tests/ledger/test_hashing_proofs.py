"""RFC 6962 / 9162 known answers and properties of our Merkle proofs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.exceptions import ProofError
from ledger.hashing import EMPTY_ROOT, leaf_hash, node_hash, root_of_leaf_hashes
from ledger.proofs import (
    prove_consistency,
    prove_inclusion,
    tree_hash,
    verify_consistency,
    verify_inclusion,
)
from ledger.store import MemoryStore

# transparency-dev/merkle testonly vectors (RFC 6962 test data)
LEAVES = [bytes.fromhex(x) for x in
          ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
           "606162636465666768696a6b6c6d6e6f"]]
ROOTS = {
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}


def store_of(n: int) -> MemoryStore:
    s = MemoryStore()
    for i in range(n):
        s.append(LEAVES[i] if n <= 8 else i.to_bytes(8, "big"))
    return s


def test_empty_tree_root() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert tree_hash(0, MemoryStore()) == EMPTY_ROOT


@pytest.mark.parametrize("n", range(1, 9))
def test_known_roots(n: int) -> None:
    s = store_of(n)
    assert s.root().hex() == ROOTS[n]
    assert tree_hash(n, s).hex() == ROOTS[n]
    assert root_of_leaf_hashes([leaf_hash(x) for x in LEAVES[:n]]).hex() == ROOTS[n]


def test_known_proofs() -> None:
    s = store_of(8)
    assert [h.hex()[:8] for h in prove_inclusion(0, 8, s)] == ["96a296d2", "5f083f0a", "6b47aaf2"]
    assert [h.hex()[:8] for h in prove_consistency(2, 8, s)] == ["5f083f0a", "6b47aaf2"]


def test_node_hash_refuses_short_input() -> None:
    with pytest.raises(ValueError):
        node_hash(b"x", EMPTY_ROOT)


def test_all_proofs_small_trees() -> None:
    s = store_of(70)
    roots = [EMPTY_ROOT] + [tree_hash(n, s) for n in range(1, 71)]
    for n in range(1, 71):
        for i in range(n):
            verify_inclusion(s.hashes[(0, i)], i, n, prove_inclusion(i, n, s), roots[n])
        for m in range(1, n + 1):
            verify_consistency(m, n, prove_consistency(m, n, s), roots[m], roots[n])


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_inclusion_property(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 3000))
    i = data.draw(st.integers(0, n - 1))
    s = store_of(n)
    proof = prove_inclusion(i, n, s)
    root = s.root()
    verify_inclusion(s.hashes[(0, i)], i, n, proof, root)
    # any change to the proof, the index or the leaf is refused
    with pytest.raises(ProofError):
        verify_inclusion(leaf_hash(b"other"), i, n, proof, root)
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        bad = list(proof)
        bad[k] = bytes([bad[k][0] ^ 1]) + bad[k][1:]
        with pytest.raises(ProofError):
            verify_inclusion(s.hashes[(0, i)], i, n, bad, root)
        with pytest.raises(ProofError):
            verify_inclusion(s.hashes[(0, i)], i, n, proof[:-1], root)
    with pytest.raises(ProofError):
        verify_inclusion(s.hashes[(0, i)], i, n, proof + [root], root)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_consistency_property(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 3000))
    m = data.draw(st.integers(1, n))
    s = store_of(n)
    old, new = tree_hash(m, s), s.root()
    proof = prove_consistency(m, n, s)
    verify_consistency(m, n, proof, old, new)
    if m < n:
        with pytest.raises(ProofError):
            verify_consistency(m, n, proof, leaf_hash(b"x"), new)
        with pytest.raises(ProofError):
            verify_consistency(m, n, proof, old, leaf_hash(b"x"))
        with pytest.raises(ProofError):
            verify_consistency(m, n, proof[:-1], old, new)
        if m > 1:
            with pytest.raises(ProofError):
                verify_consistency(m - 1, n, proof, old, new)


def test_proofs_need_only_logarithmic_reads() -> None:
    class CountingReader:
        def __init__(self, inner: MemoryStore):
            self.inner, self.calls, self.hashes = inner, 0, 0

        def read_hashes(self, coords):  # type: ignore[no-untyped-def]
            self.calls += 1
            self.hashes += len(coords)
            return self.inner.read_hashes(coords)

    s = store_of(5000)
    r = CountingReader(s)
    prove_inclusion(1234, 4999, r)
    prove_consistency(1234, 4999, r)
    assert r.calls == 2
    assert r.hashes <= 4 * 13  # 2·log2(n) per proof


def test_bad_arguments_are_refused() -> None:
    s = store_of(8)
    with pytest.raises(ProofError):
        prove_inclusion(8, 8, s)
    with pytest.raises(ProofError):
        prove_consistency(5, 4, s)
    with pytest.raises(ProofError):
        verify_inclusion(b"short", 0, 1, [], EMPTY_ROOT)
    with pytest.raises(ProofError):
        verify_consistency(4, 8, [], EMPTY_ROOT, EMPTY_ROOT)
