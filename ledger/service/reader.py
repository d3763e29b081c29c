"""What the ledger service shows, computed from the log: the one layer between routes and storage.

Every answer is anchored to a checkpoint the log signed: tiles and entry pages stop at the latest
signed size, proofs are for signed sizes, and each proof is verified here against the signed root
before it is served, so an altered database yields an integrity error instead of a proof that a
client would reject. Entries are re-hashed on read and checked against their stored leaf hash.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ledger.checkpoint import Checkpoint, parse_checkpoint
from ledger.entry import decode_entry
from ledger.exceptions import EntryError, FormatError, LedgerError, ProofError, VerificationError
from ledger.export import tile_data
from ledger.hashing import leaf_hash
from ledger.log import Log
from ledger.note import Ed25519Verifier, b64, parse_vkey, split_note
from ledger.proofbundle import format_tlog_proof
from ledger.proofs import verify_consistency, verify_inclusion
from ledger.service import schemas
from ledger.sqlreads import checkpoint_rows, cosignature_rows, entry_rows, witness_rows
from ledger.tiles import TILE_WIDTH, Tile, parse_tile_path, tile_exists

MAX_PAGE = 1000


class NotFound(LedgerError):
    """What was asked for is not in the log (yet): beyond the signed tree, or never signed."""


@dataclass(frozen=True)
class SignedTree:
    checkpoint: Checkpoint
    note: bytes  # with cosignatures
    signed_at: int | None


def _utc(ts: int | None) -> str | None:
    return None if ts is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class LedgerReader:
    def __init__(self, log: Log):
        self.log = log
        self.engine = log.store.reader

    # --- checkpoints -------------------------------------------------------------------------

    def signed(self, size: int | None = None) -> SignedTree:
        """The latest signed checkpoint, or the one of `size`, with the cosignatures kept."""
        try:
            note = self.log.checkpoint_with_cosignatures(size)
        except LedgerError as e:
            raise NotFound(str(e)) from None
        cp = parse_checkpoint(split_note(note)[0])
        rows = checkpoint_rows(self.engine, cp.size, cp.size)
        return SignedTree(cp, note, rows[0][3] if rows else None)

    def _witness_keys(self) -> dict[tuple[str, int], Ed25519Verifier]:
        keys = {}
        for _, vkey, _ in witness_rows(self.engine):
            try:
                v = parse_vkey(vkey)
            except FormatError:
                continue
            keys[(v.name, v.key_id)] = v
        return keys

    def _public(self, tree: SignedTree, keys: dict) -> schemas.CheckpointPublic:
        text, sigs = split_note(tree.note)
        cosigs = []
        for sig in sigs:
            if sig.name == tree.checkpoint.origin:
                continue
            raw = sig.raw
            ts = int.from_bytes(raw[:8], "big") if len(raw) == 72 else None
            key = keys.get((sig.name, sig.key_id))
            cosigs.append(
                schemas.CosignaturePublic(
                    witness=sig.name,
                    key_id=f"{sig.key_id:08x}",
                    time=ts,
                    time_utc=_utc(ts),
                    verified=bool(key and key.verify(text, raw)),
                    line=sig.line.rstrip("\n"),
                )
            )
        cp = tree.checkpoint
        return schemas.CheckpointPublic(
            origin=cp.origin,
            size=cp.size,
            root=b64(cp.root),
            signed_at=tree.signed_at,
            note=tree.note.decode(),
            cosignatures=cosigs,
        )

    def checkpoint(self, size: int | None = None) -> schemas.CheckpointPublic:
        return self._public(self.signed(size), self._witness_keys())

    def checkpoints(self, before: int | None, limit: int) -> schemas.CheckpointPage:
        """Signed checkpoints, newest first, with sizes below `before`."""
        hi = (1 << 62) if before is None else before - 1
        rows = checkpoint_rows(self.engine, 0, hi, limit=limit + 1, newest_first=True)
        more = len(rows) > limit
        rows = rows[:limit]
        lines: dict[int, list[str]] = {}
        if rows:
            for size, _, _, line, _ in cosignature_rows(self.engine, rows[-1][0], rows[0][0]):
                lines.setdefault(size, []).append(line if line.endswith("\n") else line + "\n")
        keys = self._witness_keys()
        out = []
        for size, _, note, signed_at in rows:
            text, sigs = split_note(note.encode())
            own = [s.line for s in sigs]
            extra = [ln for ln in lines.get(size, []) if ln not in own]
            full = (text + "\n" + "".join(own + extra)).encode()
            out.append(self._public(SignedTree(parse_checkpoint(text), full, signed_at), keys))
        return schemas.CheckpointPage(
            checkpoints=out, next_before=rows[-1][0] if more and rows else None
        )

    def info(self) -> schemas.LogInfoPublic:
        return schemas.LogInfoPublic(
            origin=self.log.config.origin,
            vkey=self.log.verifier().vkey(),
            tree_size=self.tree_size(),
            witnesses=[
                schemas.WitnessPublic(name=n, vkey=v) for n, v, _ in witness_rows(self.engine)
            ],
        )

    def tree_size(self) -> int:
        note = self.log.store.latest_checkpoint()
        return parse_checkpoint(split_note(note)[0]).size if note else 0

    # --- entries -----------------------------------------------------------------------------

    def entries(self, start: int, limit: int) -> schemas.EntryPage:
        size = self.tree_size()
        if start > size:
            raise NotFound(f"the log has {size} entries; there is no entry {start}")
        end = min(size, start + min(limit, MAX_PAGE))
        rows = {i: (d, h) for i, d, h in entry_rows(self.engine, start, end)}
        out = [self._entry(i, rows.get(i)) for i in range(start, end)]
        return schemas.EntryPage(
            tree_size=size, start=start, entries=out, next_start=end if end < size else None
        )

    def entry(self, index: int) -> schemas.EntryPublic:
        page = self.entries(index, 1)
        if not page.entries:
            raise NotFound(f"the log has {page.tree_size} entries; there is no entry {index}")
        return page.entries[0]

    @staticmethod
    def _entry(index: int, row: tuple[bytes, bytes] | None) -> schemas.EntryPublic:
        if row is None:
            return schemas.EntryPublic(
                index=index,
                leaf_hash="",
                entry=None,
                problem="the entry is missing from the database (the ledger was altered)",
            )
        data, stored = row
        h = leaf_hash(data)
        problem, entry = None, None
        try:
            entry = decode_entry(data)
        except EntryError as e:
            problem = f"stored bytes are not a valid entry: {e}"
        if h != stored:
            problem = "stored bytes do not match their stored leaf hash (the ledger was altered)"
        return schemas.EntryPublic(index=index, leaf_hash=b64(h), entry=entry, problem=problem)

    # --- proofs ------------------------------------------------------------------------------

    def _stored_leaf(self, index: int, size: int) -> bytes:
        if not 0 <= index < size:
            raise NotFound(f"entry {index} is not in the signed tree of size {size}")
        rows = entry_rows(self.engine, index, index + 1)
        if not rows:
            raise VerificationError(f"entry {index} is missing from the database", index)
        _, data, stored = rows[0]
        if leaf_hash(data) != stored:
            raise VerificationError(f"entry {index} does not match its stored leaf hash", index)
        return stored

    def inclusion(self, index: int, size: int | None) -> tuple[SignedTree, bytes, list[bytes]]:
        tree = self.signed(size)
        cp = tree.checkpoint
        leaf = self._stored_leaf(index, cp.size)
        hashes = self.log.store.inclusion_proof(index, cp.size)
        try:
            verify_inclusion(leaf, index, cp.size, hashes, cp.root)
        except ProofError as e:
            raise VerificationError(
                f"the stored hashes do not prove entry {index} in the signed tree of size "
                f"{cp.size} ({e}): the ledger database was altered",
                index,
            ) from None
        return tree, leaf, hashes

    def inclusion_public(self, index: int, size: int | None) -> schemas.InclusionProofPublic:
        tree, leaf, hashes = self.inclusion(index, size)
        return schemas.InclusionProofPublic(
            index=index,
            tree_size=tree.checkpoint.size,
            leaf_hash=b64(leaf),
            root=b64(tree.checkpoint.root),
            hashes=[b64(h) for h in hashes],
            checkpoint=tree.note.decode(),
        )

    def inclusion_bundle(self, index: int, size: int | None) -> str:
        tree, _, hashes = self.inclusion(index, size)
        return format_tlog_proof(index, hashes, tree.note)

    def consistency(self, old: int, new: int | None) -> schemas.ConsistencyProofPublic:
        tree = self.signed(new)
        cp = tree.checkpoint
        if not 1 <= old <= cp.size:
            raise ProofError(f"old size must be 1..{cp.size}, got {old}")
        old_root = self.log.store.tree_hash(old)
        hashes = self.log.store.consistency_proof(old, cp.size)
        try:
            verify_consistency(old, cp.size, hashes, old_root, cp.root)
        except ProofError as e:
            raise VerificationError(
                f"the stored hashes do not prove size {old} consistent with the signed tree of "
                f"size {cp.size} ({e}): the ledger database was altered"
            ) from None
        return schemas.ConsistencyProofPublic(
            old_size=old,
            new_size=cp.size,
            old_root=b64(old_root),
            new_root=b64(cp.root),
            hashes=[b64(h) for h in hashes],
            checkpoint=tree.note.decode(),
        )

    # --- tiles -------------------------------------------------------------------------------

    def tile(self, path: str) -> tuple[bytes, bool]:
        """The bytes of a tlog-tiles path and whether the tile is full (immutable)."""
        try:
            tile: Tile = parse_tile_path(path)
        except FormatError as e:
            raise NotFound(f"no such tile: {e}") from None
        size = self.tree_size()
        if not tile_exists(tile, size):
            raise NotFound(f"{path} is not a tile of the signed tree of size {size}")
        return tile_data(self.log, tile), tile.width == TILE_WIDTH

    # --- cosignatures handed back by pull-mode witnesses ---------------------------------------

    def accept_cosignatures(self, body: bytes) -> schemas.CosignaturesAccepted:
        from ledger.witness_client import accept_cosigned_checkpoint

        stored = accept_cosigned_checkpoint(self.log, body)
        cp = parse_checkpoint(split_note(body)[0])
        return schemas.CosignaturesAccepted(size=cp.size, stored=[s.rstrip("\n") for s in stored])
