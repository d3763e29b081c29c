"""The ledger's durable store: entries, stored hashes and signed checkpoints in SQL.

Tables (SQLAlchemy Core; SQLite by default, PostgreSQL by URL):
- ``ledger_entries``: index, the exact leaf bytes, their leaf hash, and a few columns copied out of
  the entry for filtering (type, at, actor). The bytes are re-hashed whenever they are read for
  verification or export;
- ``ledger_nodes``: the hash of every complete subtree of more than 8 leaves, keyed by (level, n);
  with the leaf hashes these are Go tlog's "stored hashes" minus the three lowest node levels
  (about 1.125 per entry instead of 2), which proofs rebuild from at most 8 leaf hashes, so any
  proof needs one read of O(log n) rows;
- ``ledger_state``: one row, the log's origin and verifier key and the current size and root;
- ``ledger_checkpoints``: every checkpoint the log signed (one per batch), with its note;
- ``ledger_cosignatures``: witness cosignature lines for those checkpoints;
- ``ledger_witnesses``: the witnesses this log asks for cosignatures.

One sequencer per log: a batch is appended inside one transaction that first takes the database's
write lock (SQLite ``BEGIN IMMEDIATE``; PostgreSQL ``pg_advisory_xact_lock``) and holds its
entries, their stored hashes, the new state and the signed checkpoint, so a batch is either all
visible or not at all. Before signing, the new tree is proven consistent with the last checkpoint
this log signed (kept outside the database by :class:`~ledger.guard.SignedHeadGuard`), so a
rolled-back or altered database makes the sequencer refuse to append instead of signing a fork.

Durability: SQLite runs in WAL mode with ``synchronous=FULL`` (the commit returns after the WAL is
fsynced; readers use their own connections and never block the writer); PostgreSQL commits with
``synchronous_commit=on`` whatever the server default. Any database failure while appending is
raised as :class:`~ledger.exceptions.LedgerUnavailable`: nothing of the batch was recorded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import chain
from hashlib import sha256
from pathlib import Path
from typing import Iterator, NamedTuple, Sequence

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
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, NoSuchTableError, OperationalError, ProgrammingError

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.entry import MAX_ENTRY_BYTES
from ledger.exceptions import (
    EntryError,
    InconsistentTreeError,
    LedgerError,
    LedgerUnavailable,
    ProofError,
)
from ledger.hashing import EMPTY_ROOT, node_hash
from ledger.note import Signer, parse_signature_line
from ledger.proofs import Coord, prove_consistency, prove_inclusion, tree_hash, verify_consistency
from ledger.tree import CompactRange, right_edge_coords

_BigInt = BigInteger().with_variant(Integer, "sqlite")
PG_LOCK_KEY = 0x5348_5559_4C45_4447 & 0x7FFF_FFFF_FFFF_FFFF  # "SHUYLEDG"
SQLITE_CACHE_KIB = 65536  # page cache of the writer: keeps the upper index levels of a big log hot

# Subtrees of up to 2**DERIVED_LEVELS leaves are not stored: a proof that needs one reads its
# (at most 8) leaf hashes in the same statement and hashes them, so every proof still takes one
# read of O(log n) rows, and the store writes about 1/8 of a node row per entry instead of one.
DERIVED_LEVELS = 3


def stores_level(level: int) -> bool:
    """Whether the store keeps the hashes of Merkle level `level` (leaves are level 0)."""
    return level == 0 or level > DERIVED_LEVELS


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
    Column("vkey", Text, nullable=False),
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

_ENTRY_COLUMNS = "idx, data, leaf_hash, type, at, actor"
_NODE_COLUMNS = "level, idx, hash"


def make_engines(url: str) -> tuple[Engine, Engine]:
    """(writer, reader) engines.

    SQLite: every connection runs WAL with synchronous=FULL; writer transactions start with
    ``BEGIN IMMEDIATE`` (the database's one write lock), reader connections are query-only and
    read a snapshot, so they never block the writer. PostgreSQL: one engine, READ COMMITTED (each
    statement after the advisory lock sees the previous batch), durable commits.
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if not path or path.startswith(":memory:") or "mode=memory" in url:
            raise LedgerError(f"the ledger needs a SQLite file, not an in-memory database ({url})")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        writer = create_engine(url, connect_args={"timeout": 60}, pool_size=1, max_overflow=0)
        reader = create_engine(url, connect_args={"timeout": 60})
        _sqlite_setup(writer, writer=True)
        _sqlite_setup(reader, writer=False)
        return writer, reader
    engine = create_engine(
        url, pool_pre_ping=True, pool_size=5, isolation_level="READ COMMITTED"
    )
    return engine, engine


def sqlite_enable_wal(dbapi_conn, timeout: float) -> str:  # type: ignore[no-untyped-def]
    """Switch a new SQLite connection's database to WAL; return the journal mode it ends in.

    Switching needs the database to itself, and SQLite answers "database is locked" at once,
    without its busy handler, when other connections open the same new file at that moment. So
    the mode is read first (most opens find WAL already set) and the switch is retried until
    `timeout` seconds have passed.
    """
    import sqlite3

    deadline = time.monotonic() + timeout
    pause = 0.005
    cur = dbapi_conn.cursor()
    try:
        while True:
            try:
                mode = cur.execute("PRAGMA journal_mode").fetchone()[0].lower()
                if mode == "wal":
                    return mode
                return cur.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower()
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e):
                    raise
                if time.monotonic() >= deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.2)
    finally:
        cur.close()


