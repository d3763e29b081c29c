"""One conformance suite for every ledger store (golang/mod sumdb/storage/test.go in spirit).

`TreeConformance` holds what every store must do with a Merkle log (MemoryStore included): any
sequence of batch sizes gives the roots, stored hashes and proofs of an independent, naive
RFC 6962 recomputation, and stored bytes come back exactly. `SqlConformance` adds what the SQL
store promises on top: a signed checkpoint per batch, each consistent with the one before,
proofs in O(log n) reads, bad input refused with the state intact, and readers that never block
the writer. Test modules subclass these with a `backend` / `sql_log` fixture per engine.
"""

from __future__ import annotations

import random
import threading
from typing import Protocol

import pytest
from sqlalchemy import event

from ledger.checkpoint import open_checkpoint
from ledger.entry import MAX_ENTRY_BYTES, encode_entry
from ledger.exceptions import EntryError, LedgerError, LedgerUnavailable
from ledger.hashing import leaf_hash, root_of_leaf_hashes
from ledger.log import Log, encode_row, prepare_rows
from ledger.note import Ed25519Signer
from ledger.proofs import (
    prove_consistency,
    prove_inclusion,
    verify_consistency,
    verify_inclusion,
)
from ledger.sqlstore import ConnectionHashReader, EntryMeta, SqlLedgerStore, TreeHead, metadata
from ledger.store import MemoryStore
from tests.ledger.integrity import check_log

BATCH_SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 16, 31, 64, 100, 255, 256, 257, 511, 1000]


# --- an independent reference: RFC 6962 §2.1 recursions over leaf hashes ---------------------


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 6962 §2.1.1, computed from scratch."""
    n = len(leaves)
    if n <= 1:
        return []
    k = _k(n)
    if m < k:
        return ref_path(m, leaves[:k]) + [root_of_leaf_hashes(leaves[k:])]
    return ref_path(m - k, leaves[k:]) + [root_of_leaf_hashes(leaves[:k])]


def ref_subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) of RFC 6962 §2.1.2, computed from scratch."""
    n = len(leaves)
    if m == n:
        return [] if complete else [root_of_leaf_hashes(leaves)]
    k = _k(n)
    if m <= k:
        return ref_subproof(m, leaves[:k], complete) + [root_of_leaf_hashes(leaves[k:])]
    return ref_subproof(m - k, leaves[k:], False) + [root_of_leaf_hashes(leaves[:k])]


def event_for(i: int, tag: str = "c") -> dict:
    return {
        "type": "test.conformance",
        "at": "2026-11-23T08:00:00.000Z",
        "actor": f"user-{i % 7}",
        "details": {"i": i, "tag": tag},
    }


def rows_for(start: int, count: int, tag: str = "c") -> list[tuple[bytes, EntryMeta]]:
    return [encode_row(event_for(i, tag)) for i in range(start, start + count)]


# --- backends ------------------------------------------------------------------------------------


class Backend(Protocol):
    def append(self, entries: list[tuple[bytes, EntryMeta]]) -> int: ...
    def head(self) -> TreeHead: ...
    def stored(self) -> list[tuple[bytes, bytes]]: ...
    def inclusion_proof(self, index: int, size: int) -> list[bytes]: ...
    def consistency_proof(self, old: int, new: int) -> list[bytes]: ...
    def read_hashes(self, coords: list[tuple[int, int]]) -> list[bytes]: ...


class MemoryBackend:
    def __init__(self) -> None:
        self.store = MemoryStore()

    def append(self, entries: list[tuple[bytes, EntryMeta]]) -> int:
        first = self.store.size
        for data, _ in entries:
            self.store.append(data)
        return first

    def head(self) -> TreeHead:
        return TreeHead(self.store.size, self.store.root())

    def stored(self) -> list[tuple[bytes, bytes]]:
        return [(d, self.store.hashes[(0, i)]) for i, d in enumerate(self.store.entries)]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return prove_inclusion(index, size, self.store)

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        return prove_consistency(old, new, self.store)

    def read_hashes(self, coords: list[tuple[int, int]]) -> list[bytes]:
        return self.store.read_hashes(coords)


