"""The sequencer socket: how appenders in other processes hand entries to the one sequencer.

When a ledger service runs, it owns the log's sequencer and listens on a Unix socket in the
ledger directory (mode 0600, so only the platform's own services can append). Appenders send
requests with their entries; the sequencer puts requests from every connection into the same
group-commit batches, so concurrent appenders in many processes share one transaction and one
checkpoint, and each request is answered only after its batch is durable.

Requests are pipelined: a client may send more requests before the earlier ones are answered
(at most `MAX_INFLIGHT` per connection), and answers carry the request's id. A request's entries
are never split across batches, so they get consecutive indices.

Frames (big-endian):
    request   b"A" u32 id, u32 count, u32 body length, body = count × (u32 length, entry bytes)
    response  b"K" u32 id, u64 first index  — every entry of the request is durable
              b"E" u32 id, u32 length, UTF-8 reason — nothing of the request was recorded

A frame outside the limits (no entries, more than `MAX_REQUEST_ENTRIES`, a body over
`MAX_REQUEST_BYTES`) is malformed: the server drops the connection, failing every request on it.
So the client refuses such a request itself (`EntryError`, nothing sent) and packs callers'
requests into frames within both limits.

The server checks each request on its own (size, JSON object, type, time) before queueing it,
so a bad request is refused alone and never fails the batch it would have shared with others.
A client packs several callers' requests into one frame; when the server refuses a frame for a
bad entry it names the entry (``EntryError@<position>: reason``, nothing of the frame was
recorded), and the client fails that caller's request only and sends the others again.

Each hand-off between threads costs a wake-up (0.3-0.5 ms on an idle VM), so a lone append
takes the shortest path: the caller writes its frame itself; the server's loop thread reads it
and, with the committer idle, commits it itself (`GroupCommitter.lead`) and writes the answer;
the caller, waiting for it, reads the answer itself. That is one wake-up on each side. Under
load the loop hands requests to the committing thread as it parses them, so parsing overlaps
the commit (natural group commit), and answers go back through the loop, or straight from the
committing thread when the loop is idle; the client's receiver thread reads the answers no
caller waits for.
"""

from __future__ import annotations

import logging
import os
import select
import selectors
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from ledger.entry import MAX_ENTRY_BYTES
from ledger.exceptions import EntryError, LedgerError, LedgerUnavailable

log = logging.getLogger(__name__)

MAX_REQUEST_ENTRIES = 100_000
MAX_REQUEST_BYTES = 64 << 20
MAX_INFLIGHT = 64  # requests a connection may have queued at the sequencer at once
LEAD_MAX_ENTRIES = 64  # a round of at most this many entries may be committed by the loop
_HEAD = struct.Struct(">cIII")
_LEN = struct.Struct(">I")
_OK = struct.Struct(">cIQ")
_ERR = struct.Struct(">cII")


class BadEntryError(EntryError):
    """An entry of a request is not acceptable; `position` is its place in the request."""

    def __init__(self, message: str, position: int):
        super().__init__(message)
        self.position = position


def encode_request(request_id: int, entries: Sequence[bytes]) -> bytes:
    pack = _LEN.pack
    body = b"".join([part for e in entries for part in (pack(len(e)), e)])
    return _HEAD.pack(b"A", request_id, len(entries), len(body)) + body


def split_body(body: bytes, count: int) -> list[bytes]:
    """The entries of a request body (count × (u32 length, bytes)), checked to fill it exactly."""
    out = []
    pos, end = 0, len(body)
    unpack = _LEN.unpack_from
    for _ in range(count):
        if pos + 4 > end:
            raise LedgerError("request body ends inside an entry length")
        (n,) = unpack(body, pos)
        pos += 4
        if n > MAX_ENTRY_BYTES:
            raise LedgerError(f"entry of {n} bytes is larger than the limit of {MAX_ENTRY_BYTES}")
        if pos + n > end:
            raise LedgerError("request body ends inside an entry")
        out.append(body[pos : pos + n])
        pos += n
    if pos != end:
        raise LedgerError(f"request body has {end - pos} bytes after its {count} entries")
    return out


