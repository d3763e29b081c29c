"""The ledger's durable store: entries, stored hashes and signed checkpoints in SQL.

Tables (SQLAlchemy Core; SQLite by default, PostgreSQL by URL):
- ``ledger_entries``: index, the exact leaf bytes, their leaf hash, and a few columns copied out of
  the entry for filtering (type, at, actor). The bytes are re-hashed whenever they are read for
  verification or export;
- ``ledger_nodes``: the hash of every complete subtree above the leaves, keyed by (level, n);
  together with the leaf hashes these are Go tlog's "stored hashes", just under two per entry, so
  any proof needs O(log n) reads;
- ``ledger_state``: one row, the current size and root;
- ``ledger_checkpoints``: every checkpoint the log signed (one per batch), with its note;
- ``ledger_cosignatures``: witness cosignature lines for those checkpoints;
- ``ledger_witnesses``: the witnesses this log asks for cosignatures.

One sequencer per log: a batch is appended inside one transaction that first takes the database's
write lock (SQLite ``BEGIN IMMEDIATE``; PostgreSQL ``pg_advisory_xact_lock``). Before signing, the
new tree is proven consistent with the last checkpoint this log signed (kept outside the database
by :class:`~ledger.guard.SignedHeadGuard`), so a rolled-back or altered database makes the
sequencer refuse to append instead of signing a fork.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.exceptions import InconsistentTreeError, LedgerError, LedgerUnavailable, ProofError
from ledger.hashing import EMPTY_ROOT, leaf_hash
from ledger.note import Signer, parse_signature_line
from ledger.proofs import Coord, prove_consistency, prove_inclusion, tree_hash, verify_consistency
from ledger.tree import CompactRange, right_edge_coords

_BigInt = BigInteger().with_variant(Integer, "sqlite")
PG_LOCK_KEY = 0x5348_5559_4C45_4447 & 0x7FFF_FFFF_FFFF_FFFF  # "SHUYLEDG"

metadata = MetaData()

entries_t = Table(
    "ledger_entries",
    metadata,
    Column("idx", _BigInt, primary_key=True, autoincrement=False),
    Column("data", LargeBinary, nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("type", String(120), nullable=False, index=True),
    Column("at", String(24), nullable=False, index=True),
    Column("actor", String(200), nullable=True, index=True),
)
nodes_t = Table(
    "ledger_nodes",
    metadata,
    Column("level", SmallInteger, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
    sqlite_with_rowid=False,
)
state_t = Table(
    "ledger_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("origin", String(200), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("root", LargeBinary(32), nullable=False),
)
checkpoints_t = Table(
    "ledger_checkpoints",
    metadata,
    Column("size", _BigInt, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("signed_at", BigInteger, nullable=False),
)
cosignatures_t = Table(
    "ledger_cosignatures",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("witness", String(200), primary_key=True),
    Column("key_id", BigInteger, primary_key=True, autoincrement=False),
    Column("line", Text, nullable=False),
    Column("cosigned_at", BigInteger, nullable=False),
)
witnesses_t = Table(
    "ledger_witnesses",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("vkey", Text, nullable=False),
    Column("url", Text, nullable=True),
)


def make_engines(url: str) -> tuple[Engine, Engine]:
    """(writer, reader) engines. SQLite: WAL, synchronous=FULL, writer transactions IMMEDIATE."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        writer = create_engine(url, connect_args={"timeout": 60}, pool_size=1, max_overflow=0)
        reader = create_engine(url, connect_args={"timeout": 60})
        for engine, immediate in ((writer, True), (reader, False)):
            _sqlite_setup(engine, immediate)
        return writer, reader
    engine = create_engine(url, pool_pre_ping=True, pool_size=5)
    return engine, engine


