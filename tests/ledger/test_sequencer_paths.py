"""Which thread does what on the sequencer socket, and that the short paths keep every promise.

A lone append takes the shortest path: the server's loop thread commits it itself when the
committer is idle (`GroupCommitter.lead`), and a caller waiting for its answer reads it itself.
Answers nobody waits for are read by the client's receiver thread; answers of batches the
committing thread commits are written by it while the loop is idle, in order with the loop's.
These tests use a commit function without a database whose commits can be held at a gate.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

from ledger.batching import GroupCommitter
from ledger.exceptions import EntryError, LedgerUnavailable
from ledger.ipc import BadEntryError, SequencerClient, SequencerServer, encode_request
from ledger.log import Log
from tests.ledger.procs import make_config
from tests.ledger.store_conformance import event_for

LOOP = "ledger-sequencer-socket"
WORKER = "ledger-batcher"
RECEIVER = "ledger-client-recv"


class GatedLog:
    """A commit function: appends the batch to a list, after waiting while the gate is closed."""

    def __init__(self) -> None:
        self.entries: list[bytes] = []
        self.batches: list[list[bytes]] = []
        self.threads: list[str] = []  # the thread that committed each batch
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = threading.Event()  # a commit waits at the closed gate

    def commit(self, batch: list[bytes]) -> int:
        if not self.gate.is_set():
            self.waiting.set()
        self.gate.wait(60)
        first = len(self.entries)
        self.entries.extend(batch)
        self.batches.append(list(batch))
        self.threads.append(threading.current_thread().name)
        return first


def refuse_bad(entries: list[bytes]) -> list[bytes]:
    for i, data in enumerate(entries):
        if data == b"bad":
            raise BadEntryError("a bad entry", i)
    return entries


def until(condition, what: str, patience: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    """Wait for a state (not a timing assertion: the patience is only a guard)."""
    deadline = time.monotonic() + patience
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.001)


@contextmanager
def serving(path: Path, gated: GatedLog,
            commit: Callable[[list[bytes]], int] | None = None,
            max_size: int = 1024) -> Iterator[SimpleNamespace]:
    """A sequencer on `path` whose committer commits through `commit` (default: the gated log's
    own); the gate is opened before it stops."""
    committer: GroupCommitter[bytes] = GroupCommitter(commit or gated.commit, max_size=max_size)
    server = SequencerServer(path, committer.submit, refuse_bad, lead=committer.lead)
    server.start()
    try:
        yield SimpleNamespace(path=server.path, server=server, committer=committer, log=gated)
    finally:
        gated.gate.set()
        server.stop()
        committer.close()


@pytest.fixture
def served(tmp_path: Path):  # type: ignore[no-untyped-def]
    with serving(tmp_path / "sequencer.sock", GatedLog()) as s:
        yield s


def hold_the_committer(served: SimpleNamespace) -> Future:
    """Close the gate and keep the worker busy with an in-process batch."""
    served.log.gate.clear()
    busy = served.committer.submit([b"in-process"])
    until(served.log.waiting.is_set, "the worker to reach the gate")
    return busy


def read_answers(raw: socket.socket, count: int) -> list[tuple[bytes, int, int]]:
    """`count` answer frames in arrival order: (tag, request id, first index or 0)."""
    out: list[tuple[bytes, int, int]] = []
    buf = b""
    while len(out) < count:
        chunk = raw.recv(1 << 16)
        assert chunk, f"the sequencer closed the connection after {len(out)} answers"
        buf += chunk
        while buf:
            if buf[:1] == b"K" and len(buf) >= 13:
                _, request_id, first = struct.unpack(">cIQ", buf[:13])
                out.append((b"K", request_id, first))
                buf = buf[13:]
            elif buf[:1] == b"E" and len(buf) >= 9:
                _, request_id, n = struct.unpack(">cII", buf[:9])
                if len(buf) < 9 + n:
                    break
                out.append((b"E", request_id, 0))
                buf = buf[9 + n :]
            else:
                assert buf[:1] in (b"K", b"E"), buf[:40]
                break
    return out


# --- the short path ------------------------------------------------------------------------


def test_a_lone_synchronous_append_is_committed_by_the_loop_and_read_by_its_caller(
    served: SimpleNamespace,
) -> None:
    client = SequencerClient(served.path)
    try:
        for k in range(5):
            fut = client.submit([b"entry-%d" % k], sync=True)
            resolved_in: list[str] = []
            fut.add_done_callback(lambda f: resolved_in.append(threading.current_thread().name))
            assert fut.result(60) == k
            assert resolved_in == [threading.current_thread().name]  # not the receiver
        assert client.commit([b"a", b"b"]) == 5
    finally:
        client.close()
    assert client.answers_read_by_callers >= 6
    assert served.server.led == 6 and served.committer.led == 6
    assert set(served.log.threads) == {LOOP}  # no hand-off to the committing thread
    assert served.log.entries == [b"entry-%d" % k for k in range(5)] + [b"a", b"b"]


def test_answers_nobody_waits_for_are_read_by_the_receiver(served: SimpleNamespace) -> None:
    client = SequencerClient(served.path)
    done = threading.Event()
    resolved_in: set[str] = set()
    results: dict[int, int] = {}
    lock = threading.Lock()

    def record(k: int, fut: Future) -> None:
        with lock:
            results[k] = fut.result()
            resolved_in.add(threading.current_thread().name)
            if len(results) == 200:
                done.set()

    try:
        busy = hold_the_committer(served)  # (no answer before every callback is in place)
        for k in range(200):
            client.submit([b"async-%d" % k]).add_done_callback(lambda f, k=k: record(k, f))
        served.log.gate.set()
        assert done.wait(60), f"{200 - len(results)} answers never arrived"
    finally:
        client.close()
    assert busy.result(0) == 0
    assert resolved_in == {RECEIVER}
    assert client.answers_read_by_callers == 0
    assert all(served.log.entries[i] == b"async-%d" % k for k, i in results.items())


def test_waiting_callers_and_async_submitters_share_one_connection(served: SimpleNamespace) -> None:
    """Callers waiting in many threads take turns reading (and read for each other and for
    the async submitters); every request is answered once, with its own entries."""
    client = SequencerClient(served.path, window=4)
    answers: dict[bytes, int] = {}
    lock = threading.Lock()
    errors: list[BaseException] = []

    def caller(t: int) -> None:
        try:
            for k in range(40):
                entries = [b"t%d-%d-%d" % (t, k, j) for j in range(1 + k % 3)]
                first = client.submit(entries, sync=True).result(60)
                with lock:
                    answers.update({e: first + j for j, e in enumerate(entries)})
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=caller, args=(t,)) for t in range(6)]
    try:
        for t in threads:
            t.start()
        pending = [(b"async-%d" % k, client.submit([b"async-%d" % k])) for k in range(300)]
        for t in threads:
            t.join(120)
        for data, fut in pending:
            answers[data] = fut.result(60)
    finally:
        client.close()
    assert not errors, errors
    assert len(answers) == 6 * sum(1 + k % 3 for k in range(40)) + 300
    assert all(served.log.entries[index] == data for data, index in answers.items())
    assert len(served.log.entries) == len(answers)


def test_a_caller_that_stops_waiting_passes_the_reading_on(served: SimpleNamespace) -> None:
    client = SequencerClient(served.path)
    try:
        busy = hold_the_committer(served)
        fut = client.submit([b"late"], sync=True)
        with pytest.raises(TimeoutError):
            fut.result(timeout=0.2)
        answered = threading.Event()
        fut.add_done_callback(lambda f: answered.set())
        served.log.gate.set()
        assert answered.wait(60), "nobody read the answer after its caller stopped waiting"
        assert fut.result(0) == 1 and busy.result(60) == 0
    finally:
        client.close()


def test_a_lost_connection_fails_the_waiting_caller(tmp_path: Path) -> None:
    path = tmp_path / "fake.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)

    def take_one_request_and_leave() -> None:
        conn, _ = listener.accept()
        conn.recv(1 << 16)
        conn.close()

    fake = threading.Thread(target=take_one_request_and_leave)
    fake.start()
    client = SequencerClient(path)
    try:
        with pytest.raises(LedgerUnavailable, match="before the append was acknowledged"):
            client.commit([b"x"])
        assert client.broken is not None
        client._receiver.join(30)
        assert not client._receiver.is_alive()
        with pytest.raises(LedgerUnavailable, match="lost the sequencer"):
            client.submit([b"y"], sync=True)
    finally:
        fake.join(30)
        client.close(timeout=0)
        listener.close()


def test_a_bad_entry_of_a_waiting_caller_is_refused_by_position(served: SimpleNamespace) -> None:
    client = SequencerClient(served.path)
    try:
        with pytest.raises(EntryError, match="entry 1 of the request: a bad entry"):
            client.commit([b"fine", b"bad"])
        assert client.commit([b"good"]) == 0
    finally:
        client.close()
    assert served.log.entries == [b"good"]


# --- the committing thread's answers ---------------------------------------------------------


def test_answers_written_by_the_committing_thread_arrive_whole_and_in_order(
    served: SimpleNamespace,
) -> None:
    """Requests queued behind a batch are committed by the worker, which writes their answers
    itself while the loop is idle; refusals the loop wrote meanwhile stay whole frames."""
    busy = hold_the_committer(served)
    sizes = [1 + k % 4 for k in range(24)]
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.connect(str(served.path))
    try:
        frames = []
        for k, size in enumerate(sizes):
            entries = [b"r%d-%d" % (k, j) for j in range(size)]
            if k == 5:
                entries[-1] = b"bad"  # refused by the loop at once
            frames.append(encode_request(k + 1, entries))
        raw.sendall(b"".join(frames))
        refused = read_answers(raw, 1)
        assert refused == [(b"E", 6, 0)]
        until(lambda: len(served.committer._queue) == len(sizes) - 1, "the requests to queue")
        until(lambda: served.server._polling, "the loop to be idle")
        served.log.gate.set()
        answers = read_answers(raw, len(sizes) - 1)
    finally:
        raw.close()
    assert busy.result(60) == 0
    expected, first = [], 1
    for k, size in enumerate(sizes):
        if k != 5:
            expected.append((b"K", k + 1, first))
            first += size
    assert answers == expected  # one batch, answered in request order
    until(lambda: served.committer.idle, "the worker to finish its batch")
    assert served.server.written_by_committer == len(sizes) - 1
    assert served.log.threads == [WORKER, WORKER]


def test_more_requests_than_the_inflight_limit_behind_a_busy_committer(
    served: SimpleNamespace,
) -> None:
    """Held-back requests are taken up again when the committing thread's answers free slots."""
    from ledger.ipc import MAX_INFLIGHT

    busy = hold_the_committer(served)
    count = MAX_INFLIGHT * 2 + 5
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.connect(str(served.path))
    try:
        raw.sendall(b"".join(encode_request(k + 1, [b"m%d" % k]) for k in range(count)))
        until(lambda: len(served.committer._queue) == MAX_INFLIGHT, "the first slots to fill")
        served.log.gate.set()
        answers = read_answers(raw, count)
    finally:
        raw.close()
    assert busy.result(60) == 0
    assert sorted(request_id for _, request_id, _ in answers) == list(range(1, count + 1))
    assert served.log.entries[1:] == [b"m%d" % k for k in range(count)]


