"""The last signed head, kept outside the database (like Sunlight's lock backend).

Before each batch is signed, the sequencer checks that the new tree extends the head recorded
here. A database restored from an old backup, truncated or edited then makes appends fail (fail
closed) instead of producing a second, inconsistent signed checkpoint. The file holds the signed
checkpoint note itself, so it is also evidence.

The head is written after every batch, so the write must be cheap and crash-safe: there are two
slots, ``<path>`` and ``<path>.alt``. Each write overwrites the slot holding the older head in
place and syncs it once (no rename, no directory sync). A write torn by a crash leaves a slot that
does not parse; the other slot still holds the previous head, which the next batch extends.
Reading takes the newest slot that parses.
"""

from __future__ import annotations

import os
from pathlib import Path

from ledger.checkpoint import parse_checkpoint
from ledger.exceptions import FormatError, InconsistentTreeError
from ledger.note import split_note
from ledger.sqlstore import TreeHead


class SignedHeadGuard:
    """The two slot files holding the newest checkpoint note this host signed."""

    def __init__(self, path: Path):
        self.path = path
        self.alt = path.with_name(path.name + ".alt")
        self._seen: dict[Path, TreeHead] | None = None  # the slots as the last read() found them
        self._parsed: dict[bytes, TreeHead] = {}  # slot contents already parsed (the last few)

    def read(self) -> TreeHead | None:
        """The newest recorded head; None if nothing was ever recorded."""
        heads, bad = self._slots()
        self._seen = heads
        if heads:
            return max(heads.values(), key=lambda h: h.size)
        if bad:
            raise InconsistentTreeError(
                f"{bad[0]} does not hold a signed checkpoint; refusing to append until the "
                "last signed checkpoint is restored there"
            )
        return None

    def write(self, note: bytes, after_read: bool = False, head: TreeHead | None = None) -> None:
        """Record a newly signed checkpoint note, overwriting the older slot, durably.

        `after_read`: the caller read() the guard under the same lock just before, so the slots
        are as read() found them and need not be read again. `head`: the head `note` signs, when
        the caller just signed it; the next read() then finds these bytes already parsed.
        """
        heads = self._seen if after_read and self._seen is not None else self._slots()[0]
        self._seen = None
        older = [p for p in (self.path, self.alt) if p not in heads]
        if not older:
            older = [min(heads, key=lambda p: heads[p].size)]
        target = older[0]
        created = not target.exists()
        if created:
            target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, note, 0)
            os.ftruncate(fd, len(note))
            os.fdatasync(fd)
        finally:
            os.close(fd)
        if head is not None:
            self._remember(note, head)
        if created:  # a new file's directory entry must be durable too (once)
            dirfd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dirfd)
            finally:
                os.close(dirfd)

    def _slots(self) -> tuple[dict[Path, TreeHead], list[Path]]:
        heads: dict[Path, TreeHead] = {}
        bad: list[Path] = []
        for path in (self.path, self.alt):
            try:
                note = _read(path)
            except FileNotFoundError:
                continue
            head = self._parsed.get(note)
            if head is None:
                try:
                    text, _ = split_note(note)
                    cp = parse_checkpoint(text)
                except (FormatError, UnicodeDecodeError, ValueError):
                    bad.append(path)
                    continue
                head = TreeHead(cp.size, cp.root)
                self._remember(note, head)
            heads[path] = head
        return heads, bad

    def _remember(self, note: bytes, head: TreeHead) -> None:
        """Keep the parse of a slot's exact bytes (the two slots' latest contents, a few more)."""
        if len(self._parsed) >= 4:
            self._parsed.clear()
        self._parsed[note] = head


def _read(path: Path) -> bytes:
    """A slot's whole content (plain system calls: this runs twice for every batch)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