class SqlBackend:
    """A Log whose batches are sequenced in this process (Log.commit_local → append_batch)."""

    def __init__(self, log: Log):
        self.log = log

    def append(self, entries: list[tuple[bytes, EntryMeta]]) -> int:
        return self.log.commit_local(entries)

    def head(self) -> TreeHead:
        return self.log.store.head()

    def stored(self) -> list[tuple[bytes, bytes]]:
        return [(d, h) for _, d, h in self.log.store.entries(0, self.head().size)]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return self.log.store.inclusion_proof(index, size)

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        return self.log.store.consistency_proof(old, new)

    def read_hashes(self, coords: list[tuple[int, int]]) -> list[bytes]:
        return self.log.store.read_hashes(coords)


# --- what every store does -----------------------------------------------------------------------


class TreeConformance:
    """Needs a `backend` fixture giving an empty log."""

    def test_batches_of_many_sizes_match_reference(self, backend: Backend) -> None:
        leaves: list[bytes] = []
        for batch in BATCH_SIZES:
            first = backend.append(rows_for(len(leaves), batch))
            assert first == len(leaves)
            leaves += [leaf_hash(d) for d, _ in rows_for(len(leaves), batch)]
            head = backend.head()
            assert head.size == len(leaves)
            assert head.root == root_of_leaf_hashes(leaves), f"root after a batch of {batch}"
        # every complete subtree's stored hash is the hash recomputed from its leaves
        rng = random.Random(3)
        for level in range(1, len(leaves).bit_length()):
            count = len(leaves) >> level
            for n in rng.sample(range(count), min(count, 8)):
                want = root_of_leaf_hashes(leaves[n << level : (n + 1) << level])
                assert backend.read_hashes([(level, n)]) == [want]

    def test_proofs_match_recomputation(self, backend: Backend) -> None:
        rng = random.Random(11)
        leaves: list[bytes] = []
        sizes = []
        while len(leaves) < 600:
            rows = rows_for(len(leaves), rng.choice([1, 2, 3, 17, 64, 100]))
            backend.append(rows)
            leaves += [leaf_hash(d) for d, _ in rows]
            sizes.append(len(leaves))
        for size in sizes[:: max(1, len(sizes) // 12)] + [len(leaves)]:
            root = root_of_leaf_hashes(leaves[:size])
            for index in {0, size - 1, size // 2, rng.randrange(size)}:
                proof = backend.inclusion_proof(index, size)
                assert proof == ref_path(index, leaves[:size])
                verify_inclusion(leaves[index], index, size, proof, root)
            for old in {1, size // 3 or 1, rng.randrange(1, size + 1), size}:
                proof = backend.consistency_proof(old, size)
                assert proof == ref_subproof(old, leaves[:size], True)
                verify_consistency(old, size, proof, root_of_leaf_hashes(leaves[:old]), root)

    def test_stored_bytes_come_back_exactly_and_rehash(self, backend: Backend) -> None:
        events = [
            {"type": "dataset.registered", "details": {"name": "人口普查 2020", "grade": "一般"}},
            {"type": "query", "details": {"emoji": "🧮", "quote": 'a"b\\c', "ctl": "\u0001\n"}},
            {"type": "query", "details": {"big": 2**53 - 1, "neg": -1, "nested": [[], {}]}},
            {"type": "query", "details": {"pad": "x" * (MAX_ENTRY_BYTES - 200)}},
        ]
        rows = [encode_row(e) for e in events]
        backend.append(rows)
        stored = backend.stored()
        assert [d for d, _ in stored] == [d for d, _ in rows]
        for data, h in stored:
            assert isinstance(data, bytes) and leaf_hash(data) == h


# --- what the SQL store adds ------------------------------------------------------------------


def _state(log: Log) -> tuple:
    """Everything a refused append must leave untouched."""
    return (
        log.store.head(),
        log.store.count_entries(),
        [s for s, _, _ in log.store.checkpoints()],
        log.guard.read(),
    )


class SqlConformance(TreeConformance):
    """Needs a `sql_log` fixture giving an initialized, empty `Log`."""

    @pytest.fixture
    def backend(self, sql_log: Log) -> SqlBackend:
        return SqlBackend(sql_log)

    def test_every_checkpoint_is_signed_and_consistent_with_the_previous(
        self, sql_log: Log
    ) -> None:
        verifier = sql_log.verifier()
        previous = None
        for batch in [1, 3, 8, 250, 2, 1000]:
            sql_log.commit_local(rows_for(sql_log.store.head().size, batch))
            note = sql_log.store.latest_checkpoint()
            cp, _ = open_checkpoint(note, verifier)
            assert (cp.size, cp.root) == (sql_log.store.head().size, sql_log.store.head().root)
            assert sql_log.guard.read() == TreeHead(cp.size, cp.root)
            if previous:
                proof = sql_log.store.consistency_proof(previous.size, cp.size)
                verify_consistency(previous.size, cp.size, proof, previous.root, cp.root)
            previous = cp
        report = check_log(sql_log)
        assert report.checkpoints == [1, 4, 12, 262, 264, 1264]

    def test_appender_gives_contiguous_indices_per_request(self, sql_log: Log) -> None:
        assert sql_log.append(event_for(0)) == 0
        assert sql_log.append_many([event_for(i) for i in range(1, 40)]) == list(range(1, 40))
        futures = [sql_log.appender().append_async(event_for(i)) for i in range(40, 90)]
        assert sorted(f.result() for f in futures) == list(range(40, 90))
        assert check_log(sql_log).size == 90

    def test_proofs_need_logarithmic_reads(self, sql_log: Log, monkeypatch) -> None:
        size = 0
        while size < 5000:
            sql_log.commit_local(rows_for(size, 777))
            size += 777
        statements: list[str] = []
        asked: list[int] = []
        event.listen(
            sql_log.store.reader, "before_cursor_execute",
            lambda conn, cur, stmt, *a: statements.append(stmt),
        )
        real = ConnectionHashReader.read_hashes

        def counting(self, coords):  # type: ignore[no-untyped-def]
            asked.append(len(set(coords)))
            return real(self, coords)

        monkeypatch.setattr(ConnectionHashReader, "read_hashes", counting)
        bound = 2 * size.bit_length() + 2
        rng = random.Random(5)
        for index in [0, 1, size - 1, *rng.sample(range(size), 40)]:
            statements.clear()
            asked.clear()
            sql_log.store.inclusion_proof(index, size)
            assert len(asked) == 1 and asked[0] <= bound, (index, asked)
            hash_reads = [s for s in statements if "ledger_nodes" in s or "ledger_entries" in s]
            assert len(hash_reads) == 1 and len(statements) <= 3, statements
        for old in [1, 2, 1000, 4097, size - 1]:
            statements.clear()
            asked.clear()
            sql_log.store.consistency_proof(old, size)
            assert len(asked) == 1 and asked[0] <= bound and len(statements) <= 3

    @pytest.mark.parametrize(
        "bad, message",
        [
            (["not", "an", "object"], "JSON object"),
            ({"actor": "a"}, "type"),
            ({"type": "Not A Type"}, "type"),
            ({"type": "query", "at": "yesterday"}, "at"),
            ({"type": "query\n"}, "type"),  # `$` alone would let a trailing newline through
            ({"type": "query", "at": "\u0662\u0660\u0662\u0666-11-23T08:00:00.000Z"}, "at"),
            ({"type": "query", "at": "2026-11-23T08:00:00.000Z\n"}, "at"),
            ({"type": "query", "details": {"blob": "a" * (MAX_ENTRY_BYTES + 1)}}, "limit"),
        ],
    )
    def test_bad_events_are_refused_with_state_intact(self, sql_log: Log, bad, message) -> None:
        sql_log.append_many([event_for(i) for i in range(5)])
        before = _state(sql_log)
        with pytest.raises(EntryError, match=message):
            sql_log.append(bad)
        with pytest.raises(EntryError, match=message):
            sql_log.append_many([event_for(9), bad])  # all or nothing
        assert _state(sql_log) == before
        assert sql_log.append(event_for(5)) == 5
        check_log(sql_log)

    @pytest.mark.parametrize(
        "raw, message",
        [
            (b"not json", "not JSON"),
            (b"[1,2]", "JSON object"),
            (b'{"at":"2026-11-23T08:00:00.000Z"}', "type"),
            (b'{"type":"query"}', "at"),
            (b'{"type":"query\\n","at":"2026-11-23T08:00:00.000Z"}', "type"),
            (b'{"type":"query","at":"2026-11-23T08:00:00.000Z\\n"}', "at"),
            (b'{"type":"query","at":"2026-11-23T08:00:00.000Z","n":NaN}', "not JSON"),
            (b'{"type":"query","at":"2026-11-23T08:00:00.000Z","s":"\xff"}', "not JSON"),
            (b'["type","query"]', "JSON object"),
            (b'{"type":"q","at":"2026-11-23T08:00:00.000Z","x":"' + b"a" * MAX_ENTRY_BYTES
             + b'"}', "limit"),
        ],
    )
    def test_bad_bytes_are_refused_at_the_sequencer_boundary(
        self, sql_log: Log, raw: bytes, message: str
    ) -> None:
        sql_log.append(event_for(0))
        before = _state(sql_log)
        with pytest.raises(EntryError, match=message):
            prepare_rows([encode_entry(event_for(1)), raw])
        big = (raw, EntryMeta("query", "2026-11-23T08:00:00.000Z", None))
        if len(raw) > MAX_ENTRY_BYTES:
            with pytest.raises(EntryError, match="limit"):
                sql_log.commit_local([big])
        assert _state(sql_log) == before

    def test_wrong_key_is_refused_with_state_intact(self, sql_log: Log) -> None:
        sql_log.append(event_for(0))
        before = _state(sql_log)
        impostor = Ed25519Signer.generate(sql_log.config.origin)  # same name, other key
        with pytest.raises(LedgerError, match="not this log's key"):
            sql_log.store.append_batch(rows_for(1, 3), impostor, sql_log.guard.read())
        assert _state(sql_log) == before
        sql_log._signer = impostor  # a process configured with the wrong key file
        with pytest.raises(LedgerError, match="not this log's key"):
            sql_log.append(event_for(1))
        assert _state(sql_log) == before

    def test_wrong_origin_is_refused_with_state_intact(self, sql_log: Log) -> None:
        sql_log.append(event_for(0))
        before = _state(sql_log)
        other = SqlLedgerStore(sql_log.config.database_url, "other.example/log")
        try:
            signer = Ed25519Signer.generate("other.example/log")
            with pytest.raises(LedgerError, match="holds the log"):
                other.append_batch(rows_for(1, 2), signer, None)
            with pytest.raises(LedgerError, match="holds the log"):
                other.create(signer.vkey())
        finally:
            other.close()
        with pytest.raises(LedgerError, match="is not the log"):
            sql_log.store.append_batch(rows_for(1, 2), Ed25519Signer.generate("x.y/z"), None)
        assert _state(sql_log) == before

    def test_not_initialized_log_is_refused(self, sql_log: Log, fresh_url: str) -> None:
        store = SqlLedgerStore(fresh_url, sql_log.config.origin)
        try:
            with pytest.raises(LedgerError, match="not initialized"):
                store.head()
            with pytest.raises(LedgerError, match="not initialized"):
                store.append_batch(rows_for(0, 1), sql_log.signer(), None)
            metadata.create_all(store.writer)  # tables, but no state row
            with pytest.raises(LedgerError, match="not initialized"):
                store.append_batch(rows_for(0, 1), sql_log.signer(), None)
            assert store.count_entries() == 0
        finally:
            store.close()

    def test_readers_never_block_the_writer(self, sql_log: Log) -> None:
        sql_log.append_many([event_for(i) for i in range(10)])
        done = threading.Event()
        with sql_log.store.reader.connect() as reader:
            seen = reader.exec_driver_sql("SELECT size FROM ledger_state").scalar()
            assert seen == 10
            # the read transaction stays open while another thread appends and commits
            worker = threading.Thread(
                target=lambda: (sql_log.commit_local(rows_for(10, 50)), done.set())
            )
            worker.start()
            worker.join(45)
            assert done.is_set(), "the writer was blocked by an open reader"
            self.check_reader_after_commit(reader, seen)
        assert sql_log.store.head().size == 60

    def check_reader_after_commit(self, reader, seen: int) -> None:  # type: ignore[no-untyped-def]
        """Engine-specific: what an open read transaction sees after a commit."""

    @pytest.mark.parametrize(
        "size, statement",
        [
            (6, "UPDATE ledger_entries SET leaf_hash = {zero} WHERE idx = 0"),  # under a derived node
            (20, "UPDATE ledger_nodes SET hash = {zero} WHERE level = 4 AND idx = 0"),
        ],
    )
    def test_stored_hash_of_altered_database_is_refused(
        self, sql_log: Log, size: int, statement: str
    ) -> None:
        sql_log.append_many([event_for(i) for i in range(size)])
        zero = ("X'" + "00" * 32 + "'" if sql_log.store.is_sqlite
                else "'\\x" + "00" * 32 + "'::bytea")
        with sql_log.store.writer.begin() as conn:  # an attacker edits a stored hash
            assert conn.exec_driver_sql(statement.format(zero=zero)).rowcount == 1
        before = _state(sql_log)
        with pytest.raises(LedgerError, match="altered|does not extend"):
            sql_log.append(event_for(size))
        assert _state(sql_log) == before


    @pytest.mark.parametrize("table", ["ledger_entries", "ledger_checkpoints"])
    def test_a_database_that_refuses_a_row_fails_the_batch_and_keeps_nothing(
        self, sql_log: Log, table: str
    ) -> None:
        """The append's statements go to the driver's own cursor: its errors still come out as
        LedgerUnavailable, the transaction is rolled back and the log goes on afterwards."""
        sql_log.append_many([event_for(i) for i in range(5)])
        if sql_log.store.is_sqlite:
            create = [f"CREATE TRIGGER refuse BEFORE INSERT ON {table} "
                      "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"]
            drop = ["DROP TRIGGER refuse"]
        else:
            create = ["CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                      "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
                      f"CREATE TRIGGER refuse BEFORE INSERT ON {table} "
                      "FOR EACH ROW EXECUTE FUNCTION refuse()"]
            drop = [f"DROP TRIGGER refuse ON {table}", "DROP FUNCTION refuse()"]
        with sql_log.store.writer.begin() as conn:
            for statement in create:
                conn.exec_driver_sql(statement)
        before = _state(sql_log)
        with pytest.raises(LedgerUnavailable, match="refused by the test"):
            sql_log.commit_local(rows_for(5, 3))
        assert _state(sql_log) == before
        with sql_log.store.writer.begin() as conn:
            for statement in drop:
                conn.exec_driver_sql(statement)
        sql_log.commit_local(rows_for(5, 3))
        assert sql_log.store.head().size == 8
        check_log(sql_log)  # raises on the first problem