class SequencerServer:
    """Serves the socket from one thread (a selector loop over every connection).

    `prepare(entries)` checks one request's entries and returns what `submit` takes (raising
    EntryError for a bad entry); `submit(prepared)` returns a future of the first index.
    `lead(list of prepared)`, when given, commits them as one batch in the calling thread if
    the committer is idle and returns their resolved futures, else returns None.

    A round of the loop (what one `select` found) whose only requests are small ones from one
    connection is committed by the loop itself through `lead` when the committer is idle, and
    answered at once: a lone append costs one wake-up here instead of three. Anything else is
    submitted to the committing thread as it is parsed, so parsing the next requests overlaps
    the commit. The committing thread writes an answer straight to the socket when the loop is
    idle in `select` and the connection has nothing else to write; otherwise it queues the
    answer for the loop and wakes it. (One thread serving every connection keeps the
    sequencer's Python work off the GIL of the thread that commits: a thread per connection
    made the committer wait for the GIL after each database call.)
    """

    def __init__(self, path: Path, submit: Callable[[Any], "Future[int]"],
                 prepare: Callable[[list[bytes]], Any] = lambda entries: entries,
                 lead: Callable[[list[Any]], "list[Future[int]] | None"] | None = None):
        self.path = path
        self.submit = submit
        self.prepare = prepare
        self.lead = lead
        self.thread: threading.Thread | None = None
        self._listener: socket.socket | None = None
        self._selector: selectors.BaseSelector | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._lock = threading.Lock()  # connections' output, in-flight counts, eof, closing
        self._woken = False
        self._polling = False  # the loop is (about to be) blocked in select
        self._loop_ident = 0
        self._stopping = False
        self._stop_deadline = 0.0
        # answers for the loop: (connection, frame to write) or (connection, None) when the
        # committing thread already wrote it and the loop only has to look at the connection
        self._replies: deque[tuple[_Connection, bytes | None]] = deque()
        self._conns: set[_Connection] = set()
        self._readbuf = bytearray(1 << 18)
        self._readview = memoryview(self._readbuf)
        self._deferred: list[tuple[_Connection, int, Any, int]] = []  # this round's, for lead
        self._deferred_entries = 0
        self._lead_ok = True  # this round has found small requests of one connection only
        self.led = 0  # rounds the loop committed itself (for tests and measurements)
        self.written_by_committer = 0  # answers the committing thread wrote itself (ditto)

    def start(self) -> None:
        """Bind the socket (replacing a stale one) and serve in a background thread."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() or self.path.is_symlink():
            self.path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            listener.bind(str(self.path))
        except BaseException:
            listener.close()
            raise
        finally:
            os.umask(old)
        listener.listen(256)  # many appender processes may connect at once
        listener.setblocking(False)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(listener, selectors.EVENT_READ, _ACCEPT)
        self._selector.register(self._wake_r, selectors.EVENT_READ, _WAKE)
        self._listener = listener
        self._stopping = False
        self.thread = threading.Thread(target=self._loop, name="ledger-sequencer-socket",
                                       daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking requests, answer those already queued (the committer must still run),
        then close every connection and remove the socket."""
        if self.thread is None:
            return
        self._stop_deadline = time.monotonic() + timeout
        self._stopping = True
        self._wake()
        self.thread.join(timeout + 5)
        self.thread = None
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    # --- the loop (one thread) ---------------------------------------------------------------

    def _loop(self) -> None:
        assert self._selector is not None
        self._loop_ident = threading.get_ident()
        draining = False
        try:
            while True:
                if self._stopping and not draining:
                    draining = True
                    self._stop_listening()
                if draining and (self._drained() or time.monotonic() > self._stop_deadline):
                    break
                self._polling = True
                try:
                    events = self._selector.select(0.05 if draining else None)
                finally:
                    self._polling = False
                for key, mask in events:
                    if key.data is _ACCEPT:
                        self._accept()
                    elif key.data is _WAKE:
                        self._drain_wake()
                    else:
                        self._serve_event(key.data, mask)
                self._deliver()
                while self._deferred:  # (parsing held-back requests may defer more)
                    self._end_round()
                    self._deliver()
                self._lead_ok = True
        finally:
            for conn in list(self._conns):
                self._close(conn)
            for s in (self._listener, self._wake_r, self._wake_w):
                if s is not None:
                    s.close()
            self._selector.close()

    def _serve_event(self, conn: "_Connection", mask: int) -> None:
        try:
            if mask & selectors.EVENT_WRITE:
                self._flush(conn)
            if mask & selectors.EVENT_READ and not conn.closed:
                self._read(conn)
        except Exception:  # noqa: BLE001 - a bug must cost one connection, not the sequencer
            log.exception("ledger sequencer: dropping a connection after an unexpected error")
            self._close(conn)

    def _stop_listening(self) -> None:
        """Refuse new connections and new requests; queued ones are still answered."""
        assert self._selector is not None and self._listener is not None
        self._selector.unregister(self._listener)
        self._listener.close()
        for conn in list(self._conns):
            self._update(conn)

    def _drained(self) -> bool:
        return not self._replies and all(
            conn.inflight == 0 and not conn.out for conn in self._conns
        )

    def _accept(self) -> None:
        assert self._listener is not None and self._selector is not None
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            sock.setblocking(False)
            conn = _Connection(sock)
            self._conns.add(conn)
            self._selector.register(sock, selectors.EVENT_READ, conn)
            conn.events = selectors.EVENT_READ

    def _read(self, conn: "_Connection") -> None:
        try:
            # (into one buffer kept for it: recv(256 KiB) would map and unmap a fresh 256 KiB
            # for every read, 16 us of a lone append)
            n = conn.sock.recv_into(self._readbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not n:
            with self._lock:
                conn.eof = True
        else:
            conn.inbuf += self._readview[:n]
            self._parse(conn)
        self._update(conn)

    def _parse(self, conn: "_Connection") -> None:
        """Take every complete request from the connection's buffer (while it has slots)."""
        buf = conn.inbuf
        pos = 0
        while conn.inflight < MAX_INFLIGHT and not conn.fatal and len(buf) - pos >= _HEAD.size:
            tag, request_id, count, size = _HEAD.unpack_from(buf, pos)
            problem = _header_problem(tag, count, size)
            if problem is None and len(buf) - pos - _HEAD.size < size:
                break  # the rest of this request has not arrived yet
            if problem is None:
                start = pos + _HEAD.size
                try:
                    entries = split_body(bytes(buf[start : start + size]), count)
                except LedgerError as e:
                    problem = str(e)
                pos = start + size
            if problem is not None:  # a malformed frame: answer and close the connection
                with self._lock:
                    conn.out += _ERR_frame(0, problem)
                    conn.fatal = True
                break
            self._handle(conn, request_id, entries)
        del buf[:pos]

    def _handle(self, conn: "_Connection", request_id: int, entries: list[bytes]) -> None:
        try:
            prepared = self.prepare(entries)
        except BadEntryError as e:
            self._refuse(conn, request_id, f"EntryError@{e.position}: {e}")
            return
        except Exception as e:  # noqa: BLE001 - refused before queueing: tell the client
            self._refuse(conn, request_id, f"{type(e).__name__}: {e}")
            return
        with self._lock:
            conn.inflight += 1
        n = len(entries)
        if (self.lead is not None and self._lead_ok and n <= LEAD_MAX_ENTRIES
                and self._deferred_entries + n <= LEAD_MAX_ENTRIES
                and (not self._deferred or self._deferred[0][0] is conn)):
            self._deferred.append((conn, request_id, prepared, n))
            self._deferred_entries += n
            return
        self._lead_ok = False  # not a lone append: the committing thread takes this round
        self._submit_deferred()
        self._submit(conn, request_id, prepared)

    def _refuse(self, conn: "_Connection", request_id: int, reason: str) -> None:
        with self._lock:
            conn.out += _ERR_frame(request_id, reason)

    def _submit(self, conn: "_Connection", request_id: int, prepared: Any) -> None:
        """Queue one request (counted in flight) for the committing thread."""
        try:
            fut = self.submit(prepared)
        except Exception as e:  # noqa: BLE001 - refused before queueing: tell the client
            with self._lock:
                conn.inflight -= 1
                conn.out += _ERR_frame(request_id, f"{type(e).__name__}: {e}")
            self._replies.append((conn, None))  # (from _end_round nothing else flushes it)
            return
        fut.add_done_callback(lambda f: self._answered(conn, request_id, f))

    def _submit_deferred(self) -> None:
        deferred, self._deferred, self._deferred_entries = self._deferred, [], 0
        for conn, request_id, prepared, _ in deferred:
            self._submit(conn, request_id, prepared)

    def _end_round(self) -> None:
        """Commit this round's deferred requests here if the committer is idle, else queue."""
        assert self.lead is not None
        deferred = self._deferred
        try:
            futures = self.lead([prepared for _, _, prepared, _ in deferred])
        except Exception:  # noqa: BLE001 - a bug: lead() reports a failed commit on the
            # futures, so raising means it committed nothing; queue the requests instead
            log.exception("ledger sequencer: lead() failed")
            futures = None
        if futures is None:
            self._submit_deferred()
            return
        self._deferred, self._deferred_entries = [], 0
        self.led += 1
        for (conn, request_id, _, _), fut in zip(deferred, futures):
            self._answered(conn, request_id, fut)

    def _answered(self, conn: "_Connection", request_id: int, fut: "Future[int]") -> None:
        """Runs in the thread that committed (the worker, or the loop after `lead`): write
        the answer, or queue it for the loop."""
        try:
            frame = _OK.pack(b"K", request_id, fut.result())
        except Exception as e:  # noqa: BLE001 - reported to the appender
            frame = _ERR_frame(request_id, f"{type(e).__name__}: {e}")
        if threading.get_ident() == self._loop_ident:
            self._replies.append((conn, frame))  # the loop delivers before it selects again
            return
        if self._polling and not self._replies and self._write_now(conn, frame):
            return  # (not while answers wait for the loop: they go out first, in order)
        self._replies.append((conn, frame))
        self._wake()

    def _write_now(self, conn: "_Connection", frame: bytes) -> bool:
        """Write an answer from the committing thread while the loop is idle in select, when
        the connection has nothing else to write. False: nothing done, queue it instead.

        (Only when the loop is idle: under load the loop is busy anyway, and a write here
        would make the committer wait for the GIL behind its parsing.)"""
        with self._lock:
            if conn.closed or conn.out:
                return False
            try:
                sent = conn.sock.send(frame)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                return False  # the loop finds out and closes the connection
            conn.inflight -= 1
            self.written_by_committer += 1
            if sent < len(frame):
                conn.out += frame[sent:]
            if not (conn.out or conn.inflight == MAX_INFLIGHT - 1 or conn.eof or conn.fatal
                    or self._stopping):
                return True  # nothing for the loop to do on this connection
        self._replies.append((conn, None))  # the loop must write the rest, read or close
        self._wake()
        return True

    def _wake(self) -> None:
        # (no lock: the loop clears _woken before it takes the queued answers, and an answer
        # is queued before this reads _woken, so a skipped wake-up finds its answer taken)
        if self._woken or self._wake_w is None:
            return
        self._woken = True
        try:
            self._wake_w.send(b"w")
        except (BlockingIOError, OSError):
            pass  # the loop is already awake with bytes to read, or stopped

    def _drain_wake(self) -> None:
        assert self._wake_r is not None
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _deliver(self) -> None:
        """Write out the answers queued for the loop; reopen connections with slots."""
        self._woken = False
        touched: dict[_Connection, None] = {}
        while self._replies:
            conn, frame = self._replies.popleft()
            if frame is not None:
                with self._lock:
                    conn.inflight -= 1
                    if not conn.closed:
                        conn.out += frame
            if not conn.closed:
                touched[conn] = None
        for conn in touched:
            if conn.inbuf and not conn.fatal:
                self._parse(conn)  # requests held back while the connection had no slot
            self._flush(conn)

    def _flush(self, conn: "_Connection") -> None:
        with self._lock:
            while conn.out and not conn.closed:
                try:
                    sent = conn.sock.send(conn.out)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    conn.out.clear()
                    conn.fatal = True  # (closed by _update)
                    break
                del conn.out[:sent]
        self._update(conn)

    def _update(self, conn: "_Connection") -> None:
        """Watch the connection for what it can do now, or close it when it is finished."""
        with self._lock:
            if conn.closed:
                return
            finished = not conn.out and (
                conn.fatal or ((conn.eof or self._stopping) and conn.inflight == 0)
            )
            events = 0
            if not (conn.eof or conn.fatal or self._stopping) and conn.inflight < MAX_INFLIGHT:
                events |= selectors.EVENT_READ
            if conn.out:
                events |= selectors.EVENT_WRITE
        if finished:
            self._close(conn)
            return
        if events == conn.events:
            return
        assert self._selector is not None
        if conn.events and events:
            self._selector.modify(conn.sock, events, conn)
        elif events:
            self._selector.register(conn.sock, events, conn)
        else:
            self._selector.unregister(conn.sock)
        conn.events = events

    def _close(self, conn: "_Connection") -> None:
        with self._lock:
            if conn.closed:
                return
            conn.closed = True
            conn.out.clear()
        self._conns.discard(conn)
        if conn.events and self._selector is not None:
            self._selector.unregister(conn.sock)
        conn.events = 0
        try:
            conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        conn.sock.close()


_ACCEPT = object()
_WAKE = object()


class _Connection:
    """One appender's connection as the server loop sees it."""

    __slots__ = ("sock", "inbuf", "out", "inflight", "eof", "fatal", "closed", "events")

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.inbuf = bytearray()
        self.out = bytearray()
        self.inflight = 0  # requests queued at the sequencer and not yet answered
        self.eof = False  # the appender closed its side
        self.fatal = False  # a malformed frame: answer, then close
        self.closed = False
        self.events = 0


def _header_problem(tag: bytes, count: int, size: int) -> str | None:
    if tag != b"A":
        return f"unknown request tag {tag!r}"
    if count == 0 or count > MAX_REQUEST_ENTRIES:
        return f"a request carries 1 to {MAX_REQUEST_ENTRIES} entries, not {count}"
    if size > MAX_REQUEST_BYTES:
        return f"a request of {size} bytes is larger than {MAX_REQUEST_BYTES}"
    return None


def _ERR_frame(request_id: int, message: str) -> bytes:  # noqa: N802 - a frame constructor
    data = message.encode()[:65000]
    return _ERR.pack(b"E", request_id, len(data)) + data


class SequencerClient:
    """One connection to the sequencer, pipelined.

    `submit(entries)` queues a request and returns a future of its first index. Frames are
    written by whichever thread finds work and window space first: the submitting thread itself
    when the connection is idle (no hand-off to another thread on the way out), otherwise the
    thread reading answers, as they free the window. Each frame packs everything queued (up to
    `max_entries` entries); at most `window` frames are unanswered at once.

    Answers are read by one thread at a time. A caller that waits for its own answer
    (`submit(..., sync=True)` then `result()`, as `commit` and `Appender.append` do) reads the
    socket itself when no other thread is reading, so its answer reaches it without a hand-off;
    callers that wait meanwhile are woken when their answer is read or when the reading passes
    to them. Answers nobody waits for (`submit` without `sync`: futures with callbacks, several
    in flight) are read by the receiver thread, which is woken only for them. If the connection
    is lost, every unanswered request fails with LedgerUnavailable and `broken` becomes true.
    """

    def __init__(self, path: Path, max_entries: int = 256, window: int = 4):
        self.sock = _connect(path)
        self._poll = select.poll()  # (for a waiting caller's bounded read)
        self._poll.register(self.sock, select.POLLIN)
        self.max_entries = min(max_entries, MAX_REQUEST_ENTRIES)
        self.window = window
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  # close() waits here for answers
        self._receiver_wanted = threading.Condition(self._lock)  # the receiver waits here
        self._pending: deque[tuple[list[bytes], Future]] = deque()
        self._inflight: dict[int, list[tuple[int, list[bytes], Future]]] = {}
        self._next_id = 1
        self._closed = False
        self._sending = False  # a thread is writing frames (only one at a time)
        self._send_error: LedgerUnavailable | None = None  # sending failed; still reading
        self._reader: object | None = None  # who reads answers now: _RECEIVER or a _Waiter
        self._want_receiver = False  # answers are due that no waiting caller will read
        self._followers: deque[_Waiter] = deque()  # callers waiting while another reads
        self._rbuf = bytearray()  # answer bytes read and not yet parsed (the reader's)
        self.answers_read_by_callers = 0  # (for tests and measurements)
        self.broken: BaseException | None = None
        self._receiver = threading.Thread(target=self._receive, name="ledger-client-recv",
                                          daemon=True)
        self._receiver.start()

    def submit(self, entries: Sequence[bytes], sync: bool = False) -> "Future[int]":
        """Queue one request. With `sync`, the caller promises to wait for it with `result()`
        (it may then read the answer itself); otherwise the receiver thread reads it."""
        items = list(entries)
        size = 4 * len(items) + sum(map(len, items))
        if not items or len(items) > MAX_REQUEST_ENTRIES or size > MAX_REQUEST_BYTES:
            # (the sequencer would call the frame malformed and drop the whole connection)
            raise EntryError(
                f"a request to the sequencer carries 1 to {MAX_REQUEST_ENTRIES} entries in at "
                f"most {MAX_REQUEST_BYTES} bytes, not {len(items)} entries in {size} bytes")
        fut: Future[int] = _Reply(self) if sync else Future()
        with self._lock:
            if self.broken is not None:
                raise LedgerUnavailable(f"lost the sequencer: {self.broken}")
            if self._closed:
                raise LedgerUnavailable("the ledger appender is closed")
            if self._send_error is not None:
                raise self._send_error
            # nothing due and nobody reading, yet something to read: the sequencer closed
            # the connection while it was idle (found here, before anything is sent)
            ended = self._reader is None and not self._inflight and bool(self._poll.poll(0))
            if not ended:
                self._pending.append((items, fut))
                if not sync and self._reader is None:
                    self._call_receiver()
                send = self._claim_sending()
        if ended:
            error = ConnectionError("the sequencer closed the connection")
            self._fail(error)
            raise LedgerUnavailable(f"lost the sequencer: {error}")
        if send:
            self._pump()
        return fut

    def commit(self, entries: list[bytes]) -> int:
        """Send one request and wait until it is durable; return its first index."""
        return self.submit(entries, sync=True).result()

    # --- sending ---------------------------------------------------------------------------

    def _claim_sending(self) -> bool:
        """Under the lock: become the writing thread if there is work, space and no writer."""
        if (self._sending or self._send_error is not None or not self._pending
                or len(self._inflight) >= self.window):
            return False
        self._sending = True
        return True

    def _pump(self) -> None:
        """Write frames while there is work and window space (the caller claimed sending)."""
        while True:
            with self._lock:
                frame = self._take_frame()
                if frame is None:
                    self._sending = False
                    return
            request_id, entries = frame
            try:
                self.sock.sendall(encode_request(request_id, entries))
            except BaseException as e:  # noqa: BLE001 - a frame half sent ends the sending
                self._sending_failed(request_id, e)
                if not isinstance(e, OSError):
                    raise  # (KeyboardInterrupt in the calling thread, say)
                return

    def _sending_failed(self, request_id: int, e: BaseException) -> None:
        """Stop sending on this connection, but keep reading: answers to frames sent earlier
        may already be waiting (the sequencer answers what it took before it stops), and an
        entry it recorded must not be reported as failed. Only what surely did not reach it
        fails now; the reader fails the rest when the connection ends."""
        error = LedgerUnavailable(f"lost the sequencer before the append was sent: {e}")
        with self._lock:
            self._sending = False
            if self._send_error is None:
                self._send_error = error
            unsent = [fut for _, fut in self._pending]
            self._pending.clear()
            if isinstance(e, OSError):  # sendall failed: the frame was not sent whole
                unsent += [fut for _, _, fut in self._inflight.pop(request_id, [])]
            if self._reader is None:
                self._call_receiver()  # (to read the last answers and the end)
            self._cond.notify_all()
        for fut in unsent:
            if not fut.done():
                fut.set_exception(error)
        try:
            self.sock.shutdown(socket.SHUT_WR)  # the sequencer sees the end and finishes up
        except OSError:
            pass

    def _take_frame(self) -> tuple[int, list[bytes]] | None:
        """Under the lock: one frame's requests, or None without work or window space."""
        if (self.broken is not None or not self._pending
                or len(self._inflight) >= self.window):
            return None
        entries: list[bytes] = []
        parts: list[tuple[int, list[bytes], Future]] = []
        size = 0  # of the frame's body (each request alone fits: checked by submit)
        while self._pending:
            items, fut = self._pending[0]
            n = 4 * len(items) + sum(map(len, items))
            if entries and (len(entries) + len(items) > self.max_entries
                            or size + n > MAX_REQUEST_BYTES):
                break
            self._pending.popleft()
            parts.append((len(entries), items, fut))
            entries.extend(items)
            size += n
        request_id = self._next_id
        self._next_id = (self._next_id + 1) & 0xFFFF_FFFF or 1
        self._inflight[request_id] = parts
        return request_id, entries

    # --- reading: one thread at a time -------------------------------------------------------

    def _call_receiver(self) -> None:
        """Under the lock: have the receiver thread read (no one else is)."""
        self._want_receiver = True
        self._receiver_wanted.notify()

    def _release_reading(self) -> None:
        """Under the lock: stop reading; pass the reading on if answers are still due."""
        self._reader = None
        while self._followers:
            waiter = self._followers.popleft()
            if not waiter.fut.done():
                self._reader = waiter  # a caller waiting for its answer reads next
                waiter.event.set()
                return
        if self.broken is None and (self._want_receiver or self._due()):
            self._call_receiver()

    def _due(self) -> bool:
        """Under the lock: something is still to be read (answers, or the end after sending
        failed)."""
        return bool(self._inflight or self._pending or self._send_error is not None)

    def _await(self, fut: "_Reply", deadline: float | None) -> None:
        """Wait for `fut`, reading answers while no other thread does (returns at the
        deadline, or when the future is done)."""
        waiter: _Waiter | None = None
        while True:
            with self._lock:
                if waiter is not None:
                    waiter.event.clear()  # (before looking: a later wake-up is not lost)
                if fut.done() or self.broken is not None:
                    self._leave(waiter)  # (a lost connection fails every unanswered future)
                    return
                if self._reader is None or (waiter is not None and self._reader is waiter):
                    if waiter is None:
                        waiter = _Waiter(fut)
                    self._reader = waiter
                    break
                if waiter is None:
                    waiter = _Waiter(fut)
                    fut.add_done_callback(waiter.wake)
                    self._followers.append(waiter)
            left = None if deadline is None else deadline - time.monotonic()
            try:
                if left is not None and (left <= 0 or not waiter.event.wait(left)):
                    with self._lock:
                        self._leave(waiter)
                    return
                if left is None:
                    waiter.event.wait()
            except BaseException:  # (interrupted while following: the reading must not pass
                with self._lock:  # to a caller that is gone, or nobody reads again)
                    self._leave(waiter)
                raise
        try:
            while not fut.done():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return
                # (bounded, so a caller whose request another thread failed goes home soon)
                self._read_once(1.0 if left is None else min(left, 1.0), by_caller=True)
        finally:
            with self._lock:
                self._leave(waiter)

    def _leave(self, waiter: "_Waiter | None") -> None:
        """Under the lock: a waiting caller goes (passing the reading on if it has it)."""
        if waiter is None:
            return
        if waiter in self._followers:
            self._followers.remove(waiter)
        if self._reader is waiter:
            self._release_reading()

    def _receive(self) -> None:
        """The receiver thread: reads answers whenever no waiting caller will."""
        while True:
            with self._lock:
                while self.broken is None and not (self._want_receiver and self._reader is None):
                    self._receiver_wanted.wait()
                if self.broken is not None:
                    return
                self._want_receiver = False
                self._reader = _RECEIVER
            try:
                while True:
                    with self._lock:
                        if self.broken is not None or not self._due():
                            self._release_reading()  # (atomically with the check)
                            break
                    self._read_once(None)
            except BaseException:
                with self._lock:
                    if self._reader is _RECEIVER:
                        self._release_reading()
                raise

    def _read_once(self, timeout: float | None, by_caller: bool = False) -> None:
        """As the reader: read what the socket has (waiting up to `timeout`), handle every
        complete answer. A lost connection or a bad answer fails the connection."""
        try:
            if timeout is not None and not self._poll.poll(timeout * 1000):
                return
            data = self.sock.recv(1 << 16)
            if not data:
                raise ConnectionError("connection closed")
            if by_caller:
                self.answers_read_by_callers += 1
            buf = self._rbuf
            buf += data
            pos = 0
            try:
                while len(buf) - pos >= 1:
                    tag = buf[pos : pos + 1]
                    if tag == b"K":
                        if len(buf) - pos < _OK.size:
                            break
                        _, request_id, first = _OK.unpack_from(buf, pos)
                        pos += _OK.size
                        self._resolve(request_id, first, None)
                    elif tag == b"E":
                        if len(buf) - pos < _ERR.size:
                            break
                        _, request_id, n = _ERR.unpack_from(buf, pos)
                        if len(buf) - pos < _ERR.size + n:
                            break
                        start = pos + _ERR.size
                        reason = bytes(buf[start : start + n]).decode(errors="replace")
                        pos = start + n
                        if request_id == 0:  # the server closed the connection on a bad frame
                            raise _error_from_reason(reason)
                        if reason.startswith("EntryError@"):
                            self._refuse_entry(request_id, reason)
                        else:
                            self._resolve(request_id, 0, _error_from_reason(reason))
                    else:
                        raise LedgerUnavailable(f"unexpected reply {bytes(tag)!r} "
                                                "from the sequencer")
            finally:
                del buf[:pos]
        except (OSError, ConnectionError, LedgerError, ValueError) as e:
            self._fail(e)

    def _resolve(self, request_id: int, first: int, error: BaseException | None) -> None:
        with self._lock:
            parts = self._inflight.pop(request_id, None)
            self._cond.notify_all()
            send = self._claim_sending()
        if send:  # the window has room again: send what queued meanwhile before anything else
            self._pump()
        if parts is None:
            self._fail(LedgerUnavailable(f"the sequencer answered unknown request {request_id}"))
            return
        for offset, _, fut in parts:
            if error is None:
                fut.set_result(first + offset)
            else:
                fut.set_exception(error)

    def _refuse_entry(self, request_id: int, reason: str) -> None:
        """Fail the request holding the bad entry; send the frame's other requests again."""
        where, _, message = reason.partition(": ")
        position = int(where.split("@", 1)[1])
        with self._lock:
            parts = self._inflight.pop(request_id, [])
            bad = [k for k, (offset, items, _) in enumerate(parts)
                   if offset <= position < offset + len(items)]
            retry = [(items, fut) for k, (_, items, fut) in enumerate(parts) if k not in bad]
            self._pending.extendleft(reversed(retry))
            self._cond.notify_all()
            send = self._claim_sending()
        if send:
            self._pump()
        for k in bad:
            offset, _, fut = parts[k]
            fut.set_exception(EntryError(f"entry {position - offset} of the request: {message}"))

    def _fail(self, e: BaseException) -> None:
        with self._lock:
            if self.broken is None:
                self.broken = e
            waiting = [f for parts in self._inflight.values() for _, _, f in parts]
            waiting += [f for _, f in self._pending]
            self._inflight.clear()
            self._pending.clear()
            self._cond.notify_all()
            self._receiver_wanted.notify()  # (it ends)
        error = LedgerUnavailable(
            f"lost the sequencer before the append was acknowledged: {e}"
        )
        for fut in waiting:
            if not fut.done():
                fut.set_exception(error)
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self, timeout: float = 30.0) -> None:
        """Wait for every queued request to be answered, then close the connection."""
        with self._lock:
            self._closed = True
            if self._reader is None and (self._pending or self._inflight):
                self._call_receiver()  # (answers a caller promised to wait for, and did not)
            self._cond.notify_all()
            self._cond.wait_for(
                lambda: self.broken is not None or (not self._pending and not self._inflight),
                timeout,
            )
        self._fail(LedgerUnavailable("the ledger appender is closed"))
        self.sock.close()