def _commit_in_thread(client: SequencerClient, data: bytes, results: dict) -> threading.Thread:
    def run() -> None:
        try:
            results[data] = client.commit([data])
        except BaseException as e:  # noqa: BLE001 - checked by the test
            results[data] = e

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _stop_while_held(served: SimpleNamespace) -> None:
    """Stop the server while the gate holds a commit; open the gate once stop() has begun."""
    stopper = threading.Thread(target=served.server.stop)
    stopper.start()
    until(lambda: served.server._stopping, "stop() to begin")
    served.log.gate.set()
    stopper.join(60)
    assert not stopper.is_alive()


def test_stop_answers_the_round_the_loop_is_committing(served: SimpleNamespace) -> None:
    client = SequencerClient(served.path)
    results: dict[bytes, object] = {}
    try:
        served.log.gate.clear()
        caller = _commit_in_thread(client, b"led", results)
        until(served.log.waiting.is_set, "the loop to commit at the gate")
        assert served.server.led == 0  # (the loop is inside lead())
        _stop_while_held(served)
        caller.join(60)
    finally:
        client.close(timeout=0)
    assert results == {b"led": 0}
    assert served.log.threads == [LOOP] and served.server.led == 1


def test_stop_answers_requests_queued_behind_a_busy_committer(served: SimpleNamespace) -> None:
    clients = [SequencerClient(served.path) for _ in range(3)]
    results: dict[bytes, object] = {}
    try:
        busy = hold_the_committer(served)
        callers = [_commit_in_thread(c, b"queued-%d" % k, results) for k, c in enumerate(clients)]
        until(lambda: len(served.committer._queue) == 3, "the requests to queue")
        _stop_while_held(served)
        for caller in callers:
            caller.join(60)
    finally:
        for client in clients:
            client.close(timeout=0)
    assert busy.result(0) == 0
    assert sorted(results.values()) == [1, 2, 3]  # type: ignore[type-var]
    assert all(served.log.entries[i] == data for data, i in results.items())  # type: ignore[index]


