"""Keeps the subject index (:mod:`ledger.index`) close to the signed tree in the background.

The console's filtered views catch the index up to the tree size before they read it; on a
large log that has grown since the last view, that would make the first regulator to filter
wait for thousands of entries to be indexed. The ledger service therefore runs this keeper: a
daemon thread that, every `interval` seconds, indexes what the sequencer appended since. The
views still catch up the last few entries themselves, and the index's compare-and-swap on its
high-water mark keeps the two indexers from counting an entry twice. A failing pass (the
database busy or gone) is logged and retried on the next one; the index is derived data and
never holds up an append.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from ledger.index import SubjectIndex

log = logging.getLogger("shuyu.ledger.index")


class IndexKeeper:
    def __init__(self, database_url: str, tree_size: Callable[[], int], interval: float = 2.0):
        self.index = SubjectIndex(database_url)
        self.tree_size = tree_size
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ledger-index", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def run_once(self) -> int:
        """Index up to the current tree size; how many entries were added."""
        return self.index.catch_up(self.tree_size())

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                added = self.run_once()
                if added:
                    log.debug("indexed %d entries", added)
            except Exception:  # noqa: BLE001 - derived data: log and try again next pass
                log.exception("subject index pass failed")
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self.index.close()
