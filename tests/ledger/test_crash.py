"""Crash safety: `kill -9` in the middle of appending, at random moments, then restart.

After every kill the log must verify from scratch (roots recomputed from the entries, every stored
checkpoint's signature and root, every stored hash), no acknowledged entry may be missing or
different (appenders write each ack to a file only after `append` returned), and no half batch
may be visible (entries == state size == newest checkpoint size). A rolled-back copy of the
database makes appends fail closed, and a torn guard slot falls back to the other one.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from ledger.exceptions import InconsistentTreeError, LedgerUnavailable
from ledger.log import Log, LogConfig, Sequencer
from tests.ledger import procs
from tests.ledger.integrity import check_log
from tests.ledger.store_conformance import event_for
from tests.ledger.procs import kill9, make_config, start_appender, start_sequencer

ROUNDS = 4


def wait_for_acks(ackfile: Path, proc: subprocess.Popen, at_least: int) -> None:
    deadline = time.monotonic() + 120
    while len(procs.read_acks(ackfile)) < at_least:
        assert proc.poll() is None, f"appender exited early: {proc.communicate()}"
        assert time.monotonic() < deadline, "appender made no progress"
        time.sleep(0.005)


@pytest.fixture(autouse=True)
def _no_leftover_processes():  # type: ignore[no-untyped-def]
    yield
    procs.kill_started()


def check_after_crash(cfg: LogConfig, ackfiles: list[Path]) -> int:
    """Restart, verify everything, and check every acknowledged entry; return the log size."""
    log = Log.open(cfg)
    try:
        log.check_ready()  # the guard and the database agree: appends may resume
        report = check_log(log)
        acked = 0
        for ackfile in ackfiles:
            for index, _, data in procs.read_acks(ackfile):
                assert index < report.size, f"acknowledged entry {index} was lost"
                assert report.entries[index] == data, f"acknowledged entry {index} changed"
                acked += 1
        assert acked > 0
        return report.size
    finally:
        log.close()


def long_appender(config: Path, ackfile: Path, k: int, *extra: str) -> subprocess.Popen:
    return start_appender(
        config, ackfile, "--count", "10000000", "--window", "64", "--chunk", "16",
        "--batches", "10000000", "--request-base", str(k * 10_000_000), *extra,
    )


@pytest.mark.slow
def test_kill_local_appenders_mid_batch(tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    print(f"kill moments drawn with random.Random({seed})")  # shown if the test fails
    rng = random.Random(seed)
    cfg, config = make_config(tmp_path, batch_max_size=512, batch_max_age=0.002)
    ackfiles: list[Path] = []
    size = 0
    for r in range(ROUNDS):
        round_acks = [tmp_path / f"acks-{r}-{k}.txt" for k in range(2)]
        ackfiles += round_acks
        appenders = [
            long_appender(config, ack, r * 2 + k, "--expect", "local")
            for k, ack in enumerate(round_acks)
        ]
        # kill one at a random moment, the other a little later (it keeps appending meanwhile)
        wait_for_acks(round_acks[1], appenders[1], 1)  # both are connected (slow under load)
        wait_for_acks(round_acks[0], appenders[0], rng.randrange(1, 3000))
        time.sleep(rng.uniform(0, 0.05))
        kill9(appenders[0])
        wait_for_acks(round_acks[1], appenders[1], 1)
        time.sleep(rng.uniform(0, 0.3))
        kill9(appenders[1])
        new_size = check_after_crash(cfg, ackfiles)
        assert new_size > size, f"round {r} (seed {seed}) appended nothing"
        size = new_size
    log = Log.open(cfg)  # and the log goes on after the last crash
    try:
        assert log.append(event_for(0)) == size
    finally:
        log.close()


@pytest.mark.slow
@pytest.mark.parametrize("max_age", [0.002, 0.0], ids=["max-age", "natural"])
def test_kill_the_sequencer_mid_batch(tmp_path: Path, max_age: float) -> None:
    """(max_age 0: the sequencer's loop commits rounds itself while the committer is idle.)"""
    seed = random.randrange(1 << 30)
    print(f"kill moments drawn with random.Random({seed})")  # shown if the test fails
    rng = random.Random(seed)
    cfg, config = make_config(tmp_path, batch_max_size=512, batch_max_age=max_age)
    ackfiles: list[Path] = []
    for r in range(ROUNDS):
        sequencer = start_sequencer(config)
        round_acks = [tmp_path / f"acks-{r}-{k}.txt" for k in range(2)]
        ackfiles += round_acks
        appenders = [
            long_appender(config, ack, r * 2 + k, "--expect", "remote")
            for k, ack in enumerate(round_acks)
        ]
        wait_for_acks(round_acks[1], appenders[1], 1)  # both are connected (slow under load)
        wait_for_acks(round_acks[0], appenders[0], rng.randrange(1, 3000))
        time.sleep(rng.uniform(0, 0.05))
        kill9(sequencer)  # mid-batch: requests in flight are not acknowledged
        # the appenders lose the socket, fall back to sequencing locally, and go on
        before = len(procs.read_acks(round_acks[1]))
        wait_for_acks(round_acks[1], appenders[1], before + 50)
        for proc in appenders:
            kill9(proc)
        check_after_crash(cfg, ackfiles)
    # a new sequencer starts on the crashed log and serves appends
    log = Log.open(cfg)
    try:
        seq = Sequencer(log)
        seq.start()
        try:
            size = log.store.head().size
            assert log.append(event_for(0)) == size
        finally:
            seq.stop()
    finally:
        log.close()
    check_after_crash(cfg, ackfiles)


def _db_files(cfg: LogConfig) -> list[Path]:
    db = Path(cfg.database_url.split("///", 1)[1])
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]