# --- the group committer --------------------------------------------------------------------


def test_lead_commits_in_the_calling_thread_only_when_the_committer_is_idle() -> None:
    gated = GatedLog()
    committer: GroupCommitter[bytes] = GroupCommitter(gated.commit, max_size=64)
    try:
        futures = committer.lead([[b"a"], [b"b", b"c"]])
        assert futures is not None and [f.result(0) for f in futures] == [0, 1]
        assert gated.threads == [threading.current_thread().name]

        gated.gate.clear()
        leader = threading.Thread(target=lambda: committer.lead([[b"lead"]]), name="leader")
        leader.start()
        until(gated.waiting.is_set, "the leader to commit")
        assert committer.lead([[b"no"]]) is None  # a batch is in progress
        queued = [committer.submit([b"q1"]), committer.submit([b"q2", b"q3"])]
        assert committer.lead([[b"no"]]) is None  # (and requests are queued)
        gated.gate.set()
        leader.join(60)
        assert [f.result(60) for f in queued] == [4, 5]  # the worker's next batch
        assert gated.batches[-1] == [b"q1", b"q2", b"q3"]
        assert gated.threads[1:] == ["leader", WORKER]
        assert committer.led == 2 and committer.batches == 3
    finally:
        committer.close()
    assert committer.lead([[b"closed"]]) is None
    with pytest.raises(LedgerUnavailable):
        committer.submit([b"closed"])


