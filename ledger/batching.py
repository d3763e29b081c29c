"""Group commit: callers in many threads submit entries; one worker commits them in batches.

A caller's entries are never split across batches, so they get consecutive indices. The worker
takes everything queued (up to `max_size` entries; a single larger request goes alone), waits up
to `max_age` seconds for more when the batch is not full (default 0: natural group commit, where
what queued up during the previous commit forms the next batch), calls `commit(entries)` once, and only then resolves each caller's future. If the commit fails, every caller in the batch
gets the exception: nothing is acknowledged that is not durable.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from typing import Callable, Generic, Sequence, TypeVar

from ledger.exceptions import LedgerUnavailable

T = TypeVar("T")
_STOP = object()


class GroupCommitter(Generic[T]):
    def __init__(
        self,
        commit: Callable[[list[T]], int],
        max_size: int = 256,
        max_age: float = 0.0,
        name: str = "ledger-batcher",
    ):
        self._commit = commit
        self.max_size = max_size
        self.max_age = max_age
        self._q: queue.Queue = queue.Queue()
        self._closed = False
        self._lock = threading.Lock()
        self.batches = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, items: Sequence[T]) -> "Future[int]":
        """Queue items; the future gives the index of the first once the batch is durable."""
        fut: Future[int] = Future()
        with self._lock:
            if self._closed:
                raise LedgerUnavailable("the ledger appender is closed")
            self._q.put((list(items), fut))
        return fut

    def close(self, timeout: float | None = 30) -> None:
        """Commit what is queued, then stop the worker."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._q.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        carry = None  # a request that did not fit in the previous batch
        stop = False
        while True:
            if carry is None:
                if stop:
                    return
                first = self._q.get()
                if first is _STOP:
                    return
            else:
                first, carry = carry, None
            pending = [first]
            count = len(first[0])
            deadline = time.monotonic() + self.max_age
            while count < self.max_size and not stop:
                try:
                    timeout = deadline - time.monotonic()
                    nxt = self._q.get_nowait() if timeout <= 0 else self._q.get(timeout=timeout)
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                elif count + len(nxt[0]) > self.max_size:
                    carry = nxt  # keeps its entries together, first in the next batch
                    break
                else:
                    pending.append(nxt)
                    count += len(nxt[0])
            self._flush(pending)

    def _flush(self, pending: list[tuple[list[T], Future]]) -> None:
        batch = [item for items, _ in pending for item in items]
        try:
            first = self._commit(batch)
        except BaseException as e:  # noqa: BLE001 - every waiter must hear about it
            for _, fut in pending:
                fut.set_exception(e)
            return
        self.batches += 1
        offset = first
        for items, fut in pending:
            fut.set_result(offset)
            offset += len(items)
