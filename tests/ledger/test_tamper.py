"""Tamper evidence, through the CLI (`shuyu ledger …` in a subprocess) against real data dirs.

Each test edits the SQLite database (or the guard file) the way an intruder with file access
would, then runs `shuyu ledger verify`, which must exit non-zero naming the first bad entry.
"""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.ledger.logfactory import make_log, shuyu

SIZES = [40, 30, 50]  # 120 entries; checkpoints at 40, 70 and 120


@pytest.fixture
def ledger(tmp_path: Path):
    data = tmp_path / "data"
    cfg, vkey = make_log(data, SIZES)
    return data, cfg, vkey


def _db(cfg) -> Path:
    return Path(cfg.database_url.split("///", 1)[1])


def _verify(data: Path, vkey: str, *extra: str):
    return shuyu("ledger", "verify", "--data-dir", str(data), "--vkey", vkey, *extra)


def _failed(r, *words: str) -> None:
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert not r.stdout.startswith("OK")
    for w in words:
        assert w in r.stderr, (w, r.stderr)


def _snapshot(cfg, dest: Path) -> Path:
    """A consistent copy of the database file as it is now (SQLite's online backup)."""
    with closing(sqlite3.connect(_db(cfg))) as src, closing(sqlite3.connect(dest)) as dst:
        src.backup(dst)
    return dest


def _restore(cfg, snapshot: Path) -> None:
    """Roll the database file back to an older copy (no process has it open)."""
    db = _db(cfg)
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    tmp = db.with_name(db.name + ".restoring")
    shutil.copyfile(snapshot, tmp)
    tmp.replace(db)


def _checkpoint(data: Path, dest: Path) -> Path:
    r = shuyu("ledger", "checkpoint", "--data-dir", str(data))
    assert r.returncode == 0, r.stderr
    dest.write_text(r.stdout)
    return dest


def test_untouched_log_verifies(ledger) -> None:
    data, _, vkey = ledger
    r = _verify(data, vkey)
    assert r.returncode == 0, r.stderr
    assert "120 re-hashed" in r.stdout


def test_one_changed_byte_in_one_entry_is_named(ledger, tmp_path: Path) -> None:
    data, cfg, vkey = ledger
    with closing(sqlite3.connect(_db(cfg))) as conn, conn:
        raw = bytearray(
            conn.execute("SELECT data FROM ledger_entries WHERE idx = 57").fetchone()[0]
        )
        raw[raw.index(b'"n":57') + 5] = ord("8")  # one byte: 57 → 58
        conn.execute("UPDATE ledger_entries SET data = ? WHERE idx = 57", (bytes(raw),))
    _failed(_verify(data, vkey), "first bad entry: 57", "entry 57 was altered")
    # an export mirrors the damage, and verifying the export names the same entry
    out = tmp_path / "tiles"
    assert shuyu("ledger", "export", str(out), "--data-dir", str(data)).returncode == 0
    r = shuyu("ledger", "verify", "--from", str(out), "--vkey", vkey)
    _failed(r, "first bad entry: 57", "entry 57 was altered")


def test_changed_entry_with_a_recomputed_leaf_hash_is_still_located(ledger) -> None:
    data, cfg, vkey = ledger
    import hashlib

    with closing(sqlite3.connect(_db(cfg))) as conn, conn:
        raw = conn.execute("SELECT data FROM ledger_entries WHERE idx = 57").fetchone()[0]
        forged = raw.replace(b'"n":57', b'"n":99')
        conn.execute(
            "UPDATE ledger_entries SET data = ?, leaf_hash = ? WHERE idx = 57",
            (forged, hashlib.sha256(b"\x00" + forged).digest()),
        )
    # (the smallest stored subtree has 16 leaves: the three lowest node levels are derived)
    _failed(_verify(data, vkey), "first bad entry in [48, 64)", "subtree (level 4, 3)")


def test_a_deleted_row_is_named(ledger) -> None:
    data, cfg, vkey = ledger
    with closing(sqlite3.connect(_db(cfg))) as conn, conn:
        conn.execute("DELETE FROM ledger_entries WHERE idx = 57")
    _failed(_verify(data, vkey), "first bad entry: 57", "entry 57 is missing")


def test_the_last_row_deleted_is_named(ledger) -> None:
    data, cfg, vkey = ledger
    with closing(sqlite3.connect(_db(cfg))) as conn, conn:
        conn.execute("DELETE FROM ledger_entries WHERE idx = 119")
    _failed(_verify(data, vkey), "first bad entry: 119", "entry 119 is missing")


def test_two_swapped_entries_are_named(ledger) -> None:
    data, cfg, vkey = ledger
    with closing(sqlite3.connect(_db(cfg))) as conn, conn:
        a = conn.execute("SELECT data FROM ledger_entries WHERE idx = 31").fetchone()[0]
        b = conn.execute("SELECT data FROM ledger_entries WHERE idx = 90").fetchone()[0]
        conn.execute("UPDATE ledger_entries SET data = ? WHERE idx = 31", (b,))
        conn.execute("UPDATE ledger_entries SET data = ? WHERE idx = 90", (a,))
    _failed(_verify(data, vkey), "first bad entry: 31", "entry 31 was altered")


