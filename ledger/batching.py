"""Group commit: callers in many threads submit entries; one batch is committed at a time.

A caller's entries are never split across batches, so they get consecutive indices. `submit`
queues a request for the worker thread, which takes everything queued (up to `max_size`
entries; a single larger request goes alone), waits up to `max_age` seconds for more when the
batch is not full (default 0: natural group commit, where what queued up during the previous
commit forms the next batch), calls `commit(entries)` once, and only then resolves each caller's
future. If the commit fails, every caller in the batch gets the exception: nothing is
acknowledged that is not durable.

`lead(requests)` lets a thread that has work in hand commit it itself when the committer is
idle (no batch being committed, nothing queued) and `max_age` is 0: the batch is committed in
the calling thread, without waking the worker (each hand-off between threads costs a wake-up).
Otherwise it returns None and the caller submits as usual. Requests queued while a leader
commits form the next batch, which the worker commits.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from typing import Callable, Generic, Sequence, TypeVar

from ledger.exceptions import LedgerUnavailable

T = TypeVar("T")


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
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[tuple[list[T], Future]] = deque()
        self._busy = False  # a batch is being committed (by the worker or a leader)
        self._gathering = False  # the worker waits up to max_age for more of its batch
        self._closed = False
        self.batches = 0
        self.led = 0  # batches committed by a leading caller instead of the worker
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, items: Sequence[T]) -> "Future[int]":
        """Queue items; the future gives the index of the first once the batch is durable."""
        fut: Future[int] = Future()
        with self._cond:
            if self._closed:
                raise LedgerUnavailable("the ledger appender is closed")
            self._queue.append((list(items), fut))
            if not self._busy or self._gathering:
                self._cond.notify()
        return fut

    @property
    def idle(self) -> bool:
        """No batch is being committed and nothing is queued (a hint: read without the lock)."""
        return not self._busy and not self._queue

    def lead(self, requests: Sequence[Sequence[T]]) -> "list[Future[int]] | None":
        """Commit these requests as one batch in this thread if the committer is idle.

        Returns their futures, already resolved (with the first index, or the commit's
        exception), or None when a batch is in progress, requests are queued, batches are to
        wait for more (`max_age`) or the committer is closed: then nothing was done and the
        caller submits them instead.
        """
        if self.max_age > 0:
            return None
        with self._cond:
            if self._busy or self._queue or self._closed:
                return None
            self._busy = True
        pending = [(list(items), Future()) for items in requests]
        try:
            self._flush(pending)
        finally:
            with self._cond:
                self._busy = False
                self.led += 1
                if self._queue or self._closed:
                    self._cond.notify()  # what queued meanwhile is the worker's next batch
        return [fut for _, fut in pending]

    def close(self, timeout: float | None = 30) -> None:
        """Commit what is queued, then stop the worker."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        cond, queue = self._cond, self._queue
        while True:
            with cond:
                while self._busy or not queue:
                    if self._closed and not queue and not self._busy:
                        return
                    cond.wait()
                self._busy = True
                pending = self._take()
            try:
                self._flush(pending)
            finally:
                with cond:
                    self._busy = False

    def _take(self) -> list[tuple[list[T], Future]]:
        """Under the lock: the next batch from the queue (waiting up to max_age for more)."""
        queue = self._queue
        first = queue.popleft()
        pending = [first]
        count = len(first[0])
        deadline = time.monotonic() + self.max_age
        while count < self.max_size:
            if not queue:
                timeout = deadline - time.monotonic()
                if timeout <= 0 or self._closed:
                    break
                self._gathering = True
                try:
                    self._cond.wait(timeout)
                finally:
                    self._gathering = False
                continue
            if count + len(queue[0][0]) > self.max_size:
                break  # keeps its entries together, first in the next batch
            nxt = queue.popleft()
            pending.append(nxt)
            count += len(nxt[0])
        return pending

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
