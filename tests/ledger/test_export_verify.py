"""`shuyu ledger export` and `shuyu ledger verify` on real logs.

The exported tiles are read back with tlog-scales (an independent tlog-tiles implementation) as
an oracle; `verify` runs through the CLI against a database, an export and a real uvicorn server.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from ledger.checkpoint import open_checkpoint
from ledger.exceptions import InconsistentTreeError, LedgerError, VerificationError
from ledger.export import export_tiles
from ledger.log import Log
from ledger.note import b64
from ledger.tiles import tiles_for_size
from ledger.verify import run_verification
from ledger.verify_sources import open_database, open_tiles, parse_key
from tests.ledger.logfactory import Server, cosign, grow, make_big_log, make_log, shuyu


def _export(cfg, out: Path):
    log = Log.open(cfg)
    try:
        return export_tiles(log, out)
    finally:
        log.close()


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def _db(cfg) -> str:
    return cfg.database_url.split("///", 1)[1]


# --- export -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """70,000 entries: full and partial tiles on three levels (the tlog-tiles example)."""
    base = tmp_path_factory.mktemp("big")
    cfg, vkey = make_big_log(base / "data", 70_000)
    out = base / "tiles"
    _export(cfg, out)
    return cfg, vkey, out


def test_export_writes_exactly_the_tlog_tiles_file_set(big) -> None:
    _, _, out = big
    files = _files(out)
    assert files == {"checkpoint"} | {t.path for t in tiles_for_size(70_000)}
    for extra in (
        "tile/0/273.p/112",
        "tile/1/000",
        "tile/1/001.p/17",
        "tile/2/000.p/1",
        "tile/0/272",
        "tile/entries/273.p/112",
    ):
        assert extra in files
    assert (out / "tile/0/000").stat().st_size == 8192


def test_tlog_scales_reads_the_export_as_the_same_tree(big) -> None:
    from tlog_scales.backend import LocalBackend
    from tlog_scales.reader import TilesReader

    cfg, _, out = big
    log = Log.open(cfg)
    try:
        cp, _ = open_checkpoint(log.store.latest_checkpoint(), log.verifier())
        reader = TilesReader(LocalBackend(out))
        theirs = reader.get_checkpoint()
        assert (theirs.size, theirs.root_hash) == (cp.size, cp.root)
        assert reader.calculate_root_hash() == cp.root  # their recursion over our tiles
        for i in (0, 255, 256, 65535, 65536, 69_999):
            assert reader.get_entry(i) == log.store.entries(i, i + 1)[0][1]
            assert reader.get_inclusion_proof(i, cp.size).node_hashes == log.store.inclusion_proof(
                i, cp.size
            )
        for old in (1, 4096, 65536, 69_000):
            assert reader.get_consistency_proof(
                old, cp.size
            ).node_hashes == log.store.consistency_proof(old, cp.size)
    finally:
        log.close()


def test_rerun_on_a_grown_log_rewrites_only_what_changed(tmp_path: Path) -> None:
    cfg, vkey = make_log(tmp_path / "data", [300, 400])  # 700 = 2 full tiles + 188
    out = tmp_path / "tiles"
    first = _export(cfg, out)
    assert first.written == len(tiles_for_size(700)) and first.kept == 0
    before = {p: (out / p).stat() for p in ("tile/0/000", "tile/0/001", "tile/entries/001")}
    assert (out / "tile/0/002.p/188").exists()
    assert _export(cfg, out).written == 0  # nothing changed: nothing rewritten
    grow(cfg, 100)  # 800 = 3 full tiles + 32
    second = _export(cfg, out)
    new = {t.path for t in tiles_for_size(800)} - {t.path for t in tiles_for_size(700)}
    assert second.written == len(new) and second.removed >= 2
    for path, st in before.items():  # full tiles were left alone
        now = (out / path).stat()
        assert (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns)
    assert not (out / "tile/0/002.p").exists()  # superseded by the full tile
    assert _files(out) == {"checkpoint"} | {t.path for t in tiles_for_size(800)}
    lut = open_tiles("dir", str(out), parse_key(vkey, "vkey"), [], [])
    assert run_verification(lut).size == 800


def test_export_refuses_a_directory_holding_another_log_or_a_fork(tmp_path: Path) -> None:
    cfg_a, _ = make_log(tmp_path / "a", [50])
    cfg_b, _ = make_log(tmp_path / "b", [50])
    out = tmp_path / "tiles"
    _export(cfg_a, out)
    with pytest.raises(LedgerError, match="not a checkpoint of this log"):
        _export(cfg_b, out)
    # a fork: the same key, a different history of the same size
    fork = tmp_path / "fork"
    (fork / "keys").mkdir(parents=True)
    (fork / "keys" / "ledger.skey").write_bytes(cfg_a.key_path.read_bytes())
    (fork / "keys" / "ledger.skey").chmod(0o600)
    cfg_f, _ = make_log(fork, [50], tag="other")
    with pytest.raises(InconsistentTreeError, match="forked or was rewritten"):
        _export(cfg_f, out)
    assert (
        open_checkpoint((out / "checkpoint").read_bytes(), Log.open(cfg_a).verifier())[0].size == 50
    )


def test_export_cli_reports_what_it_wrote(tmp_path: Path) -> None:
    cfg, _ = make_log(tmp_path / "data", [20])
    r = shuyu("ledger", "export", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data"))
    assert r.returncode == 0, r.stderr
    assert "exported 20 entries" in r.stdout and "2 tiles written" in r.stdout


# --- verify -------------------------------------------------------------------------------------


def test_verify_cli_data_dir_and_export_ok(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cfg, vkey = make_log(data, [100, 200, 50])
    log = Log.open(cfg)
    try:
        witness = cosign(log)
    finally:
        log.close()
    vkey_file = tmp_path / "log.vkey"
    vkey_file.write_text(vkey + "\n")
    r = shuyu("ledger", "verify", "--data-dir", str(data), "--vkey", str(vkey_file))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("OK: log shuyu.local/ledger")
    assert (
        "350 re-hashed" in r.stdout
        and f"cosigned      by {witness.name} up to size 350" in r.stdout
    )
    assert "every stored leaf hash and subtree hash matches" in r.stdout
    out = tmp_path / "tiles"
    _export(cfg, out)
    r = shuyu(
        "ledger", "verify", "--from", str(out), "--vkey", vkey, "--witness-vkey", witness.vkey()
    )
    assert r.returncode == 0, r.stderr
    assert "every hash tile matches" in r.stdout and f"by {witness.name}" in r.stdout


def test_verify_needs_exactly_one_source_and_a_good_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _, vkey = make_log(data, [10])
    _, other = make_log(tmp_path / "other", [10])
    r = shuyu("ledger", "verify", "--vkey", vkey)
    assert r.returncode != 0 and "name exactly one log" in r.stderr
    r = shuyu("ledger", "verify", "--data-dir", str(data), "--vkey", other)
    assert r.returncode != 0 and "not signed by" in r.stderr
    r = shuyu("ledger", "verify", "--data-dir", str(data), "--vkey", str(tmp_path / "nope.vkey"))
    assert r.returncode != 0 and "neither a file nor a valid vkey" in r.stderr


def test_verify_url_reads_a_real_uvicorn_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cfg, vkey = make_log(data, [300, 20])
    server = Server(data)
    try:
        server.wait()
        r = shuyu("ledger", "verify", "--url", server.url, "--vkey", vkey)
        assert r.returncode == 0, r.stderr
        assert "320 re-hashed" in r.stdout and server.url in r.stdout
        old = tmp_path / "old.checkpoint"
        old.write_bytes(shuyu("ledger", "checkpoint", "--data-dir", str(data)).stdout.encode())
        grow(cfg, 40)  # through the server's sequencer socket
        r = shuyu("ledger", "verify", "--url", server.url, "--vkey", vkey, "--since", str(old))
        assert r.returncode == 0, r.stderr
        assert "360 re-hashed" in r.stdout and "consistent    with --since" in r.stdout
    finally:
        server.stop()


def test_a_bad_cosignature_is_reported(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cfg, vkey = make_log(data, [30])
    log = Log.open(cfg)
    try:
        witness = cosign(log)
    finally:
        log.close()
    with closing(sqlite3.connect(_db(cfg))) as conn, conn:
        line = conn.execute("SELECT line FROM ledger_cosignatures").fetchone()[0]
        name, sig = line.rsplit(" ", 1)
        raw = bytearray(__import__("base64").b64decode(sig))
        raw[-1] ^= 1
        conn.execute("UPDATE ledger_cosignatures SET line = ?", (f"{name} {b64(bytes(raw))}",))
    r = shuyu("ledger", "verify", "--data-dir", str(data), "--vkey", vkey)
    assert r.returncode == 1
    assert f"cosignature by {witness.name}" in r.stderr and "does not verify" in r.stderr


@pytest.mark.parametrize("jobs", [1, 2])
def test_many_chunks_in_parallel_workers_find_the_same_first_bad_entry(big, tmp_path, jobs) -> None:
    """Small chunks (2**8 leaves) so that the 70,000-entry log has 274 of them, many levels above
    the chunk level, and prefix roots that cross chunks; jobs=2 runs them in worker processes."""
    cfg, vkey, out = big
    key = parse_key(vkey, "vkey")
    log = Log.open(cfg)
    try:
        report = run_verification(open_database(log, key, [], [], chunk_level=8), jobs=jobs)
        assert report.size == 70_000 and report.checkpoints_checked >= 18
        assert report.jobs == jobs
        assert (
            run_verification(
                open_tiles("dir", str(out), key, [], [], chunk_level=8), jobs=jobs
            ).size
            == 70_000
        )
    finally:
        log.close()
    copy = tmp_path / "copy.db"
    with closing(sqlite3.connect(_db(cfg))) as src, closing(sqlite3.connect(copy)) as dst:
        src.backup(dst)
        dst.execute(
            "UPDATE ledger_entries SET data = CAST(replace(data, '\"n\":40000', '\"n\":40001') "
            "AS BLOB) WHERE idx = 40000"
        )
        # and a stored subtree hash far above the chunk level, which only the upper levels see
        dst.execute("UPDATE ledger_nodes SET hash = zeroblob(32) WHERE level = 13 AND idx = 7")
        dst.commit()
    from dataclasses import replace

    tampered = Log.open(replace(cfg, database_url=f"sqlite:///{copy}"))
    try:
        with pytest.raises(VerificationError) as e:
            run_verification(open_database(tampered, key, [], [], chunk_level=8), jobs=jobs)
    finally:
        tampered.close()
    assert e.value.index == 40000 and "entry 40000 was altered" in str(e.value)


def test_upper_level_hash_damage_is_located(big, tmp_path) -> None:
    cfg, vkey, _ = big
    copy = tmp_path / "copy.db"
    with closing(sqlite3.connect(_db(cfg))) as src, closing(sqlite3.connect(copy)) as dst:
        src.backup(dst)
        dst.execute("UPDATE ledger_nodes SET hash = zeroblob(32) WHERE level = 13 AND idx = 7")
        dst.commit()
    from dataclasses import replace

    log = Log.open(replace(cfg, database_url=f"sqlite:///{copy}"))
    try:
        with pytest.raises(VerificationError) as e:
            run_verification(
                open_database(log, parse_key(vkey, "k"), [], [], chunk_level=8), jobs=1
            )
    finally:
        log.close()
    lo = 7 << 13
    assert e.value.index == lo and f"[{lo}, {lo + (1 << 13)})" in str(e.value)


@pytest.mark.postgres
def test_verify_a_log_in_postgresql(tmp_path: Path, pg_url: str) -> None:
    from sqlalchemy import create_engine

    cfg, vkey = make_log(tmp_path / "data", [100, 150], url=pg_url)
    key = parse_key(vkey, "vkey")
    log = Log.open(cfg)
    try:
        assert run_verification(open_database(log, key, [], [])).size == 250
    finally:
        log.close()
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE ledger_entries SET data = convert_to(replace(convert_from(data, 'UTF8'), "
            "'\"n\":77', '\"n\":78'), 'UTF8') WHERE idx = 77"
        )
    engine.dispose()
    log = Log.open(cfg)
    try:
        with pytest.raises(VerificationError) as e:
            run_verification(open_database(log, key, [], []))
    finally:
        log.close()
    assert e.value.index == 77


def test_damaged_export_files_are_located(tmp_path: Path) -> None:
    """A mirror with a missing entry bundle, a short hash tile or a bad entry: the verifier
    reads what is there and names the first entry that is missing or wrong."""
    cfg, vkey = make_log(tmp_path / "data", [300, 300])  # 600 = 2 full tiles + 88
    key = parse_key(vkey, "vkey")
    out = tmp_path / "tiles"
    _export(cfg, out)
    assert run_verification(open_tiles("dir", str(out), key, [], [])).size == 600

    bundle = (out / "tile/entries/001").read_bytes()
    (out / "tile/entries/001").unlink()
    with pytest.raises(VerificationError) as e:
        run_verification(open_tiles("dir", str(out), key, [], []))
    assert e.value.index == 256 and "entry 256 is missing" in str(e.value)
    (out / "tile/entries/001").write_bytes(bundle[: len(bundle) // 2])  # cut inside an entry
    with pytest.raises(VerificationError) as e:
        run_verification(open_tiles("dir", str(out), key, [], []))
    assert 256 < e.value.index < 512 and "is missing" in str(e.value)
    (out / "tile/entries/001").write_bytes(bundle)

    tile = (out / "tile/0/000").read_bytes()
    (out / "tile/0/000").write_bytes(tile[: 32 * 100 + 5])
    with pytest.raises(VerificationError) as e:
        run_verification(open_tiles("dir", str(out), key, [], []))
    assert e.value.index == 100 and "stored leaf hash is missing" in str(e.value)
    (out / "tile/0/000").write_bytes(tile)

    part = out / "tile/entries/002.p/88"
    part.write_bytes(part.read_bytes().replace(b'"n":599', b'"n":598'))
    with pytest.raises(VerificationError) as e:
        run_verification(open_tiles("dir", str(out), key, [], []))
    assert e.value.index == 599 and "entry 599 was altered" in str(e.value)