_RECEIVER = object()


class _Waiter:
    """A caller waiting for its answer: woken when it is done or when reading passes to it."""

    __slots__ = ("fut", "event")

    def __init__(self, fut: Future):
        self.fut = fut
        self.event = threading.Event()

    def wake(self, _fut: Future) -> None:
        self.event.set()


class _Reply(Future):
    """The future of a request whose caller waits for it: waiting may read the answer."""

    def __init__(self, client: SequencerClient):
        super().__init__()
        self._client = client

    def result(self, timeout: float | None = None) -> int:
        return super().result(self._wait(timeout))

    def exception(self, timeout: float | None = None) -> BaseException | None:
        return super().exception(self._wait(timeout))

    def _wait(self, timeout: float | None) -> float | None:
        """Wait (reading if no one else does); return what is left of the timeout."""
        if self.done():
            return timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        self._client._await(self, deadline)
        return None if deadline is None else max(0.0, deadline - time.monotonic())


def _connect(path: Path, patience: float = 10.0) -> socket.socket:
    """Connect to the sequencer; a full accept queue (EAGAIN) is waited out, a refusal is not."""
    deadline = time.monotonic() + patience
    delay = 0.001
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(2.0)
            sock.connect(str(path))
            sock.settimeout(None)  # answers wait for durable commits; callers time out
            return sock
        except BlockingIOError:
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
        except OSError:
            sock.close()
            raise


def _error_from_reason(reason: str) -> LedgerError:
    """The client-side error for a refusal: bad entries stay EntryError, the rest unavailable."""
    if reason.startswith("EntryError: "):
        return EntryError(reason[len("EntryError: "):])
    return LedgerUnavailable(f"the sequencer refused the append: {reason}")
