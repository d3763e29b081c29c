"""Runs the automatic checks off the request path, one request at a time.

A submission returns as soon as its files are in quarantine and ``release.submitted`` is in
the ledger; ``CheckRunner.schedule(id)`` queues its checks on one worker thread (checks read the
raw data and may take seconds). A sweep every ``interval`` seconds (and once at start) queues
every request still ``submitted``: requests whose checks were cut short by a restart, or could
not be recorded while the ledger was down, are checked again.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Callable

log = logging.getLogger("shuyu.review")


class CheckRunner:
    def __init__(self, run: Callable[[str], object], pending: Callable[[], list[str]],
                 interval: float = 30.0):
        self.run, self.pending, self.interval = run, pending, interval
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._queued: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for target, name in ((self._work, "checks"), (self._sweep, "checks-sweep")):
            t = threading.Thread(target=target, name=f"shuyu-review-{name}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        self._queue.put(None)
        for t in self._threads:
            t.join(timeout=30)

    def schedule(self, request_id: str) -> None:
        with self._lock:
            if request_id in self._queued:
                return
            self._queued.add(request_id)
        self._queue.put(request_id)

    def _work(self) -> None:
        while not self._stop.is_set():
            request_id = self._queue.get()
            if request_id is None:
                return
            with self._lock:
                self._queued.discard(request_id)
            try:
                self.run(request_id)
            except Exception:  # noqa: BLE001 - stays submitted; the sweep tries again
                log.exception("checks of %s did not complete; they will be retried", request_id)

    def _sweep(self) -> None:
        while not self._stop.is_set():
            try:
                for request_id in self.pending():
                    self.schedule(request_id)
            except Exception:  # noqa: BLE001
                log.exception("cannot list the requests waiting for checks")
            self._stop.wait(self.interval)