def test_two_swapped_rows_with_their_hashes_are_located(ledger) -> None:
    data, cfg, vkey = ledger
    with closing(sqlite3.connect(_db(cfg))) as conn, conn:  # reorder: rows trade places, hashes too
        conn.execute("UPDATE ledger_entries SET idx = -1 WHERE idx = 31")
        conn.execute("UPDATE ledger_entries SET idx = 31 WHERE idx = 90")
        conn.execute("UPDATE ledger_entries SET idx = 90 WHERE idx = -1")
    _failed(_verify(data, vkey), "first bad entry in [16, 32)", "reordered")


def test_truncation_is_caught_by_the_guard_and_by_since(ledger, tmp_path: Path) -> None:
    data, cfg, vkey = ledger
    seen = _checkpoint(data, tmp_path / "seen-120.checkpoint")
    with (
        closing(sqlite3.connect(_db(cfg))) as conn,
        conn,
    ):  # a careful truncation back to 70 entries
        conn.execute("DELETE FROM ledger_entries WHERE idx >= 70")
        conn.execute("DELETE FROM ledger_nodes WHERE (idx + 1) << level > 70")
        conn.execute("DELETE FROM ledger_checkpoints WHERE size > 70")
        root = conn.execute("SELECT root FROM ledger_checkpoints WHERE size = 70").fetchone()[0]
        conn.execute("UPDATE ledger_state SET size = 70, root = ?", (root,))
    # the log's own record of what it signed (kept outside the database) catches it
    _failed(
        _verify(data, vkey),
        "first bad entry in [70, 120)",
        "truncated or rolled back",
        "last-signed",
    )
    # an intruder who also removes that record is still caught by a checkpoint seen before
    for slot in cfg.ledger_dir.glob("last-signed.checkpoint*"):
        slot.unlink()
    assert _verify(data, vkey).returncode == 0  # on its own, a shorter log looks fine
    _failed(
        _verify(data, vkey, "--since", str(seen)),
        "first bad entry in [70, 120)",
        "entries 70..119 are gone",
        "--since",
    )


def test_rollback_to_an_older_copy_and_a_fork_after_it(ledger, tmp_path: Path) -> None:
    data, cfg, vkey = ledger
    seen = _checkpoint(data, tmp_path / "seen-120.checkpoint")
    guard = {p.name: p.read_bytes() for p in cfg.ledger_dir.glob("last-signed.checkpoint*")}
    old = tmp_path / "at-120.db"
    _snapshot(cfg, old)
    r = shuyu("ledger", "append", "--data-dir", str(data), input='{"type":"query","n":1}\n' * 10)
    assert r.returncode == 0, r.stderr
    newer = _checkpoint(data, tmp_path / "seen-130.checkpoint")
    # roll the database and the guard back to the copy taken at 120
    _restore(cfg, old)
    for name, content in guard.items():
        (cfg.ledger_dir / name).write_bytes(content)
    assert _verify(data, vkey).returncode == 0
    _failed(
        _verify(data, vkey, "--since", str(newer)),
        "first bad entry in [120, 130)",
        "truncated or rolled back",
    )
    # history rewritten from there: a different tree of size 130, signed with the same key
    r = shuyu("ledger", "append", "--data-dir", str(data), input='{"type":"query","n":2}\n' * 10)
    assert r.returncode == 0, r.stderr
    _failed(
        _verify(data, vkey, "--since", str(newer)),
        "first bad entry in [120, 130)",
        "a fork (two different trees signed for the same size)",
    )
    assert _verify(data, vkey, "--since", str(seen)).returncode == 0  # still extends 120


def test_two_data_dirs_with_the_same_key_are_a_detected_fork(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    cfg_a, vkey = make_log(a, [60])
    (b / "keys").mkdir(parents=True)
    shutil.copy2(cfg_a.key_path, b / "keys" / "ledger.skey")
    _, vkey_b = make_log(b, [60], tag="other history")
    assert vkey_b == vkey
    seen_a = _checkpoint(a, tmp_path / "a.checkpoint")
    _failed(
        shuyu("ledger", "verify", "--data-dir", str(b), "--vkey", vkey, "--since", str(seen_a)),
        "first bad entry in [0, 60)",
        "the log key also signed a different tree of size 60",
        "a fork",
    )


def test_the_sequencer_refuses_to_append_after_a_rollback(ledger, tmp_path: Path) -> None:
    data, cfg, vkey = ledger
    old = _snapshot(cfg, tmp_path / "at-120.db")
    r = shuyu("ledger", "append", "--data-dir", str(data), input='{"type":"query"}\n' * 5)
    assert r.returncode == 0, r.stderr
    guard_before = sorted(p.read_bytes() for p in cfg.ledger_dir.glob("last-signed.checkpoint*"))
    _restore(cfg, old)  # the guard still remembers size 125
    r = shuyu("ledger", "append", "--data-dir", str(data), input='{"type":"query"}\n' * 3)
    assert r.returncode != 0
    assert "error:" in r.stderr and "rolled back" in r.stderr and "refus" in r.stderr
    with closing(sqlite3.connect(_db(cfg))) as conn:  # fail closed: nothing appended or signed
        assert conn.execute("SELECT size FROM ledger_state").fetchone()[0] == 120
        assert conn.execute("SELECT max(size) FROM ledger_checkpoints").fetchone()[0] == 120
    assert (
        sorted(p.read_bytes() for p in cfg.ledger_dir.glob("last-signed.checkpoint*"))
        == guard_before
    )
