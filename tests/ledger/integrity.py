"""Full integrity check of a stored log, recomputed from its entries (used by the stress tests).

Independent of the append path: it re-hashes every stored entry, rebuilds every stored hash and
every root from scratch, opens every stored checkpoint with the log's verifier key, and checks
that nothing half-written is visible (entries == state size == newest checkpoint size).
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.checkpoint import open_checkpoint
from ledger.entry import decode_entry
from ledger.hashing import leaf_hash, node_hash
from ledger.log import Log
from ledger.sqlstore import SqlLedgerStore, stores_level


@dataclass
class LogReport:
    size: int
    checkpoints: list[int]
    entries: list[bytes]


def check_log(log: Log) -> LogReport:
    """Raise AssertionError naming the first problem; return what was checked."""
    store: SqlLedgerStore = log.store
    verifier = log.verifier()
    head = store.head()
    checkpoints = list(store.checkpoints())
    sizes = [size for size, _, _ in checkpoints]
    assert sizes == sorted(set(sizes)), "checkpoint sizes are not strictly increasing"

    entries: list[bytes] = []
    expected_nodes: dict[tuple[int, int], bytes] = {}
    edge: list[bytes] = []
    roots: dict[int, bytes] = {}
    wanted = set(sizes)
    for index, data, stored_hash in store.iter_entries(chunk=5000):
        assert index == len(entries), f"entry {len(entries)} is missing (next stored: {index})"
        assert leaf_hash(data) == stored_hash, f"entry {index}: stored leaf hash is not its hash"
        decode_entry(data)  # canonical JSON object, exactly as hashed
        entries.append(data)
        h, n, level = stored_hash, index, 0
        while n & 1:
            h = node_hash(edge.pop(), h)
            n >>= 1
            level += 1
            if stores_level(level):  # the three lowest node levels are rebuilt, not stored
                expected_nodes[(level, n)] = h
        edge.append(h)
        if len(entries) in wanted:
            roots[len(entries)] = _fold(edge)

    size = len(entries)
    assert size == head.size, f"{size} entries stored but the state says {head.size}"
    assert sizes, "no checkpoint was signed" if size else True
    if size:
        assert sizes[-1] == size, f"newest checkpoint is for {sizes[-1]}, the log has {size}"
        assert _fold(edge) == head.root, "the state's root is not the root of the entries"

    for cp_size, root, note in checkpoints:
        cp, _ = open_checkpoint(note.encode(), verifier)
        assert cp.size == cp_size and cp.root == root, f"checkpoint row {cp_size} != its note"
        assert roots.get(cp_size) == root, f"checkpoint {cp_size}: root is not the entries' root"

    stored_nodes = {}
    for level in range(1, max(size, 1).bit_length() + 1):
        for n, h in store.iter_nodes(level):
            stored_nodes[(level, n)] = h
    missing = expected_nodes.keys() - stored_nodes.keys()
    extra = stored_nodes.keys() - expected_nodes.keys()
    assert not missing, f"stored hashes missing: {sorted(missing)[:5]}"
    assert not extra, f"stored hashes of incomplete subtrees: {sorted(extra)[:5]}"
    bad = [c for c, h in expected_nodes.items() if stored_nodes[c] != h]
    assert not bad, f"stored hashes differ from the recomputed ones: {sorted(bad)[:5]}"
    return LogReport(size, sizes, entries)


def _fold(edge: list[bytes]) -> bytes:
    acc = edge[-1]
    for h in reversed(edge[:-1]):
        acc = node_hash(h, acc)
    return acc