def test_lead_reports_a_failed_commit_on_every_future() -> None:
    def failing(batch: list[bytes]) -> int:
        raise LedgerUnavailable("disk full")

    committer: GroupCommitter[bytes] = GroupCommitter(failing)
    try:
        futures = committer.lead([[b"a"], [b"b"]])
        assert futures is not None
        for fut in futures:
            with pytest.raises(LedgerUnavailable, match="disk full"):
                fut.result(0)
        assert committer.idle
    finally:
        committer.close()


def test_batches_keep_requests_whole_and_close_commits_what_is_queued() -> None:
    gated = GatedLog()
    committer: GroupCommitter[bytes] = GroupCommitter(gated.commit, max_size=4)
    gated.gate.clear()
    busy = committer.submit([b"busy"])
    until(gated.waiting.is_set, "the worker to reach the gate")
    a = committer.submit([b"a"] * 3)
    b = committer.submit([b"b"] * 3)
    big = committer.submit([b"c"] * 6)  # larger than a batch: goes alone
    closer = threading.Thread(target=committer.close)
    closer.start()
    gated.gate.set()
    closer.join(60)
    assert [f.result(0) for f in (busy, a, b, big)] == [0, 1, 4, 7]
    assert [len(batch) for batch in gated.batches] == [1, 3, 3, 6]


def test_a_full_batch_does_not_wait_for_max_age() -> None:
    gated = GatedLog()
    committer: GroupCommitter[bytes] = GroupCommitter(gated.commit, max_size=3, max_age=600)
    try:
        assert committer.lead([[b"x"]]) is None  # (batches are meant to wait for company)
        futures = [committer.submit([b"%d" % k]) for k in range(3)]
        assert [f.result(60) for f in futures] == [0, 1, 2]  # (not after ten minutes)
        assert gated.batches == [[b"0", b"1", b"2"]]
    finally:
        committer.close()


def test_a_waiting_local_append_commits_in_its_own_thread(tmp_path: Path) -> None:
    cfg, _ = make_config(tmp_path, batch_max_size=64)
    log = Log.open(cfg)
    try:
        assert log.append(event_for(0)) == 0
        assert log.append_many([event_for(1), event_for(2)]) == [1, 2]
        committer = log.appender().committer
        assert committer is not None and committer.led == 2 and committer.batches == 2
        assert log.appender().append_async(event_for(3)).result(60) == 3
        assert committer.led == 2 and committer.batches == 3  # the worker took that one
    finally:
        log.close()


def test_a_sequencer_gone_while_the_connection_was_idle_costs_no_append(tmp_path: Path) -> None:
    """Nobody reads an idle connection; its end is found before the next append is sent, so
    the append goes to the next sequencer (or is sequenced locally) instead of failing."""
    from ledger.log import Sequencer

    cfg, _ = make_config(tmp_path, batch_max_size=64)
    service_log = Log.open(cfg)
    sequencer = Sequencer(service_log)
    sequencer.start()
    log = Log.open(cfg)
    try:
        assert log.appender().remote and log.append(event_for(0)) == 0
        first_client = log.appender().client
        sequencer.stop()  # while the appender's connection is idle
        service_log.close()
        assert log.append(event_for(1)) == 1  # sequenced locally now
        assert log.appender().client is None and first_client.broken is not None
        assert log.append_many([event_for(2), event_for(3)]) == [2, 3]
    finally:
        log.close()
