"""Results as pages of Arrow IPC, their hash, and where unread pages wait.

A result is cut into pages of about ``page_bytes``; each page is a complete Arrow IPC stream
(schema + record batches), so a client can decode any page alone. The result's hash, written to
the ledger before anything is returned, is the SHA-256 of the pages' bytes concatenated in order:
the client recomputes it from exactly the bytes it received (``shuyu`` does, and refuses a
mismatch), and an auditor can tie what an analyst saw to the ledger entry. A result with no
rows is one page holding only the schema.

``ResultStore`` keeps the pages of recent results for their owner only, for ``ttl`` seconds and
within ``max_bytes`` (oldest results are dropped first); a page asked for by anyone else, or
after expiry, is simply not found.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import pyarrow as pa

from hub.gateway.exceptions import ResultNotFound

MEDIA_TYPE = "application/vnd.apache.arrow.stream"
MAX_CHUNK_ROWS = 65_536


Page = pa.Buffer  # one IPC stream; bytes-like (hashlib, base64 and responses read it in place)


def ipc_page(schema: pa.Schema, table: pa.Table | None) -> Page:
    """One IPC stream, written once into Arrow memory and kept there (no copy to ``bytes``)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        if table is not None and table.num_rows:
            writer.write_table(table, max_chunksize=MAX_CHUNK_ROWS)
    return sink.getvalue()


def paginate(table: pa.Table, page_bytes: int) -> list[Page]:
    """The result as IPC pages of about `page_bytes` each (at least one page). Slices of the
    result are zero-copy; writing the IPC stream is the only copy of the rows."""
    if table.num_rows == 0:
        return [ipc_page(table.schema, None)]
    per_row = max(1.0, table.nbytes / table.num_rows)
    rows_per_page = max(1, int(page_bytes / per_row))
    return [
        ipc_page(table.schema, table.slice(start, rows_per_page))
        for start in range(0, table.num_rows, rows_per_page)
    ]


def result_sha256(pages: list[Page]) -> str:
    h = hashlib.sha256()
    for page in pages:
        h.update(page)
    return h.hexdigest()


@dataclass
class StoredResult:
    query_id: str
    user: str
    pages: list[Page]
    expires: float
    size: int = field(init=False)

    def __post_init__(self) -> None:
        self.size = sum(len(p) for p in self.pages)


class ResultStore:
    """Pages of recent results, by query id, for their owner; thread-safe."""

    def __init__(self, ttl: float, max_bytes: int):
        self.ttl = ttl
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, StoredResult] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, query_id: str, user: str, pages: list[Page]) -> None:
        item = StoredResult(query_id, user, pages, time.monotonic() + self.ttl)
        with self._lock:
            self._expire(time.monotonic())
            while self._items and self._bytes + item.size > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self._bytes -= old.size
            self._items[query_id] = item
            self._bytes += item.size

    def page(self, query_id: str, user: str, number: int) -> Page:
        with self._lock:
            self._expire(time.monotonic())
            item = self._items.get(query_id)
        if item is None or item.user != user:
            raise ResultNotFound(f"no result {query_id} for {user} (it may have expired)")
        if not 0 <= number < len(item.pages):
            raise ResultNotFound(
                f"result {query_id} has pages 0 to {len(item.pages) - 1}, not {number}")
        return item.pages[number]

    def _expire(self, now: float) -> None:
        """Drop expired results. Every result lives ``ttl`` from its ``put``, so they expire in
        insertion order: only the oldest few are looked at, however many are stored."""
        while self._items:
            oldest = next(iter(self._items.values()))
            if oldest.expires > now:
                break
            self._items.popitem(last=False)
            self._bytes -= oldest.size
