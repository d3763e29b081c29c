"""The log as C2SP tlog-tiles files: tile contents from the SQL store, and `shuyu ledger export`.

`tile_data` builds one tile's bytes from the stored rows (the ledger service serves them, the
exporter writes them). A hash tile at tile level L holds the stored subtree hashes of Merkle
level 8·L (the leaf hashes for L = 0); an entry bundle holds the stored leaf bytes. Both are
served exactly as stored, gaps included: a mirror must show what the log holds, so that an
independent verifier (`shuyu ledger verify --from/--url`, or any tlog-tiles client) is the one
that finds an altered or missing entry.

`export_tiles` writes the checkpoint, every hash tile and every entry bundle of the latest signed
tree into a directory. Full tiles never change, so a rerun on a grown log writes only the new
tiles, the new right-edge partial tiles and the checkpoint (last, so a reader never sees a
checkpoint whose tiles are missing). Before reusing anything, the directory's old checkpoint must
be signed by the log's key and be consistent with the new tree; otherwise the export refuses.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.exceptions import InconsistentTreeError, LedgerError, ProofError
from ledger.log import Log
from ledger.note import Ed25519Verifier
from ledger.proofs import verify_consistency
from ledger.sqlreads import entry_data, leaf_hashes, node_hashes
from ledger.tiles import (
    TILE_HEIGHT,
    TILE_WIDTH,
    Tile,
    encode_index,
    format_entry_bundle,
    tiles_for_size,
)


def tile_data(log: Log, tile: Tile) -> bytes:
    """The bytes of one hash tile or entry bundle, read from the stored rows as they are."""
    engine = log.store.reader
    start = tile.n * TILE_WIDTH
    end = start + tile.width
    if tile.is_entries:
        return format_entry_bundle([d for _, d in entry_data(engine, start, end)])
    if tile.level == 0:
        return b"".join(h for _, h in leaf_hashes(engine, start, end))
    return b"".join(h for _, h in node_hashes(engine, TILE_HEIGHT * tile.level, start, end))


@dataclass(frozen=True)
class ExportResult:
    size: int
    written: int  # tiles written in this run
    kept: int  # full or partial tiles already present from an earlier export of this log
    removed: int  # partial tiles superseded by wider ones


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def previous_size(out: Path, log: Log, verifier: Ed25519Verifier) -> int:
    """The size of the tree already exported to `out` (0 if none); refuse a foreign directory.

    The old checkpoint must be signed by this log and the log must still extend it (checked
    with a consistency proof from the store against the two signed roots).
    """
    path = out / "checkpoint"
    if not path.exists():
        if (out / "tile").exists():
            raise LedgerError(
                f"{out} holds tiles but no checkpoint; export into an empty directory"
            )
        return 0
    try:
        old, _ = open_checkpoint(path.read_bytes(), verifier)
    except LedgerError as e:
        raise LedgerError(f"{path} is not a checkpoint of this log ({e}); refusing to export there")
    return old.size if old.size == 0 else _check_extends(log, old)


def _check_extends(log: Log, old: Checkpoint) -> int:
    note = log.store.latest_checkpoint()
    if note is None:
        raise LedgerError("the log has signed no checkpoint yet")
    new, _ = open_checkpoint(note, log.verifier())
    if old.size > new.size:
        raise InconsistentTreeError(
            f"the export holds a tree of size {old.size} but the log now has {new.size} entries: "
            "the log was truncated or rolled back; refusing to export over it"
        )
    try:
        proof = log.store.consistency_proof(old.size, new.size)
        verify_consistency(old.size, new.size, proof, old.root, new.root)
    except ProofError as e:
        raise InconsistentTreeError(
            f"the exported tree of size {old.size} is not a prefix of the log's tree of size "
            f"{new.size} ({e}): the log forked or was rewritten; refusing to export over it"
        ) from None
    return old.size


def _reusable(tile: Tile, old_size: int, path: Path) -> bool:
    """A tile written by an earlier export of a prefix of this tree can be kept as it is."""
    if not path.is_file():
        return False
    count = old_size if tile.is_entries else old_size >> (TILE_HEIGHT * tile.level)
    return (tile.n * TILE_WIDTH + tile.width) <= count


def _prune_partials(out: Path, tile: Tile) -> int:
    """Remove partial tiles of (level, n) other than `tile` (superseded by a wider tile)."""
    kind = "entries" if tile.is_entries else str(tile.level)
    pdir = out / "tile" / kind / (encode_index(tile.n) + ".p")
    if not pdir.is_dir():
        return 0
    removed = 0
    for child in pdir.iterdir():
        if tile.width == TILE_WIDTH or child.name != str(tile.width):
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
            removed += 1
    if tile.width == TILE_WIDTH:
        pdir.rmdir()
    return removed


def export_tiles(
    log: Log, out: Path, progress: Callable[[int, int], None] | None = None
) -> ExportResult:
    """Write the latest signed tree of `log` into `out` as tlog-tiles (see the module doc).

    `progress(done, total)` is called as tiles are handled.
    """
    note = log.checkpoint_with_cosignatures()
    verifier = log.verifier()
    cp, _ = open_checkpoint(note, verifier)
    out.mkdir(parents=True, exist_ok=True)
    old_size = previous_size(out, log, verifier)
    tiles = tiles_for_size(cp.size)
    written = kept = removed = 0
    for done, tile in enumerate(tiles, 1):
        path = out / tile.path
        if _reusable(tile, old_size, path):
            kept += 1
        else:
            _write_atomic(path, tile_data(log, tile))
            written += 1
        removed += _prune_partials(out, tile)
        if progress:
            progress(done, len(tiles))
    _write_atomic(out / "checkpoint", note)
    return ExportResult(cp.size, written, kept, removed)