def test_a_rolled_back_database_copy_refuses_appends(tmp_path: Path) -> None:
    cfg, _ = make_config(tmp_path)
    log = Log.open(cfg)
    log.append_many([event_for(i) for i in range(30)])
    log.close()
    backup = tmp_path / "backup"
    backup.mkdir()
    for f in _db_files(cfg):
        if f.exists():
            shutil.copy2(f, backup / f.name)
    log = Log.open(cfg)
    log.append_many([event_for(i) for i in range(30, 40)])
    log.close()
    for f in _db_files(cfg):  # the operator restores last night's backup
        f.unlink(missing_ok=True)
        if (backup / f.name).exists():
            shutil.copy2(backup / f.name, f)

    log = Log.open(cfg)
    try:
        with pytest.raises(LedgerUnavailable, match="truncated or rolled back"):
            log.append(event_for(99))
        with pytest.raises(LedgerUnavailable, match="fork"):  # longer, but another history
            log.append_many([event_for(i, "fork") for i in range(25)])
        with pytest.raises(LedgerUnavailable, match="rolled back"):
            Sequencer(log).start()
        assert not cfg.socket_path.exists()
        assert log.store.head().size == 30
        assert [s for s, _, _ in log.store.checkpoints()][-1] == 30
        assert log.guard.read().size == 40  # the guard still names what was signed
        check_log(log)
    finally:
        log.close()


def test_a_torn_guard_slot_falls_back_to_the_other(tmp_path: Path) -> None:
    cfg, _ = make_config(tmp_path)
    log = Log.open(cfg)
    try:
        log.append_many([event_for(i) for i in range(5)])
        log.append_many([event_for(i) for i in range(5, 9)])
        slots = sorted([log.guard.path, log.guard.alt], key=lambda p: p.stat().st_mtime_ns)
        newer = slots[-1]
        newer.write_bytes(newer.read_bytes()[:17])  # a write torn by a crash
        assert log.guard.read().size == 5
        assert log.append(event_for(9)) == 9  # the database extends the older head
        assert log.guard.read().size == 10
        for slot in slots:  # both slots unreadable: refuse until restored
            slot.write_bytes(b"\x00garbage")
        with pytest.raises(LedgerUnavailable, match="does not hold a signed checkpoint"):
            log.append(event_for(10))
        assert log.store.head().size == 10
        log.guard.write(log.store.latest_checkpoint())  # the operator restores it
        assert log.append(event_for(10)) == 10
    finally:
        log.close()


def test_the_guard_reads_what_its_slots_hold_now(tmp_path: Path) -> None:
    """The guard keeps the parse of the notes it wrote, keyed by their exact bytes: any other
    content of a slot (an older valid note, garbage) is read and judged afresh."""
    cfg, _ = make_config(tmp_path)
    log = Log.open(cfg)
    try:
        log.append_many([event_for(i) for i in range(3)])
        old_note = log.store.latest_checkpoint()
        for i in range(3, 6):
            log.append(event_for(i))
        assert log.guard.read().size == 6
        for slot in (log.guard.path, log.guard.alt):
            slot.write_bytes(old_note)  # both slots wound back to size 3
        assert log.guard.read().size == 3
        log.guard.alt.write_bytes(b"\x00garbage")
        assert log.guard.read().size == 3
        log.guard.path.write_bytes(b"\x00garbage")
        with pytest.raises(InconsistentTreeError, match="does not hold a signed checkpoint"):
            log.guard.read()
    finally:
        log.close()


def test_a_guard_one_batch_behind_is_caught_up(tmp_path: Path) -> None:
    """A crash after the commit but before the guard write leaves the guard one batch behind;
    the next batch extends the older head, is proven consistent with it, and catches up."""
    cfg, _ = make_config(tmp_path)
    log = Log.open(cfg)
    try:
        log.append_many([event_for(i) for i in range(6)])
        old_note = log.store.latest_checkpoint()
        log.append_many([event_for(i) for i in range(6, 20)])
        for slot in (log.guard.path, log.guard.alt):
            os.unlink(slot)
        log.guard.write(old_note)
        assert log.guard.read().size == 6
        assert log.append(event_for(20)) == 20
        assert log.guard.read().size == 21
        check_log(log)
    finally:
        log.close()
