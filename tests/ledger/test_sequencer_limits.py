"""The sequencer socket's limits and refusals: one request never costs another its answer.

Real sockets, threads, `SequencerServer`, `SequencerClient` and `GroupCommitter`; the commit
function is the gated in-memory one of `test_sequencer_paths`.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from ledger.exceptions import EntryError, LedgerUnavailable
from ledger.ipc import MAX_REQUEST_ENTRIES, SequencerClient
from tests.ledger.test_sequencer_paths import (
    GatedLog,
    _commit_in_thread,
    hold_the_committer,
    serving,
    until,
)


@pytest.fixture
def served(tmp_path: Path):  # type: ignore[no-untyped-def]
    with serving(tmp_path / "sequencer.sock", GatedLog()) as s:
        yield s


def test_an_oversized_request_fails_alone(served: SimpleNamespace) -> None:
    """A request above the sequencer's frame limits used to go out as a frame the sequencer
    calls malformed: it closed the connection and the client failed every request in flight on
    it, including one the sequencer had already queued and then committed."""
    client = SequencerClient(served.path)
    try:
        busy = hold_the_committer(served)
        small = client.submit([b"small"])  # taken by the sequencer, queued behind the batch
        until(lambda: len(served.committer._queue) == 1, "the small request to queue")
        with pytest.raises((EntryError, LedgerUnavailable)):
            client.submit([b"x"] * (MAX_REQUEST_ENTRIES + 1), sync=True).result(60)
        served.log.gate.set()
        assert busy.result(60) == 0
        until(lambda: served.committer.idle, "the worker to finish")
        assert served.log.entries == [b"in-process", b"small"]
        assert small.result(60) == 1  # it is in the log, so it must not be reported failed
        assert client.broken is None
        assert client.commit([b"after"]) == 2  # the connection still serves
    finally:
        client.close(timeout=0)


def test_packed_requests_stay_under_the_frame_byte_limit(
    served: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests that each fit in a frame must not be packed into one that does not (with the
    default batch size of 1024 and entries near 64 KiB a packed frame passes 64 MiB). The
    limit is lowered here so the test stays small; server and client read the same constant."""
    monkeypatch.setattr("ledger.ipc.MAX_REQUEST_BYTES", 1000)
    client = SequencerClient(served.path, window=1)
    try:
        busy = hold_the_committer(served)
        first = client.submit([b"first"])  # sent: the window is now full
        until(lambda: len(served.committer._queue) == 1, "the first request to queue")
        a = client.submit([b"a" * 600])  # both wait for window space, then go out together
        b = client.submit([b"b" * 600])
        served.log.gate.set()
        assert busy.result(60) == 0
        assert [first.result(60), a.result(60), b.result(60)] == [1, 2, 3]
        assert served.log.entries[1:] == [b"first", b"a" * 600, b"b" * 600]
    finally:
        client.close(timeout=0)


def test_a_request_the_committer_refuses_after_the_round_is_answered(
    served: SimpleNamespace,
) -> None:
    """A lone request is held for the loop's round; if the committer then refuses it (closed,
    say because the log was closed before the sequencer), the refusal must be written out,
    not left in the connection's buffer until the appender gives up."""
    client = SequencerClient(served.path)
    try:
        assert client.commit([b"before"]) == 0  # (the lone-append path: led by the loop)
        served.committer.close()
        fut = client.submit([b"refused"], sync=True)
        with pytest.raises(LedgerUnavailable, match="closed"):
            fut.result(30)  # (a guard: without the answer this raises TimeoutError)
    finally:
        client.close(timeout=0)
    assert served.log.entries == [b"before"]


class _Interrupted(Exception):
    pass


def test_a_caller_interrupted_while_following_does_not_take_the_reading_away(
    tmp_path: Path,
) -> None:
    """A caller waiting behind another thread's reading (a follower) is interrupted (a signal,
    as Ctrl-C would be). When the reader finishes, the reading must go to someone still
    there: else nobody reads again and every later append on the connection times out."""
    gated = GatedLog()
    second_may_commit = threading.Event()

    def commit(batch: list[bytes]) -> int:
        if b"second" in batch:
            assert second_may_commit.wait(60)
        return gated.commit(batch)

    def interrupt(signum, frame):  # type: ignore[no-untyped-def]
        raise _Interrupted()

    results: dict = {}
    previous = signal.signal(signal.SIGALRM, interrupt)
    with serving(tmp_path / "sequencer.sock", gated, commit, max_size=1) as served:  # a batch each
        client = SequencerClient(served.path)
        try:
            busy = hold_the_committer(served)
            reader = _commit_in_thread(client, b"first", results)  # it reads; the gate holds it
            until(lambda: client._reader is not None, "the first caller to read")
            fut = client.submit([b"second"], sync=True)
            signal.setitimer(signal.ITIMER_REAL, 0.3)
            with pytest.raises(_Interrupted):
                fut.result(60)  # follows the first caller until the alarm interrupts it
            gated.gate.set()
            reader.join(60)  # "first" answered; "second" is still being committed
            assert results[b"first"] == 1 and busy.result(60) == 0
            second_may_commit.set()
            assert fut.result(60) == 2  # somebody still reads the answers
            assert client.submit([b"third"], sync=True).result(60) == 3
            assert gated.entries == [b"in-process", b"first", b"second", b"third"]
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            second_may_commit.set()
            client.close(timeout=0)