def _missing_tables(error: BaseException) -> bool:
    msg = str(error).lower()
    return "no such table" in msg or ("relation" in msg and "does not exist" in msg)


def _sqlite_setup(engine: Engine, writer: bool) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        mode = sqlite_enable_wal(dbapi_conn, timeout=60)
        if mode != "wal":
            raise LedgerUnavailable(f"SQLite refused WAL mode (journal_mode={mode})")
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=60000")
        if writer:
            cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        else:
            cur.execute("PRAGMA query_only=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


class ConnectionHashReader:
    """HashReader over one connection (sees the connection's own uncommitted rows).

    Reads every asked-for hash with one statement: a primary-key search per level, glued with
    UNION ALL. (A row-value ``(level, idx) IN (...)`` would be a full scan in SQLite, which would
    make every proof O(n); plain SQL also avoids building expression objects per proof.)
    """

    def __init__(self, conn: Connection, cursor=None):  # type: ignore[no-untyped-def]
        self.conn = conn
        self.cursor = cursor  # the driver's own cursor, if the caller handles its errors
        self.ph = "?" if conn.dialect.paramstyle == "qmark" else "%s"

    def read_hashes(self, coords: Sequence[Coord]) -> list[bytes]:
        by_level: dict[int, set[int]] = {}
        for level, n in coords:
            if 0 < level <= DERIVED_LEVELS:  # not stored: read the subtree's leaf hashes
                by_level.setdefault(0, set()).update(range(n << level, (n + 1) << level))
            else:
                by_level.setdefault(level, set()).add(n)
        found: dict[Coord, bytes] = {}
        arms: list[str] = []
        params: list[int] = []
        for level, ns in sorted(by_level.items()):
            for chunk in _chunks(sorted(ns), 500):
                marks = ", ".join([self.ph] * len(chunk))
                if level == 0:
                    arms.append(
                        f"SELECT 0, idx, leaf_hash FROM ledger_entries WHERE idx IN ({marks})"
                    )
                else:
                    arms.append(
                        f"SELECT level, idx, hash FROM ledger_nodes "
                        f"WHERE level = {self.ph} AND idx IN ({marks})"
                    )
                    params.append(level)
                params.extend(chunk)
                if len(arms) == 64 or len(params) > 4000:
                    self._fetch(arms, params, found)
                    arms, params = [], []
        if arms:
            self._fetch(arms, params, found)
        try:
            return [
                _derived_hash(found, level, n) if 0 < level <= DERIVED_LEVELS
                else bytes(found[(level, n)])
                for level, n in coords
            ]
        except KeyError as e:
            raise ProofError(f"the store has no hash for subtree {e.args[0]}") from None

    def _fetch(self, arms: list[str], params: list[int], found: dict[Coord, bytes]) -> None:
        sql = " UNION ALL ".join(arms)
        if self.cursor is not None:
            self.cursor.execute(sql, tuple(params))
            rows = self.cursor.fetchall()
        else:
            rows = self.conn.exec_driver_sql(sql, tuple(params))
        for level, n, h in rows:
            found[(level, n)] = h


def _derived_hash(found: dict[Coord, bytes], level: int, n: int) -> bytes:
    """The hash of subtree (level, n) of a level the store does not keep, from its leaves."""
    first = n << level
    try:
        row = [bytes(found[(0, i)]) for i in range(first, first + (1 << level))]
    except KeyError:
        raise KeyError((level, n)) from None
    while len(row) > 1:
        row = [node_hash(row[i], row[i + 1]) for i in range(0, len(row), 2)]
    return row[0]


def _chunks(items: list, n: int) -> Iterator[list]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


@dataclass(frozen=True)
class TreeHead:
    size: int
    root: bytes


class EntryMeta(NamedTuple):
    """The filter columns copied out of an entry (type, at, actor)."""

    type: str
    at: str
    actor: str | None


def extend_tree(
    first: int, edge: list[bytes], batch: Sequence[tuple[bytes, EntryMeta]]
) -> tuple[list[tuple], list[tuple[int, int, bytes]]]:
    """Entry rows and new stored-hash rows for a batch appended at index `first`.

    `edge` is the right edge of the tree of size `first` (see :class:`~ledger.tree.CompactRange`)
    and is extended in place. This is CompactRange.append unrolled for speed (it runs once per
    entry on the append path); the conformance tests check it against the reference hashing.
    """
    entry_rows: list[tuple] = []
    node_rows: list[tuple[int, int, bytes]] = []
    index = first
    for data, meta in batch:
        h = sha256(b"\x00" + data).digest()
        entry_rows.append((index, data, h, *meta))
        n, level = index, 0
        while n & 1:  # the new subtree is a right child: merge it with its left sibling
            h = sha256(b"\x01" + edge.pop() + h).digest()
            n >>= 1
            level += 1
            if level > DERIVED_LEVELS:
                node_rows.append((level, n, h))
        edge.append(h)
        index += 1
    return entry_rows, node_rows


class RowInserter:
    """Inserts many rows into one table with as few statements as the database needs.

    PostgreSQL takes ``executemany`` (psycopg pipelines it). On SQLite, ``executemany`` steps
    once per row and Python's driver releases and re-takes the GIL around every step, so in a
    process whose other threads are busy (the sequencer's socket thread) each row can wait for
    the GIL. SQLite rows therefore go in multi-row ``VALUES`` statements of 2^k rows (at most
    `MAX_ROWS`), one step each; the few distinct statement texts stay in the driver's cache.
    """

    MAX_ROWS = 256

    def __init__(self, table: str, columns: str, ph: str, multi_row: bool):
        width = len(columns.split(","))
        self._head = f"INSERT INTO {table} ({columns}) VALUES "
        self._one = "(" + ", ".join([ph] * width) + ")"
        self.multi_row = multi_row
        self._sql: dict[int, str] = {}

    def sql(self, rows: int) -> str:
        text_ = self._sql.get(rows)
        if text_ is None:
            text_ = self._sql[rows] = self._head + ", ".join([self._one] * rows)
        return text_

    def __call__(self, cursor, rows: list[tuple]) -> None:  # type: ignore[no-untyped-def]
        """Insert `rows` through `cursor`, a cursor of the driver's own (DB-API)."""
        if not rows:
            return
        if not self.multi_row:
            cursor.executemany(self.sql(1), rows)
            return
        start, left = 0, len(rows)
        while left:
            n = min(self.MAX_ROWS, 1 << (left.bit_length() - 1))
            cursor.execute(self.sql(n), list(chain.from_iterable(rows[start : start + n])))
            start += n
            left -= n


def _check_batch(batch: Sequence[tuple[bytes, EntryMeta]]) -> None:
    if not batch:
        raise EntryError("empty batch: nothing to append")
    for i, (data, meta) in enumerate(batch):
        if not isinstance(data, bytes):
            raise EntryError(f"batch item {i}: entry must be bytes, not {type(data).__name__}")
        if len(data) > MAX_ENTRY_BYTES:
            raise EntryError(
                f"batch item {i}: entry is {len(data)} bytes, the limit is {MAX_ENTRY_BYTES}"
            )
        if not isinstance(meta, EntryMeta) or not meta.type or not meta.at:
            raise EntryError(f"batch item {i}: entry has no type or time")


class SqlLedgerStore:
    """Reads and batch-appends one log in a SQL database."""

    def __init__(self, url: str, origin: str):
        self.url = url
        self.origin = origin
        self.writer, self.reader = make_engines(url)
        self.is_sqlite = url.startswith("sqlite")
        ph = "?" if self.is_sqlite else "%s"
        self._insert_entries = RowInserter("ledger_entries", _ENTRY_COLUMNS, ph, self.is_sqlite)
        self._insert_nodes = RowInserter("ledger_nodes", _NODE_COLUMNS, ph, self.is_sqlite)
        self._insert_checkpoint = (
            f"INSERT INTO ledger_checkpoints (size, root, note, signed_at) "
            f"VALUES ({ph}, {ph}, {ph}, {ph})"
        )
        self._select_state = "SELECT origin, vkey, size, root FROM ledger_state WHERE id = 1"
        self._driver_error = self.writer.dialect.loaded_dbapi.Error
        self._cas_state = (
            f"UPDATE ledger_state SET size = {ph}, root = {ph} WHERE id = 1 AND size = {ph}"
        )
        self._trusted_signer: Signer | None = None
        self._trusted_vkey: str | None = None

    # --- setup --------------------------------------------------------------------------

    def create(self, vkey: str) -> None:
        """Create tables and the empty tree state for the log whose verifier key is `vkey`.

        Idempotent; refuses a database that holds another log (other origin or other key).
        """
        metadata.create_all(self.writer)
        with self.writer.begin() as conn:
            self._lock(conn)
            row = conn.execute(select(state_t.c.origin, state_t.c.vkey)).first()
            if row is None:
                conn.execute(
                    insert(state_t).values(
                        id=1, origin=self.origin, vkey=vkey, size=0, root=EMPTY_ROOT
                    )
                )
            elif row.origin != self.origin:
                raise LedgerError(
                    f"this database holds the log {row.origin!r}, not {self.origin!r}"
                )
            elif row.vkey != vkey:
                raise LedgerError(
                    f"this database holds the log signed by {row.vkey}, not by {vkey}"
                )

    def close(self) -> None:
        self.writer.dispose()
        if self.reader is not self.writer:
            self.reader.dispose()

    def _lock(self, conn: Connection) -> None:
        """Take the log's write lock inside the current transaction (SQLite: BEGIN IMMEDIATE)."""
        if not self.is_sqlite:
            conn.exec_driver_sql("SET LOCAL synchronous_commit TO ON")
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_LOCK_KEY})

    def durability_settings(self) -> dict[str, str]:
        """What the writer and a reader connection actually run with (for tests and ops)."""
        if self.is_sqlite:
            out = {}
            for role, engine in (("writer", self.writer), ("reader", self.reader)):
                with engine.connect() as conn:
                    for pragma in ("journal_mode", "synchronous", "query_only"):
                        value = conn.exec_driver_sql(f"PRAGMA {pragma}").scalar()
                        out[f"{role}.{pragma}"] = str(value).lower()
            return out
        with self.writer.begin() as conn:
            self._lock(conn)
            return {
                "synchronous_commit": conn.exec_driver_sql("SHOW synchronous_commit").scalar(),
                "fsync": conn.exec_driver_sql("SHOW fsync").scalar(),
                "isolation": conn.exec_driver_sql("SHOW transaction_isolation").scalar(),
            }

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
        Raises EntryError (bad entry), LedgerError (wrong key or log, not initialized),
        InconsistentTreeError (the database no longer extends what was signed) or
        LedgerUnavailable (the database failed); in every case nothing was recorded.
        """
        _check_batch(batch)
        if signer.name != self.origin:
            raise LedgerError(f"signing key {signer.name!r} is not the log {self.origin!r}")
        try:
            with self.writer.begin() as conn:
                self._lock(conn)
                # the statements of every batch go straight to the driver's cursor, inside the
                # transaction SQLAlchemy began (its per-statement machinery costs more than they do)
                cur = conn.connection.driver_connection.cursor()
                try:
                    cur.execute(self._select_state)
                    _origin, vkey, size, root = self._checked_state(cur.fetchone())
                    self._check_signer(signer, vkey)
                    stored = TreeHead(size, bytes(root))
                    reader = ConnectionHashReader(conn, cur)
                    edge = self._edge(reader, stored)
                    entry_rows, node_rows = extend_tree(size, edge, batch)
                    self._insert_entries(cur, entry_rows)
                    self._insert_nodes(cur, node_rows)
                    head = TreeHead(size + len(batch), CompactRange(size + len(batch), edge).root())
                    if last_signed != stored:
                        # (when the batch was appended to exactly the last signed tree, the new
                        # tree extends it by construction; otherwise prove it)
                        self._check_extends(reader, last_signed, head)
                    note = sign_checkpoint(Checkpoint(self.origin, head.size, head.root), signer)
                    cur.execute(self._insert_checkpoint,
                                (head.size, head.root, note.decode(), int(time.time())))
                    cur.execute(self._cas_state, (head.size, head.root, size))
                    if cur.rowcount != 1:  # compare-and-swap on the state row, a last guard
                        raise LedgerUnavailable(
                            f"the tree state changed under the lock at size {size}")
                finally:
                    cur.close()
        except (OperationalError, ProgrammingError) as e:
            if _missing_tables(e.orig):
                raise LedgerError("the ledger is not initialized (run `shuyu ledger init`)") from e
            raise LedgerUnavailable(f"ledger database unavailable: {e.orig}") from e
        except DBAPIError as e:
            raise LedgerUnavailable(f"ledger database refused the batch: {e.orig}") from e
        except self._driver_error as e:  # raised by the driver's own cursor
            if _missing_tables(e):
                raise LedgerError("the ledger is not initialized (run `shuyu ledger init`)") from e
            raise LedgerUnavailable(f"ledger database refused the batch: {e}") from e
        return size, head, note

    @staticmethod
    def _edge(reader: ConnectionHashReader, stored: TreeHead) -> list[bytes]:
        """The right edge of the stored tree, read from the stored hashes every batch (so an
        edited hash is refused, not built on), which must hash to the stored root."""
        edge = reader.read_hashes(right_edge_coords(stored.size)) if stored.size else []
        if CompactRange(stored.size, list(edge)).root() != stored.root:
            raise InconsistentTreeError(
                f"stored hashes do not match the stored root at size {stored.size}; "
                "the database was altered, refusing to append"
            )
        return edge

    def _state(self, conn: Connection):  # type: ignore[no-untyped-def]
        return self._checked_state(conn.exec_driver_sql(self._select_state).first())

    def _checked_state(self, state):  # type: ignore[no-untyped-def]
        """The state row (origin, vkey, size, root), refused unless it is this log's."""
        if state is None:
            raise LedgerError("the ledger is not initialized (run `shuyu ledger init`)")
        if state[0] != self.origin:
            raise LedgerError(f"this database holds the log {state[0]!r}, not {self.origin!r}")
        return state

    def _check_signer(self, signer: Signer, vkey: str) -> None:
        """Refuse to sign with any key but the log's own (the same name is not enough)."""
        if signer is self._trusted_signer and self._trusted_vkey == vkey:
            return  # checked on an earlier batch; vkey() costs a hash and an encoding
        offered = signer.vkey() if hasattr(signer, "vkey") else None
        if offered != vkey:
            raise LedgerError(
                f"the signing key ({offered}) is not this log's key ({vkey}); refusing to sign"
            )
        self._trusted_signer, self._trusted_vkey = signer, vkey


    @staticmethod
    def _check_extends(reader: ConnectionHashReader, old: TreeHead | None, new: TreeHead) -> None:
        """Refuse to sign `new` unless it is consistent with the last signed head `old`."""
        if old is None or old.size == 0:
            return
        if old.size > new.size:
            raise InconsistentTreeError(
                f"the log once signed size {old.size} but the database now ends at "
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

    def check_extends(self, last_signed: TreeHead | None) -> TreeHead:
        """Check, without appending, that the stored tree extends `last_signed`; return the head.

        Run by a sequencer when it starts, so a rolled-back database is refused at once.
        """
        try:
            with self.reader.connect() as conn:
                state = self._state(conn)
                reader = ConnectionHashReader(conn)
                head = TreeHead(state.size, bytes(state.root))
                if tree_hash(head.size, reader) != head.root:
                    raise InconsistentTreeError(
                        f"stored hashes do not match the stored root at size {head.size}"
                    )
                self._check_extends(reader, last_signed, head)
                return head
        except (OperationalError, ProgrammingError) as e:
            if _missing_tables(e.orig):
                raise LedgerError("the ledger is not initialized (run `shuyu ledger init`)") from e
            raise LedgerUnavailable(f"ledger database unavailable: {e.orig}") from e

    # --- reading ------------------------------------------------------------------------

    def head(self) -> TreeHead:
        try:
            with self.reader.connect() as conn:
                row = conn.execute(select(state_t.c.size, state_t.c.root)).first()
        except (OperationalError, ProgrammingError, NoSuchTableError) as e:
            if isinstance(e, DBAPIError) and not _missing_tables(e.orig):
                raise LedgerUnavailable(f"ledger database unavailable: {e.orig}") from e
            raise LedgerError("the ledger is not initialized (run `shuyu ledger init`)") from e
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
        with self.reader.connect() as conn:
            self._check_size(conn, size)
            return prove_inclusion(index, size, ConnectionHashReader(conn))

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        with self.reader.connect() as conn:
            self._check_size(conn, new)
            return prove_consistency(old, new, ConnectionHashReader(conn))

    @staticmethod
    def _check_size(conn: Connection, size: int) -> None:
        current = conn.exec_driver_sql("SELECT size FROM ledger_state").scalar()
        if current is None:
            raise LedgerError("the ledger is not initialized (run `shuyu ledger init`)")
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
        """Stored hashes of one level above the leaves, in index order (none for the levels
        the store derives, see `stores_level`)."""
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
