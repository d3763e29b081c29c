"""Bulk, read-only queries over a SQL ledger, for export, verification and the ledger service.

`SqlLedgerStore` owns the tables and the append transaction; this module only reads them, in
ranges of the primary keys, with plain SQL on the driver's cursor (no ORM rows), because export
and `verify` read every entry and every stored hash of the log. Each function takes the store's
reader engine and returns rows exactly as stored: gaps stay gaps, so callers can tell a missing
row from a changed one. Nothing here trusts what it reads; the callers re-hash.

Binary columns come back as ``bytes`` from both drivers in use (sqlite3 and psycopg 3), so bulk
reads return the driver's rows unchanged: a copy per row would cost as much as hashing it.
"""

from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import Engine


def _run(engine: Engine, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
    """Run one statement on a pooled connection's DBAPI cursor; return every row."""
    qmark = engine.dialect.paramstyle == "qmark"
    if not qmark:
        sql = sql.replace("?", "%s")
    with engine.connect() as conn:
        cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cur.execute(sql, tuple(params))
            rows = cur.fetchall()
        finally:
            cur.close()
        conn.rollback()
    return rows


def _blob(value: Any) -> bytes:
    """A binary column's value as bytes (SQLite hands back text if a row was rewritten as text)."""
    return value.encode() if isinstance(value, str) else bytes(value)


def _binary_rows(rows: list[tuple]) -> list[tuple]:
    if all(type(v) is bytes for r in rows for v in r[1:]):
        return rows
    return [(r[0], *(_blob(v) for v in r[1:])) for r in rows]


def entry_rows(engine: Engine, start: int, end: int) -> list[tuple[int, bytes, bytes]]:
    """(index, leaf bytes, stored leaf hash) of the stored entries in [start, end), in order."""
    rows = _run(
        engine,
        "SELECT idx, data, leaf_hash FROM ledger_entries WHERE idx >= ? AND idx < ? ORDER BY idx",
        (start, end),
    )
    return _binary_rows(rows)


def entry_pairs(engine: Engine, start: int, end: int) -> list[tuple[bytes, bytes]]:
    """(leaf bytes, stored leaf hash) of the stored entries in [start, end), in index order.

    Without the index column: the caller knows every index is present when it gets end - start
    rows (the index is the primary key), and asks `entry_rows` for the gaps otherwise.
    """
    rows = _run(
        engine,
        "SELECT data, leaf_hash FROM ledger_entries WHERE idx >= ? AND idx < ? ORDER BY idx",
        (start, end),
    )
    if all(type(a) is bytes and type(b) is bytes for a, b in rows):
        return rows
    return [(_blob(a), _blob(b)) for a, b in rows]


def entry_data(engine: Engine, start: int, end: int) -> list[tuple[int, bytes]]:
    """(index, leaf bytes) of the stored entries in [start, end), in order."""
    rows = _run(
        engine,
        "SELECT idx, data FROM ledger_entries WHERE idx >= ? AND idx < ? ORDER BY idx",
        (start, end),
    )
    return _binary_rows(rows)


def leaf_hashes(engine: Engine, start: int, end: int) -> list[tuple[int, bytes]]:
    """(index, stored leaf hash) for the entries in [start, end), in order."""
    rows = _run(
        engine,
        "SELECT idx, leaf_hash FROM ledger_entries WHERE idx >= ? AND idx < ? ORDER BY idx",
        (start, end),
    )
    return _binary_rows(rows)


def node_hashes(engine: Engine, level: int, start: int, end: int) -> list[tuple[int, bytes]]:
    """(n, hash) of the stored subtrees (level, n) with start ≤ n < end, in order (level ≥ 1)."""
    rows = _run(
        engine,
        "SELECT idx, hash FROM ledger_nodes WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx",
        (level, start, end),
    )
    return _binary_rows(rows)


def node_hash_list(engine: Engine, level: int, start: int, end: int) -> list[bytes]:
    """Stored hashes of subtrees (level, n), start ≤ n < end, in order, without their index
    (complete when end - start come back, as (level, idx) is the primary key)."""
    rows = _run(
        engine,
        "SELECT hash FROM ledger_nodes WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx",
        (level, start, end),
    )
    return [r[0] if type(r[0]) is bytes else _blob(r[0]) for r in rows]


def checkpoint_rows(
    engine: Engine, lo: int, hi: int, limit: int | None = None, newest_first: bool = False
) -> list[tuple[int, bytes, str, int]]:
    """(size, root, note, signed_at) of the stored checkpoints with lo ≤ size ≤ hi."""
    order = "DESC" if newest_first else "ASC"
    sql = (
        "SELECT size, root, note, signed_at FROM ledger_checkpoints "
        f"WHERE size >= ? AND size <= ? ORDER BY size {order}"
    )
    params: list[int] = [lo, hi]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [(s, bytes(r), n, t) for s, r, n, t in _run(engine, sql, params)]


def checkpoint_notes(engine: Engine, sizes: Sequence[int]) -> dict[int, str]:
    """The stored checkpoint notes of the given sizes (those that exist)."""
    out: dict[int, str] = {}
    for i in range(0, len(sizes), 500):
        chunk = list(sizes[i : i + 500])
        marks = ", ".join("?" * len(chunk))
        sql = f"SELECT size, note FROM ledger_checkpoints WHERE size IN ({marks})"
        out.update({s: n for s, n in _run(engine, sql, chunk)})
    return out


def cosignature_rows(engine: Engine, lo: int, hi: int) -> list[tuple[int, str, int, str, int]]:
    """(size, witness, key ID, line, cosigned_at) of stored cosignatures of sizes lo..hi."""
    return list(
        _run(
            engine,
            "SELECT size, witness, key_id, line, cosigned_at FROM ledger_cosignatures "
            "WHERE size >= ? AND size <= ? ORDER BY size, witness",
            (lo, hi),
        )
    )


def witness_rows(engine: Engine) -> list[tuple[str, str, str | None]]:
    """(name, vkey, url) of the witnesses registered with the log."""
    return list(_run(engine, "SELECT name, vkey, url FROM ledger_witnesses ORDER BY name"))


def state_row(engine: Engine) -> tuple[int, bytes, int] | None:
    """(state size, state root, newest checkpoint size), read in one statement (one snapshot)."""
    rows = _run(
        engine,
        "SELECT s.size, s.root, (SELECT COALESCE(MAX(c.size), 0) FROM ledger_checkpoints c) "
        "FROM ledger_state s",
    )
    if not rows:
        return None
    size, root, newest = rows[0]
    return size, bytes(root), newest


def first_unsigned_entry(engine: Engine) -> int | None:
    """The smallest stored entry index that no stored checkpoint covers (one snapshot), if any."""
    rows = _run(
        engine,
        "SELECT MIN(idx) FROM ledger_entries WHERE idx >= "
        "(SELECT COALESCE(MAX(size), 0) FROM ledger_checkpoints)",
    )
    return rows[0][0] if rows else None