def _sqlite_setup(engine: Engine, immediate: bool) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class ConnectionHashReader:
    """HashReader over one connection (sees the connection's own uncommitted rows)."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def read_hashes(self, coords: Sequence[Coord]) -> list[bytes]:
        leaves = [n for level, n in coords if level == 0]
        inner = [(level, n) for level, n in coords if level > 0]
        found: dict[Coord, bytes] = {}
        for chunk in _chunks(leaves, 500):
            q = select(entries_t.c.idx, entries_t.c.leaf_hash).where(entries_t.c.idx.in_(chunk))
            found.update({(0, i): h for i, h in self.conn.execute(q)})
        for chunk in _chunks(inner, 500):
            q = select(nodes_t.c.level, nodes_t.c.idx, nodes_t.c.hash).where(
                tuple_(nodes_t.c.level, nodes_t.c.idx).in_(chunk)
            )
            found.update({(lv, i): h for lv, i, h in self.conn.execute(q)})
        try:
            return [bytes(found[c]) for c in coords]
        except KeyError as e:
            raise ProofError(f"the store has no hash for subtree {e.args[0]}") from None


def _chunks(items: list, n: int) -> Iterator[list]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


@dataclass(frozen=True)
class TreeHead:
    size: int
    root: bytes


@dataclass(frozen=True)
class EntryMeta:
    type: str
    at: str
    actor: str | None


class SqlLedgerStore:
    """Reads and batch-appends one log in a SQL database."""

    def __init__(self, url: str, origin: str):
        self.url = url
        self.origin = origin
        self.writer, self.reader = make_engines(url)
        self.is_sqlite = url.startswith("sqlite")

    # --- setup --------------------------------------------------------------------------

    def create(self) -> None:
        """Create tables and the empty tree state (idempotent; refuses another origin)."""
        metadata.create_all(self.writer)
        with self.writer.begin() as conn:
            self._lock(conn)
            row = conn.execute(select(state_t.c.origin)).first()
            if row is None:
                conn.execute(insert(state_t).values(id=1, origin=self.origin, size=0, root=EMPTY_ROOT))
            elif row.origin != self.origin:
                raise LedgerError(
                    f"this database holds the log {row.origin!r}, not {self.origin!r}"
                )

    def close(self) -> None:
        self.writer.dispose()
        if self.reader is not self.writer:
            self.reader.dispose()

    def _lock(self, conn: Connection) -> None:
        if not self.is_sqlite:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_LOCK_KEY})

    # --- appending ----------------------------------------------------------------------

    def append_batch(
        self,
        batch: Sequence[tuple[bytes, EntryMeta]],
        signer: Signer,
        last_signed: TreeHead | None,
    ) -> tuple[int, TreeHead, bytes]:
        """Append entries in one transaction and sign one checkpoint for the new tree.

        Returns (index of the first entry, new head, signed checkpoint note). `last_signed` is
        the newest head this log is known to have signed; the new tree must extend it.
        """
        if not batch:
            raise LedgerError("empty batch")
        if signer.name != self.origin:
            raise LedgerError(f"signing key {signer.name!r} is not the log {self.origin!r}")
        try:
            with self.writer.begin() as conn:
                self._lock(conn)
                state = conn.execute(select(state_t.c.size, state_t.c.root)).first()
                if state is None:
                    raise LedgerError("the ledger is not initialized (run `shuyu ledger init`)")
                size = state.size
                reader = ConnectionHashReader(conn)
                edge = reader.read_hashes(right_edge_coords(size)) if size else []
                cr = CompactRange(size, edge)
                if cr.root() != bytes(state.root):
                    raise InconsistentTreeError(
                        f"stored hashes do not match the stored root at size {size}"
                    )
                first = size
                entry_rows, node_rows = [], []
                for data, meta in batch:
                    created = cr.append(leaf_hash(data))
                    entry_rows.append(
                        {"idx": created[0][1], "data": data, "leaf_hash": created[0][2],
                         "type": meta.type, "at": meta.at, "actor": meta.actor}
                    )
                    node_rows.extend(
                        {"level": lv, "idx": n, "hash": h} for lv, n, h in created[1:]
                    )
                conn.execute(insert(entries_t), entry_rows)
                if node_rows:
                    conn.execute(insert(nodes_t), node_rows)
                head = TreeHead(cr.size, cr.root())
                self._check_extends(reader, last_signed, head)
                note = sign_checkpoint(Checkpoint(self.origin, head.size, head.root), signer)
                conn.execute(
                    insert(checkpoints_t).values(
                        size=head.size, root=head.root, note=note.decode(), signed_at=int(time.time())
                    )
                )
                conn.execute(update(state_t).values(size=head.size, root=head.root))
        except OperationalError as e:
            raise LedgerUnavailable(f"ledger database unavailable: {e.orig}") from e
        return first, head, note

    @staticmethod
    def _check_extends(reader: ConnectionHashReader, old: TreeHead | None, new: TreeHead) -> None:
        """Refuse to sign `new` unless it is consistent with the last signed head `old`."""
        if old is None or old.size == 0:
            return
        if old.size > new.size:
            raise InconsistentTreeError(
                f"the log once signed size {old.size} but the database now ends before "
                f"{new.size}: it was truncated or rolled back; refusing to sign"
            )
        proof = prove_consistency(old.size, new.size, reader)
        try:
            verify_consistency(old.size, new.size, proof, old.root, new.root)
        except ProofError as e:
            raise InconsistentTreeError(
                f"the new tree of size {new.size} does not extend the signed tree of size "
                f"{old.size} ({e}); refusing to sign a fork"
            ) from None

    # --- reading ------------------------------------------------------------------------

    def head(self) -> TreeHead:
        with self.reader.connect() as conn:
            row = conn.execute(select(state_t.c.size, state_t.c.root)).first()
        if row is None:
            raise LedgerError("the ledger is not initialized (run `shuyu ledger init`)")
        return TreeHead(row.size, bytes(row.root))

    def latest_checkpoint(self) -> bytes | None:
        with self.reader.connect() as conn:
            note = conn.execute(
                select(checkpoints_t.c.note).order_by(checkpoints_t.c.size.desc()).limit(1)
            ).scalar()
        return note.encode() if note else None

    def checkpoint_at(self, size: int) -> bytes | None:
        with self.reader.connect() as conn:
            note = conn.execute(
                select(checkpoints_t.c.note).where(checkpoints_t.c.size == size)
            ).scalar()
        return note.encode() if note else None

    def checkpoints(self) -> Iterator[tuple[int, bytes, str]]:
        """Every signed checkpoint: (size, root, note), smallest first."""
        with self.reader.connect() as conn:
            rows = conn.execute(
                select(checkpoints_t.c.size, checkpoints_t.c.root, checkpoints_t.c.note)
                .order_by(checkpoints_t.c.size)
            )
            for size, root, note in rows:
                yield size, bytes(root), note

    def read_hashes(self, coords: Sequence[Coord]) -> list[bytes]:
        with self.reader.connect() as conn:
            return ConnectionHashReader(conn).read_hashes(coords)

    def tree_hash(self, size: int) -> bytes:
        with self.reader.connect() as conn:
            return tree_hash(size, ConnectionHashReader(conn))

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        self._check_size(size)
        with self.reader.connect() as conn:
            return prove_inclusion(index, size, ConnectionHashReader(conn))

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        self._check_size(new)
        with self.reader.connect() as conn:
            return prove_consistency(old, new, ConnectionHashReader(conn))

    def _check_size(self, size: int) -> None:
        current = self.head().size
        if size > current:
            raise ProofError(f"the log has {current} entries, not {size}")

    def entries(self, start: int, end: int) -> list[tuple[int, bytes, bytes]]:
        """Entries [start, end) as (index, leaf bytes, stored leaf hash)."""
        with self.reader.connect() as conn:
            rows = conn.execute(
                select(entries_t.c.idx, entries_t.c.data, entries_t.c.leaf_hash)
                .where(entries_t.c.idx >= start, entries_t.c.idx < end)
                .order_by(entries_t.c.idx)
            )
            return [(i, bytes(d), bytes(h)) for i, d, h in rows]

    def iter_entries(self, chunk: int = 50_000) -> Iterator[tuple[int, bytes, bytes]]:
        """Every stored entry row in index order, as stored (gaps and all)."""
        last = -1
        while True:
            with self.reader.connect() as conn:
                rows = conn.execute(
                    select(entries_t.c.idx, entries_t.c.data, entries_t.c.leaf_hash)
                    .where(entries_t.c.idx > last)
                    .order_by(entries_t.c.idx)
                    .limit(chunk)
                ).all()
            if not rows:
                return
            for i, d, h in rows:
                yield i, bytes(d), bytes(h)
            last = rows[-1][0]

    def iter_nodes(self, level: int) -> Iterator[tuple[int, bytes]]:
        """Stored hashes of one level above the leaves, in index order."""
        with self.reader.connect() as conn:
            rows = conn.execute(
                select(nodes_t.c.idx, nodes_t.c.hash)
                .where(nodes_t.c.level == level)
                .order_by(nodes_t.c.idx)
            ).all()
        for i, h in rows:
            yield i, bytes(h)

    def count_entries(self) -> int:
        with self.reader.connect() as conn:
            return conn.execute(select(func.count()).select_from(entries_t)).scalar_one()

    # --- witnesses and cosignatures -----------------------------------------------------

    def add_witness(self, name: str, vkey: str, url: str | None) -> None:
        with self.writer.begin() as conn:
            conn.execute(witnesses_t.delete().where(witnesses_t.c.name == name))
            conn.execute(insert(witnesses_t).values(name=name, vkey=vkey, url=url))

    def witnesses(self) -> list[tuple[str, str, str | None]]:
        with self.reader.connect() as conn:
            return [tuple(r) for r in conn.execute(select(witnesses_t))]  # type: ignore[misc]

    def add_cosignature(self, size: int, line: str, cosigned_at: int) -> None:
        sig = parse_signature_line(line.rstrip("\n"))
        with self.writer.begin() as conn:
            conn.execute(
                cosignatures_t.delete().where(
                    cosignatures_t.c.size == size,
                    cosignatures_t.c.witness == sig.name,
                    cosignatures_t.c.key_id == sig.key_id,
                )
            )
            conn.execute(
                insert(cosignatures_t).values(
                    size=size, witness=sig.name, key_id=sig.key_id,
                    line=sig.line, cosigned_at=cosigned_at,
                )
            )

    def cosignature_lines(self, size: int) -> list[str]:
        with self.reader.connect() as conn:
            return [
                r[0]
                for r in conn.execute(
                    select(cosignatures_t.c.line)
                    .where(cosignatures_t.c.size == size)
                    .order_by(cosignatures_t.c.witness)
                )
            ]

    def latest_cosigned(self) -> list[tuple[int, str, int]]:
        """(size, witness, time) of each witness's newest cosignature."""
        with self.reader.connect() as conn:
            rows = conn.execute(
                select(
                    func.max(cosignatures_t.c.size),
                    cosignatures_t.c.witness,
                    func.max(cosignatures_t.c.cosigned_at),
                ).group_by(cosignatures_t.c.witness)
            )
            return [(s, w, t) for s, w, t in rows]
