"""Group commit across processes, with real processes.

With a sequencer running in its own process (as the ledger service runs it), several appender
processes append at once through the socket: entries from different processes share one
transaction and one signed checkpoint, every append returns only once its entry is committed and
covered by a checkpoint, and a request's entries get consecutive indices. Without a sequencer,
processes sequence locally under the database lock and still produce one consistent log.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from ledger.entry import encode_entry
from ledger.exceptions import EntryError, LedgerError
from ledger.ipc import SequencerClient, encode_request
from ledger.log import Log, LogConfig, Sequencer
from tests.ledger import procs
from tests.ledger.integrity import LogReport, check_log
from tests.ledger.procs import finish, make_config, start_appender, start_sequencer, stop
from tests.ledger.store_conformance import event_for


@pytest.fixture(autouse=True)
def _no_leftover_processes():  # type: ignore[no-untyped-def]
    yield
    procs.kill_started()


def check_acks(report: LogReport, ackfiles: list[Path]) -> dict[tuple[str, int], list[int]]:
    """Every acknowledged entry is in the log with identical bytes; return indices by request."""
    by_request: dict[tuple[str, int], list[int]] = defaultdict(list)
    for ackfile in ackfiles:
        for index, request, data in procs.read_acks(ackfile):
            assert index < report.size, f"acknowledged index {index} is not in the log"
            assert report.entries[index] == data, f"entry {index} differs from what was acked"
            by_request[(ackfile.name, request)].append(index)
    return by_request


def pid_of(data: bytes) -> int:
    return json.loads(data)["details"]["pid"]


@pytest.mark.parametrize("max_age", [0.02, 0.0], ids=["max-age", "natural"])
def test_appenders_in_several_processes_share_batches(tmp_path: Path, max_age: float) -> None:
    """(max_age 0: the sequencer's loop commits rounds itself while the committer is idle.)"""
    _, config = make_config(tmp_path, batch_max_size=256, batch_max_age=max_age)
    sequencer = start_sequencer(config)
    start = tmp_path / "go"
    try:
        ackfiles = [tmp_path / f"acks-{k}.txt" for k in range(5)]
        appenders = [
            start_appender(
                config, ackfile, "--count", "150", "--window", "8", "--chunk", "5",
                "--batches", "20", "--expect", "remote", "--check-visible",
                "--start-file", str(start), "--request-base", str(k * 1_000_000),
            )
            for k, ackfile in enumerate(ackfiles)
        ]
        start.touch()
        for proc in appenders:
            assert "failures=0" in finish(proc)
    finally:
        stop(sequencer)
    assert sequencer.returncode == 0

    log = Log.open(procs.read_config(str(config)))
    try:
        report = check_log(log)
    finally:
        log.close()
    by_request = check_acks(report, ackfiles)
    assert report.size == 5 * (150 + 20 * 5) == sum(len(v) for v in by_request.values())
    for indices in by_request.values():  # a request's entries are consecutive, in order
        assert indices == list(range(indices[0], indices[0] + len(indices)))

    # one checkpoint per batch transaction; batches hold entries of several processes
    shared = 0
    previous = 0
    for size in report.checkpoints:
        pids = {pid_of(d) for d in report.entries[previous:size]}
        shared += len(pids) >= 2
        previous = size
    assert len({pid_of(d) for d in report.entries}) == 5
    assert shared >= 1, "no checkpoint covered entries of two processes"
    assert len(report.checkpoints) < len(by_request), "requests were not grouped into batches"


def test_processes_without_a_sequencer_share_one_consistent_log(tmp_path: Path) -> None:
    _, config = make_config(tmp_path, batch_max_size=64, batch_max_age=0.005)
    start = tmp_path / "go"
    ackfiles = [tmp_path / f"acks-{k}.txt" for k in range(4)]
    appenders = [
        start_appender(
            config, ackfile, "--count", "120", "--window", "16", "--chunk", "7",
            "--batches", "10", "--expect", "local", "--start-file", str(start),
            "--request-base", str(k * 1_000_000),
        )
        for k, ackfile in enumerate(ackfiles)
    ]
    start.touch()
    for proc in appenders:
        assert "failures=0" in finish(proc)
    log = Log.open(procs.read_config(str(config)))
    try:
        report = check_log(log)  # every checkpoint's root recomputed: one consistent history
        assert log.guard.read().size == report.size
    finally:
        log.close()
    by_request = check_acks(report, ackfiles)
    assert report.size == 4 * (120 + 10 * 7) == sum(len(v) for v in by_request.values())
    for indices in by_request.values():
        assert indices == list(range(indices[0], indices[0] + len(indices)))


@pytest.fixture
def sequencer(tmp_path: Path):  # type: ignore[no-untyped-def]
    cfg, _ = make_config(tmp_path, batch_max_size=64, batch_max_age=0.05)
    log = Log.open(cfg)
    seq = Sequencer(log)
    seq.start()
    yield cfg
    seq.stop()
    log.close()


def test_a_bad_request_is_refused_alone(sequencer: LogConfig) -> None:
    """A request with a bad entry fails by itself; requests batched with it are recorded."""
    client = SequencerClient(sequencer.socket_path, window=8)
    try:
        good1 = client.submit([encode_entry(event_for(0)), encode_entry(event_for(1))])
        bad = client.submit([encode_entry(event_for(2)), b'{"no":"type"}'])
        good2 = client.submit([encode_entry(event_for(3))])
        assert good1.result(60) == 0 and good2.result(60) == 2
        with pytest.raises(EntryError, match="entry 1 of the request"):
            bad.result(60)
    finally:
        client.close()
    log = Log.open(sequencer)
    try:
        assert check_log(log).size == 3
    finally:
        log.close()


def test_a_malformed_frame_closes_only_its_connection(sequencer: LogConfig) -> None:
    import socket

    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.connect(str(sequencer.socket_path))
    frame = encode_request(7, [b"x"])
    raw.sendall(b"Z" + frame[1:])  # unknown tag
    reply = raw.recv(100)
    assert reply[:1] == b"E" and b"unknown request tag" in reply
    raw.close()
    log = Log.open(sequencer)
    try:
        appender = log.appender()
        assert appender.remote
        assert appender.append(event_for(0)) == 0  # the sequencer still serves others
    finally:
        log.close()


def test_a_second_sequencer_is_refused_and_leaves_the_first_running(
    sequencer: LogConfig,
) -> None:
    log = Log.open(sequencer)
    try:
        with pytest.raises(LedgerError, match="another sequencer"):
            Sequencer(log).start()
        assert sequencer.socket_path.exists()
        appender = log.appender()
        assert appender.remote and appender.append(event_for(0)) == 0
    finally:
        log.close()


def _read_answers(raw, count: int) -> dict[int, int]:  # type: ignore[no-untyped-def]
    """Read `count` answer frames from a raw socket: {request id: first index}."""
    import struct

    answers: dict[int, int] = {}
    buf = b""
    while len(answers) < count:
        chunk = raw.recv(1 << 16)
        assert chunk, f"the sequencer closed the connection after {len(answers)} answers"
        buf += chunk
        while len(buf) >= 13:
            assert buf[:1] == b"K", buf[:80]
            request_id, first = struct.unpack(">IQ", buf[1:13])
            answers[request_id] = first
            buf = buf[13:]
    return answers


def test_more_requests_than_the_inflight_limit_are_held_back_not_lost(
    sequencer: LogConfig,
) -> None:
    """A connection may send far more requests than MAX_INFLIGHT before reading any answer."""
    import socket

    from ledger.ipc import MAX_INFLIGHT

    count = MAX_INFLIGHT * 3
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.connect(str(sequencer.socket_path))
    try:
        raw.sendall(b"".join(encode_request(k + 1, [encode_entry(event_for(k))])
                             for k in range(count)))
        answers = _read_answers(raw, count)
    finally:
        raw.close()
    assert sorted(answers) == list(range(1, count + 1))
    assert sorted(answers.values()) == list(range(count))  # each entry once, none lost
    log = Log.open(sequencer)
    try:
        assert check_log(log).size == count
    finally:
        log.close()


def test_requests_arriving_in_pieces_and_a_vanished_client(sequencer: LogConfig) -> None:
    """Frames split across writes are reassembled; a client that leaves with requests in flight
    does not disturb the others."""
    import socket

    frame = encode_request(5, [encode_entry(event_for(0)), encode_entry(event_for(1))])
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.connect(str(sequencer.socket_path))
    try:
        for k in range(0, len(frame), 7):  # the header itself arrives in two pieces
            raw.sendall(frame[k : k + 7])
        assert _read_answers(raw, 1) == {5: 0}
    finally:
        raw.close()
    gone = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    gone.connect(str(sequencer.socket_path))
    gone.sendall(b"".join(encode_request(k + 1, [encode_entry(event_for(k))]) for k in range(20)))
    gone.close()  # leaves before its answers
    client = SequencerClient(sequencer.socket_path)
    mine = encode_entry(event_for(99))
    try:
        index = client.submit([mine]).result(60)
    finally:
        client.close()
    log = Log.open(sequencer)
    try:
        report = check_log(log)
        assert report.entries[index] == mine
        assert 3 <= report.size <= 23  # (what the vanished client sent may or may not count)
    finally:
        log.close()


def test_stopping_answers_what_it_took_and_records_nothing_it_refused(tmp_path: Path) -> None:
    """A sequencer that stops mid-stream answers every request it queued; an appender is told
    of failure only for entries that are not in the log."""
    from ledger.exceptions import LedgerUnavailable

    cfg, _ = make_config(tmp_path, batch_max_size=64)
    log = Log.open(cfg)
    seq = Sequencer(log)
    seq.start()
    client = SequencerClient(cfg.socket_path, max_entries=64)
    sent = [encode_entry(event_for(k)) for k in range(3000)]
    futures = [client.submit([data]) for data in sent]
    seq.stop()
    log.close()
    outcomes = []
    for fut in futures:
        try:
            outcomes.append(fut.result(60))
        except LedgerUnavailable:
            outcomes.append(None)
    client.close(timeout=0)
    log = Log.open(cfg)
    try:
        report = check_log(log)
    finally:
        log.close()
    acknowledged = {i for i in outcomes if i is not None}
    assert acknowledged, "nothing was answered before the stop"
    for data, index in zip(sent, outcomes):
        if index is not None:
            assert report.entries[index] == data
    recorded = set(report.entries)
    assert all(data not in recorded for data, index in zip(sent, outcomes) if index is None)
