"""The last signed head, kept outside the database (like Sunlight's lock backend).

Before each batch is signed, the sequencer checks that the new tree extends the head recorded
here. A database restored from an old backup, truncated or edited then makes appends fail (fail
closed) instead of producing a second, inconsistent signed checkpoint. The file holds the signed
checkpoint note itself, so it is also evidence.
"""

from __future__ import annotations

import os
from pathlib import Path

from ledger.checkpoint import parse_checkpoint
from ledger.note import split_note
from ledger.sqlstore import TreeHead


class SignedHeadGuard:
    def __init__(self, path: Path):
        self.path = path

    def read(self) -> TreeHead | None:
        try:
            note = self.path.read_bytes()
        except FileNotFoundError:
            return None
        text, _ = split_note(note)
        cp = parse_checkpoint(text)
        return TreeHead(cp.size, cp.root)

    def write(self, note: bytes) -> None:
        """Atomically replace the recorded head (write, fsync, rename, fsync the directory)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            f.write(note)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        dirfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)
