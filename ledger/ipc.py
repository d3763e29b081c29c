"""The sequencer socket: how appenders in other processes hand entries to the one sequencer.

When a ledger service runs, it owns the log's sequencer and listens on a Unix socket in the
ledger directory (mode 0600, so only the platform's own services can append). Appenders send a
request with their entries; the sequencer puts requests from every connection into the same
group-commit batches, so concurrent appenders in many processes share one transaction and one
checkpoint, and each gets its answer only after its batch is durable.

Frames (big-endian):
    request   b"A" u32 count, then count × (u32 length, entry bytes)
    response  b"K" u64 first index          — all entries durable, consecutive indices
              b"E" u32 length, UTF-8 reason — nothing of this request was acknowledged
"""

from __future__ import annotations

import os
import socket
import socketserver
import struct
import threading
from pathlib import Path
from typing import Callable, Sequence

from ledger.exceptions import LedgerError, LedgerUnavailable

MAX_REQUEST_ENTRIES = 100_000


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return bytes(buf)


def encode_request(entries: Sequence[bytes]) -> bytes:
    parts = [b"A", struct.pack(">I", len(entries))]
    for e in entries:
        parts += [struct.pack(">I", len(e)), e]
    return b"".join(parts)


def read_request(sock: socket.socket) -> list[bytes]:
    tag = _recv_exact(sock, 1)
    if tag != b"A":
        raise LedgerError(f"unknown request tag {tag!r}")
    (count,) = struct.unpack(">I", _recv_exact(sock, 4))
    if count == 0 or count > MAX_REQUEST_ENTRIES:
        raise LedgerError(f"a request carries 1 to {MAX_REQUEST_ENTRIES} entries, not {count}")
    out = []
    for _ in range(count):
        (n,) = struct.unpack(">I", _recv_exact(sock, 4))
        if n > 1 << 20:
            raise LedgerError(f"entry of {n} bytes is too large")
        out.append(_recv_exact(sock, n))
    return out


class SequencerServer:
    """Serves the socket; `submit(entries)` must return a future of the first index."""

    def __init__(self, path: Path, submit: Callable):
        self.path = path
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                while True:
                    try:
                        entries = read_request(sock)
                    except (ConnectionError, OSError):
                        return
                    except LedgerError as e:
                        outer._send_error(sock, str(e))
                        return
                    try:
                        first = submit(entries).result()
                    except Exception as e:  # noqa: BLE001 - reported to the appender
                        if not outer._send_error(sock, f"{type(e).__name__}: {e}"):
                            return
                        continue
                    try:
                        sock.sendall(b"K" + struct.pack(">Q", first))
                    except OSError:
                        return

        class Server(socketserver.ThreadingUnixStreamServer):
            daemon_threads = True

        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            path.unlink()
        old = os.umask(0o177)
        try:
            self.server = Server(str(path), Handler)
        finally:
            os.umask(old)
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="ledger-sequencer-socket", daemon=True
        )

    @staticmethod
    def _send_error(sock: socket.socket, message: str) -> bool:
        data = message.encode()[:65000]
        try:
            sock.sendall(b"E" + struct.pack(">I", len(data)) + data)
            return True
        except OSError:
            return False

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


class SequencerClient:
    """One connection to the sequencer; `commit(entries)` returns the first index."""

    def __init__(self, path: Path, timeout: float = 60.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(str(path))
        except OSError:
            self.sock.close()
            raise
        self._lock = threading.Lock()

    def commit(self, entries: list[bytes]) -> int:
        with self._lock:
            try:
                self.sock.sendall(encode_request(entries))
                tag = _recv_exact(self.sock, 1)
                if tag == b"K":
                    return struct.unpack(">Q", _recv_exact(self.sock, 8))[0]
                if tag == b"E":
                    (n,) = struct.unpack(">I", _recv_exact(self.sock, 4))
                    raise LedgerUnavailable(
                        f"the sequencer refused the append: {_recv_exact(self.sock, n).decode()}"
                    )
                raise LedgerUnavailable(f"unexpected reply {tag!r} from the sequencer")
            except (OSError, ConnectionError) as e:
                raise LedgerUnavailable(
                    f"lost the sequencer before the append was acknowledged: {e}"
                ) from e

    def close(self) -> None:
        self.sock.close()
