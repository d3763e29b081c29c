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

The server checks each request on its own (size, JSON object, type, time) before queueing it,
so a bad request is refused alone and never fails the batch it would have shared with others.
A client packs several callers' requests into one frame; when the server refuses a frame for a
bad entry it names the entry (``EntryError@<position>: reason``, nothing of the frame was
recorded), and the client fails that caller's request only and sends the others again.
"""

from __future__ import annotations

import os
import queue
import socket
import socketserver
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, BinaryIO

from ledger.entry import MAX_ENTRY_BYTES
from ledger.exceptions import EntryError, LedgerError, LedgerUnavailable

MAX_REQUEST_ENTRIES = 100_000
MAX_REQUEST_BYTES = 64 << 20
MAX_INFLIGHT = 64  # requests a connection may have queued at the sequencer at once
_HEAD = struct.Struct(">cIII")
_LEN = struct.Struct(">I")
_OK = struct.Struct(">cIQ")
_ERR = struct.Struct(">cII")


class BadEntryError(EntryError):
    """An entry of a request is not acceptable; `position` is its place in the request."""

    def __init__(self, message: str, position: int):
        super().__init__(message)
        self.position = position


def _read_exact(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if data is None or len(data) != n:
        raise ConnectionError("connection closed")
    return data


def encode_request(request_id: int, entries: Sequence[bytes]) -> bytes:
    pack = _LEN.pack
    body = b"".join([part for e in entries for part in (pack(len(e)), e)])
    return _HEAD.pack(b"A", request_id, len(entries), len(body)) + body


def read_request(f: BinaryIO) -> tuple[int, list[bytes]]:
    """One request frame: (id, entries). Raises LedgerError if the frame itself is malformed."""
    tag, request_id, count, size = _HEAD.unpack(_read_exact(f, _HEAD.size))
    if tag != b"A":
        raise LedgerError(f"unknown request tag {tag!r}")
    if count == 0 or count > MAX_REQUEST_ENTRIES:
        raise LedgerError(f"a request carries 1 to {MAX_REQUEST_ENTRIES} entries, not {count}")
    if size > MAX_REQUEST_BYTES:
        raise LedgerError(f"a request of {size} bytes is larger than {MAX_REQUEST_BYTES}")
    return request_id, split_body(_read_exact(f, size), count)


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
    """Serves the socket.

    `prepare(entries)` checks one request's entries and returns what `submit` takes (raising
    EntryError for a bad entry); `submit(prepared)` returns a future of the first index.
    """

    def __init__(self, path: Path, submit: Callable[[Any], "Future[int]"],
                 prepare: Callable[[list[bytes]], Any] = lambda entries: entries):
        self.path = path
        self.submit = submit
        self.prepare = prepare
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                outer._serve(self.request)

        class Server(socketserver.ThreadingUnixStreamServer):
            daemon_threads = True
            request_queue_size = 256  # many appender processes may connect at once

        self._server_cls = Server
        self._handler_cls = Handler
        self.server: socketserver.ThreadingUnixStreamServer | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind the socket (replacing a stale one) and serve in a background thread."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() or self.path.is_symlink():
            self.path.unlink()
        old = os.umask(0o177)
        try:
            self.server = self._server_cls(str(self.path), self._handler_cls)
        finally:
            os.umask(old)
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="ledger-sequencer-socket", daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        if self.server is None:
            return
        self.server.shutdown()
        self.server.server_close()
        self.server = None
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def _serve(self, sock: socket.socket) -> None:
        """Read requests from one connection; a writer thread sends the answers as they come."""
        out: queue.SimpleQueue = queue.SimpleQueue()
        slots = threading.BoundedSemaphore(MAX_INFLIGHT)
        writer = threading.Thread(target=_write_replies, args=(sock, out), daemon=True)
        writer.start()
        rfile = sock.makefile("rb", buffering=1 << 16)
        try:
            while True:
                try:
                    request_id, entries = read_request(rfile)
                except (ConnectionError, OSError, ValueError):
                    return
                except LedgerError as e:
                    out.put(_ERR_frame(0, str(e)))
                    return
                slots.acquire()
                try:
                    prepared = self.prepare(entries)
                    fut = self.submit(prepared)
                except BadEntryError as e:
                    slots.release()
                    out.put(_ERR_frame(request_id, f"EntryError@{e.position}: {e}"))
                    continue
                except Exception as e:  # noqa: BLE001 - refused before queueing: tell the client
                    slots.release()
                    out.put(_ERR_frame(request_id, f"{type(e).__name__}: {e}"))
                    continue
                fut.add_done_callback(_replier(request_id, out, slots))
        finally:
            out.put(None)
            writer.join(5)
            rfile.close()


def _ERR_frame(request_id: int, message: str) -> bytes:  # noqa: N802 - a frame constructor
    data = message.encode()[:65000]
    return _ERR.pack(b"E", request_id, len(data)) + data


def _replier(request_id: int, out: queue.SimpleQueue, slots: threading.BoundedSemaphore):
    def done(fut: "Future[int]") -> None:
        slots.release()
        try:
            out.put(_OK.pack(b"K", request_id, fut.result()))
        except Exception as e:  # noqa: BLE001 - reported to the appender
            out.put(_ERR_frame(request_id, f"{type(e).__name__}: {e}"))

    return done


def _write_replies(sock: socket.socket, out: queue.SimpleQueue) -> None:
    while True:
        frame = out.get()
        if frame is None:
            break
        frames = [frame]
        while True:  # send what is ready in one write
            try:
                nxt = out.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                out.put(None)
                break
            frames.append(nxt)
        try:
            sock.sendall(b"".join(frames))
        except OSError:
            break
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class SequencerClient:
    """One connection to the sequencer, pipelined.

    `submit(entries)` queues a request and returns a future of its first index; a sender thread
    packs everything queued (up to `max_entries` entries) into one request frame and keeps at most
    `window` frames unanswered; a receiver thread resolves the futures. If the connection is
    lost, every unanswered request fails with LedgerUnavailable and `broken` becomes true.
    """

    def __init__(self, path: Path, max_entries: int = 256, window: int = 4):
        self.sock = _connect(path)
        self.max_entries = max_entries
        self.window = window
        self._cond = threading.Condition()
        self._pending: deque[tuple[list[bytes], Future]] = deque()
        self._inflight: dict[int, list[tuple[int, list[bytes], Future]]] = {}
        self._next_id = 1
        self._closed = False
        self._sender_waiting = False
        self.broken: BaseException | None = None
        self._sender = threading.Thread(target=self._send_loop, name="ledger-client-send",
                                        daemon=True)
        self._receiver = threading.Thread(target=self._recv_loop, name="ledger-client-recv",
                                          daemon=True)
        self._sender.start()
        self._receiver.start()

    def submit(self, entries: Sequence[bytes]) -> "Future[int]":
        fut: Future[int] = Future()
        with self._cond:
            if self.broken is not None:
                raise LedgerUnavailable(f"lost the sequencer: {self.broken}")
            if self._closed:
                raise LedgerUnavailable("the ledger appender is closed")
            self._pending.append((list(entries), fut))
            if self._sender_waiting:
                self._cond.notify_all()
        return fut

    def commit(self, entries: list[bytes]) -> int:
        """Send one request and wait until it is durable; return its first index."""
        return self.submit(entries).result()

    def _take_frame(self) -> tuple[int, list[bytes]] | None:
        """Under the lock: wait for work and window space, then take one frame's requests."""
        while True:
            if self.broken is not None or (self._closed and not self._pending):
                return None
            if self._pending and len(self._inflight) < self.window:
                break
            self._sender_waiting = True
            self._cond.wait()
            self._sender_waiting = False
        entries: list[bytes] = []
        parts: list[tuple[int, list[bytes], Future]] = []
        while self._pending:
            items, fut = self._pending[0]
            if entries and len(entries) + len(items) > self.max_entries:
                break
            self._pending.popleft()
            parts.append((len(entries), items, fut))
            entries.extend(items)
        request_id = self._next_id
        self._next_id = (self._next_id + 1) & 0xFFFF_FFFF or 1
        self._inflight[request_id] = parts
        return request_id, entries

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                frame = self._take_frame()
            if frame is None:
                return
            request_id, entries = frame
            try:
                self.sock.sendall(encode_request(request_id, entries))
            except OSError as e:
                self._fail(e)
                return

    def _recv_loop(self) -> None:
        rfile = self.sock.makefile("rb", buffering=1 << 14)
        try:
            while True:
                tag = _read_exact(rfile, 1)
                if tag == b"K":
                    request_id, first = struct.unpack(">IQ", _read_exact(rfile, 12))
                    self._resolve(request_id, first, None)
                elif tag == b"E":
                    request_id, n = struct.unpack(">II", _read_exact(rfile, 8))
                    reason = _read_exact(rfile, n).decode(errors="replace")
                    if request_id == 0:  # the server closed the connection on a bad frame
                        raise _error_from_reason(reason)
                    if reason.startswith("EntryError@"):
                        self._refuse_entry(request_id, reason)
                    else:
                        self._resolve(request_id, 0, _error_from_reason(reason))
                else:
                    raise LedgerUnavailable(f"unexpected reply {tag!r} from the sequencer")
        except (OSError, ConnectionError, LedgerError, ValueError) as e:
            self._fail(e)
        finally:
            rfile.close()

    def _resolve(self, request_id: int, first: int, error: BaseException | None) -> None:
        with self._cond:
            parts = self._inflight.pop(request_id, None)
            self._cond.notify_all()
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
        with self._cond:
            parts = self._inflight.pop(request_id, [])
            bad = [k for k, (offset, items, _) in enumerate(parts)
                   if offset <= position < offset + len(items)]
            retry = [(items, fut) for k, (_, items, fut) in enumerate(parts) if k not in bad]
            self._pending.extendleft(reversed(retry))
            self._cond.notify_all()
        for k in bad:
            offset, _, fut = parts[k]
            fut.set_exception(EntryError(f"entry {position - offset} of the request: {message}"))

    def _fail(self, e: BaseException) -> None:
        with self._cond:
            if self.broken is None:
                self.broken = e
            waiting = [f for parts in self._inflight.values() for _, _, f in parts]
            waiting += [f for _, f in self._pending]
            self._inflight.clear()
            self._pending.clear()
            self._cond.notify_all()
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
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            self._cond.wait_for(
                lambda: self.broken is not None or (not self._pending and not self._inflight),
                timeout,
            )
        self._fail(LedgerUnavailable("the ledger appender is closed"))
        self.sock.close()


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
